//! Input and output types of the core (v1 spec §2).
//!
//! This file is shared: `Severity`, `ThreatCategory`, `ThreatSignal` and `Scent` are the
//! contract other modules compile against. Parsing from strings is strict: unknown names
//! are a typed error, never a silent default (v1 turned them into NaN).

use std::fmt;
use std::str::FromStr;

/// Threat severity. Eviction rank: low = 0 < medium < high < critical = 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// `low`.
    Low,
    /// `medium`.
    Medium,
    /// `high`.
    High,
    /// `critical`.
    Critical,
}

impl Severity {
    /// All severities, lowest rank first.
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// v1's eviction rank (low = 0 .. critical = 3).
    pub fn rank(self) -> u8 {
        self as u8
    }

    /// The v1 wire name (`"low"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// The category part of an evidence signature `"{category}:{hash}"` (`None` when there is
/// no `:`). Not a validity check: the cold store's layout checks signatures fully.
pub fn category_of(signature: &str) -> Option<&str> {
    signature.split_once(':').map(|(c, _)| c)
}

/// The hash part of an evidence signature `"{category}:{hash}"` (`None` when there is no
/// `:`).
pub fn hash_of(signature: &str) -> Option<&str> {
    signature.split_once(':').map(|(_, h)| h)
}

/// v1's threat categories. The category is the prefix of a threat signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThreatCategory {
    /// `injection`.
    Injection,
    /// `ddos`.
    Ddos,
    /// `flood`.
    Flood,
    /// `spam`.
    Spam,
    /// `malware`.
    Malware,
    /// `unknown`.
    Unknown,
}

impl ThreatCategory {
    /// All categories in v1's declaration order.
    pub const ALL: [ThreatCategory; 6] = [
        ThreatCategory::Injection,
        ThreatCategory::Ddos,
        ThreatCategory::Flood,
        ThreatCategory::Spam,
        ThreatCategory::Malware,
        ThreatCategory::Unknown,
    ];

    /// The v1 wire name (`"injection"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ThreatCategory::Injection => "injection",
            ThreatCategory::Ddos => "ddos",
            ThreatCategory::Flood => "flood",
            ThreatCategory::Spam => "spam",
            ThreatCategory::Malware => "malware",
            ThreatCategory::Unknown => "unknown",
        }
    }
}

/// A name that is not a known severity or category.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {name:?}")]
pub struct UnknownName {
    /// `"severity"` or `"category"`.
    pub kind: &'static str,
    /// The rejected input (truncated to 64 characters).
    pub name: String,
}

fn unknown(kind: &'static str, name: &str) -> UnknownName {
    UnknownName {
        kind,
        name: name.chars().take(64).collect(),
    }
}

impl FromStr for Severity {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| unknown("severity", s))
    }
}

impl FromStr for ThreatCategory {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ThreatCategory::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| unknown("category", s))
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for ThreatCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an external detector said about a request. Tracehound never decides this itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ThreatSignal {
    /// The category (signature prefix).
    pub category: ThreatCategory,
    /// The severity (eviction rank).
    pub severity: Severity,
}

/// Optional identity context of the request's principal (never part of the signature).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdentityContext {
    /// The user.
    pub user_id: Option<String>,
    /// The tenant.
    pub tenant_id: Option<String>,
    /// The session.
    pub session_id: Option<String>,
}

/// One observed request, as handed to the agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Scent {
    /// Caller-chosen id (v1 adapters use secure ids).
    pub id: String,
    /// Milliseconds since the Unix epoch, caller supplied (v1 uses it as "captured").
    pub timestamp: f64,
    /// The rate-limited principal (IP, client id, ...).
    pub source: String,
    /// The request content; only flagged scents are encoded and hashed.
    pub payload: serde_json::Value,
    /// `None`: the scent is clean.
    pub threat: Option<ThreatSignal>,
    /// Who made the request, if known.
    pub identity: Option<IdentityContext>,
}

impl ThreatSignal {
    /// A signal of `category` with `severity`.
    pub fn new(category: ThreatCategory, severity: Severity) -> Self {
        ThreatSignal { category, severity }
    }

    /// Parses v1's wire names (`"injection"`, `"high"`); unknown names are an error.
    pub fn parse(category: &str, severity: &str) -> Result<Self, UnknownName> {
        Ok(ThreatSignal {
            category: category.parse()?,
            severity: severity.parse()?,
        })
    }
}

impl Scent {
    /// A clean scent (no threat signal, no identity).
    pub fn new(
        id: impl Into<String>,
        source: impl Into<String>,
        timestamp: f64,
        payload: serde_json::Value,
    ) -> Self {
        Scent {
            id: id.into(),
            timestamp,
            source: source.into(),
            payload,
            threat: None,
            identity: None,
        }
    }

    /// The same scent flagged by a detector.
    pub fn with_threat(mut self, category: ThreatCategory, severity: Severity) -> Self {
        self.threat = Some(ThreatSignal { category, severity });
        self
    }

    /// The same scent with an identity context.
    pub fn with_identity(mut self, identity: IdentityContext) -> Self {
        self.identity = Some(identity);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_rejected() {
        for c in ThreatCategory::ALL {
            assert_eq!(c.as_str().parse::<ThreatCategory>(), Ok(c));
        }
        for s in Severity::ALL {
            assert_eq!(s.as_str().parse::<Severity>(), Ok(s));
        }
        let e = "bogus".parse::<Severity>().unwrap_err();
        assert_eq!(e.to_string(), "unknown severity \"bogus\"");
        assert!(ThreatSignal::parse("injection", "HIGH").is_err());
        assert!(ThreatSignal::parse("not-a-category", "high").is_err());
        assert_eq!(
            ThreatSignal::parse("spam", "low"),
            Ok(ThreatSignal::new(ThreatCategory::Spam, Severity::Low))
        );
        assert!(Severity::Low < Severity::Critical);
    }

    #[test]
    fn scent_builders() {
        let s = Scent::new("id", "src", 5.0, serde_json::json!({"a": 1}))
            .with_threat(ThreatCategory::Ddos, Severity::High);
        assert_eq!(
            s.threat,
            Some(ThreatSignal::new(ThreatCategory::Ddos, Severity::High))
        );
        assert_eq!(s.source, "src");
        assert!(s.identity.is_none());
    }
}
