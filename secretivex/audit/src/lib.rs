//! SecretiveX audit trail: one hash-chained JSON line per decision.
//!
//! (Skeleton: the contract other crates build against. Filled in by the audit work of
//! issue 6.)

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// The `[audit]` table of the agent's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSpec {
    /// The current log file; rotated files sit next to it.
    pub path: PathBuf,
}

/// What was asked of the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A sign request.
    Sign,
    /// A list request whose answer the policy filtered.
    List,
    /// A key added.
    Add,
    /// A key (or all keys) removed.
    Remove,
    /// The agent locked.
    Lock,
    /// The agent unlocked (or an unlock refused).
    Unlock,
}

/// What the agent decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Allowed by policy (or no policy).
    Allow,
    /// Denied by policy.
    Deny,
    /// A confirm rule: the prompt (or a live approval window) allowed it.
    ConfirmAllow,
    /// A confirm rule: the prompt refused it.
    ConfirmDeny,
    /// A confirm rule: the prompt was not answered in time (a refusal).
    ConfirmTimeout,
    /// Allowed, but the operation itself failed (no signer in time, key gone, ...).
    Failed,
}

/// One decision, as the agent reports it. Never holds the signed data.
#[derive(Debug, Clone)]
pub struct Decision {
    /// When the request arrived.
    pub time: SystemTime,
    /// What was asked.
    pub event: Event,
    /// The peer's uid (SO_PEERCRED).
    pub peer_uid: u32,
    /// The peer's pid, when visible.
    pub peer_pid: Option<i32>,
    /// The peer's executable path, when known.
    pub peer_exe: Option<String>,
    /// `SHA256:…` fingerprint of the key, when the request names one.
    pub key_fingerprint: Option<String>,
    /// `SHA256:…` fingerprint of the destination host key, when known (session-bind).
    pub dest_host_key: Option<String>,
    /// The destination user name, when known (userauth data of the sign request).
    pub dest_user: Option<String>,
    /// Whether the connection was forwarded (session-bind said so).
    pub forwarded: bool,
    /// The decision.
    pub outcome: Outcome,
    /// Name of the policy rule that decided, if one did.
    pub rule: Option<String>,
    /// Time from the request's arrival to the decision's answer.
    pub latency: Duration,
    /// SHA-256 of the signed data (never the data itself).
    pub data_sha256: Option<[u8; 32]>,
}

/// Where the agent sends decisions; writing happens elsewhere and never blocks the caller.
#[derive(Debug)]
pub struct AuditHandle {}

impl AuditHandle {
    /// Opens (or continues) the log described by `spec` and starts its writer.
    ///
    /// # Errors
    /// When the log cannot be opened or its last line cannot be read.
    pub fn open(spec: &AuditSpec) -> Result<AuditHandle, AuditError> {
        let _ = spec;
        Ok(AuditHandle {})
    }

    /// Queues one decision; never blocks. A full queue drops it (counted).
    pub fn record(&self, decision: Decision) {
        let _ = decision;
    }
}

/// An audit log that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The log file could not be opened, read or written.
    #[error("audit log {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}
