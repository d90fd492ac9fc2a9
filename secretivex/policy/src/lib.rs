//! SecretiveX signing policy: which peer may use which key for which destination.
//!
//! (Skeleton: the contract other crates build against. Filled in by the policy work of
//! issue 6.)

use serde::{Deserialize, Serialize};

/// The `[policy]` table of the agent's configuration, as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {}

/// A validated policy, ready to evaluate.
#[derive(Debug, Default)]
pub struct Policy {}

impl Policy {
    /// Validates and compiles a policy.
    ///
    /// # Errors
    /// When a rule is invalid; the error names the field.
    pub fn compile(spec: &PolicySpec) -> Result<Policy, PolicyError> {
        let _ = spec;
        Ok(Policy {})
    }

    /// The policy of an agent without a `[policy]` table: everything allowed, as ssh-agent.
    pub fn allow_all() -> Policy {
        Policy {}
    }
}

/// A policy that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A field has a value that cannot be used.
    #[error("{field}: {message}")]
    Invalid {
        /// Dotted path of the field, e.g. `rules[2].key.fingerprint`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}
