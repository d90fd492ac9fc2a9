//! The policy as data: defaults, rules by severity and category, byte budgets.

use serde::{Deserialize, Deserializer};

use crate::types::{Severity, ThreatCategory};

/// How long evidence is kept, in milliseconds. Absent: kept until a budget (or, in
/// memory, the quarantine's own bounds) removes it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Time in memory, from capture; then evacuated to cold storage (or neutralized
    /// without one).
    pub memory_ttl_ms: Option<u64>,
    /// Time in cold storage, from the write; then deleted. `0`: nothing of this kind is
    /// kept in cold storage (it is neutralized in memory instead of evacuated).
    pub cold_retention_ms: Option<u64>,
}

/// One rule: evidence matching every given selector gets the rule's retention; fields
/// the rule leaves out come from the policy's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rule {
    /// Only this severity (`low`, `medium`, `high`, `critical`).
    #[serde(deserialize_with = "severity_name")]
    pub severity: Option<Severity>,
    /// Only this category (`injection`, `ddos`, `flood`, `spam`, `malware`, `unknown`).
    #[serde(deserialize_with = "category_name")]
    pub category: Option<ThreatCategory>,
    /// See [`Retention::memory_ttl_ms`].
    pub memory_ttl_ms: Option<u64>,
    /// See [`Retention::cold_retention_ms`].
    pub cold_retention_ms: Option<u64>,
}

/// The whole policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecyclePolicy {
    /// Retention of evidence no rule matches (and of fields a matching rule leaves out).
    pub default: Retention,
    /// Rules, first match wins.
    pub rules: Vec<Rule>,
    /// Most stored bytes kept in memory by the policy (below the quarantine's own bound).
    pub memory_max_bytes: Option<u64>,
    /// Most bytes kept in cold storage.
    pub cold_max_bytes: Option<u64>,
}

/// A policy that cannot work as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PolicyError {
    /// Dotted path of the offending field, relative to the policy (`rules[2]`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Most rules a policy may have (each evidence is matched against them every run).
pub const MAX_RULES: usize = 256;

impl LifecyclePolicy {
    /// Checks what serde cannot: a rule that selects nothing, too many rules.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.rules.len() > MAX_RULES {
            return Err(PolicyError {
                field: "rules".into(),
                message: format!("at most {MAX_RULES} rules"),
            });
        }
        for (i, r) in self.rules.iter().enumerate() {
            if r.severity.is_none() && r.category.is_none() {
                return Err(PolicyError {
                    field: format!("rules[{i}]"),
                    message: "a rule needs `severity` and/or `category` (use [default] for \
                              everything else)"
                        .into(),
                });
            }
            if r.memory_ttl_ms.is_none() && r.cold_retention_ms.is_none() {
                return Err(PolicyError {
                    field: format!("rules[{i}]"),
                    message: "a rule needs `memory_ttl_ms` and/or `cold_retention_ms`".into(),
                });
            }
        }
        Ok(())
    }

    /// The retention of evidence of `severity` and `category` (the signature's prefix).
    /// With `severity` unknown, rules that name a severity do not match; for cold objects
    /// of unknown severity use [`Self::cold_retention_unknown_severity`] instead, which
    /// fails closed.
    pub fn retention_for(&self, severity: Option<Severity>, category: &str) -> Retention {
        let matches = |r: &&Rule| {
            r.severity.is_none_or(|s| Some(s) == severity)
                && r.category.is_none_or(|c| c.as_str() == category)
        };
        match self.rules.iter().find(matches) {
            Some(r) => Retention {
                memory_ttl_ms: r.memory_ttl_ms.or(self.default.memory_ttl_ms),
                cold_retention_ms: r.cold_retention_ms.or(self.default.cold_retention_ms),
            },
            None => self.default,
        }
    }

    /// The cold retention of an object whose severity is unknown (written before a
    /// restart; the object does not carry it). Fails closed: the longest retention any
    /// rule that could match `category` (or the default) gives, over every severity; an
    /// absent retention (kept until a budget removes it) is longer than any number.
    pub fn cold_retention_unknown_severity(&self, category: &str) -> Option<u64> {
        let mut longest = 0u64;
        for s in Severity::ALL {
            match self.retention_for(Some(s), category).cold_retention_ms {
                None => return None,
                Some(ms) => longest = longest.max(ms),
            }
        }
        Some(longest)
    }

    /// Whether the policy can ever remove anything (a policy with no TTL, retention or
    /// budget plans nothing, and the caller may skip listing cold storage).
    pub fn is_empty(&self) -> bool {
        self.default == Retention::default()
            && self.rules.is_empty()
            && self.memory_max_bytes.is_none()
            && self.cold_max_bytes.is_none()
    }
}

fn severity_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Severity>, D::Error> {
    let name = String::deserialize(d)?;
    name.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "unknown severity {name:?}; expected one of: low, medium, high, critical"
        ))
    })
}

fn category_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ThreatCategory>, D::Error> {
    let name = String::deserialize(d)?;
    name.parse().map(Some).map_err(|_| {
        let known: Vec<&str> = ThreatCategory::ALL.iter().map(|c| c.as_str()).collect();
        serde::de::Error::custom(format!(
            "unknown category {name:?}; expected one of: {}",
            known.join(", ")
        ))
    })
}
