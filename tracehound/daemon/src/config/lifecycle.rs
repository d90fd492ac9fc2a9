//! `[lifecycle]`: the evidence lifecycle policy (tracehound-core's
//! [`LifecyclePolicy`]) and how often the daemon applies it. Reloadable: the next run
//! uses the new policy.

use serde::Deserialize;
use tracehound_core::lifecycle::{LifecyclePolicy, Retention, Rule};

/// The `[lifecycle]` table.
///
/// ```toml
/// [lifecycle]
/// interval_ms = 60000
/// memory_max_bytes = 268435456
/// cold_max_bytes = 10737418240
/// [lifecycle.default]
/// memory_ttl_ms = 3600000
/// cold_retention_ms = 2592000000
/// [[lifecycle.rules]]
/// severity = "critical"
/// cold_retention_ms = 31536000000
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleSection {
    /// How often the policy runs, in ms.
    pub interval_ms: u64,
    /// See [`LifecyclePolicy::memory_max_bytes`].
    pub memory_max_bytes: Option<u64>,
    /// See [`LifecyclePolicy::cold_max_bytes`].
    pub cold_max_bytes: Option<u64>,
    /// `[lifecycle.default]`.
    pub default: Retention,
    /// `[[lifecycle.rules]]`, first match wins.
    pub rules: Vec<Rule>,
}

impl Default for LifecycleSection {
    fn default() -> Self {
        LifecycleSection {
            interval_ms: 60_000,
            memory_max_bytes: None,
            cold_max_bytes: None,
            default: Retention::default(),
            rules: Vec::new(),
        }
    }
}

/// Longest accepted interval (a day).
const MAX_INTERVAL_MS: u64 = 86_400_000;

impl LifecycleSection {
    /// The core's policy.
    pub fn policy(&self) -> LifecyclePolicy {
        LifecyclePolicy {
            default: self.default,
            rules: self.rules.clone(),
            memory_max_bytes: self.memory_max_bytes,
            cold_max_bytes: self.cold_max_bytes,
        }
    }

    /// Range checks; the dotted field and the reason.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.interval_ms == 0 || self.interval_ms > MAX_INTERVAL_MS {
            return Err((
                "lifecycle.interval_ms",
                format!("must be within 1..={MAX_INTERVAL_MS}"),
            ));
        }
        self.policy()
            .validate()
            .map_err(|e| ("lifecycle.rules", format!("{}: {}", e.field, e.message)))
    }
}
