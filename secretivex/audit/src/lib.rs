//! SecretiveX audit trail: one hash-chained JSON line per decision.
//!
//! The agent hands each [`Decision`] to [`AuditHandle::record`], which only enqueues it; a
//! writer thread turns batches of them into lines, rotates
//! files by size and prunes old ones. [`verify`] checks a log and names its first broken line.
//!
//! A line is one JSON object and a newline. Every line carries `seq` (1, 2, 3, … across all
//! files of the log) and, last, `prev`: the lowercase hex SHA-256 of the previous line's bytes
//! without its newline; the first line carries [`GENESIS`] (64 zeros). Rotation keeps the
//! chain: the first line of a new file chains to the last line of the one before. Removing
//! old files (`keep`) writes a `pruned` line recording where the log now starts. The signed
//! data never reaches the log, only its SHA-256.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

mod files;
mod handle;
mod log;
mod record;
mod spec;
#[cfg(test)]
mod tests;
mod time;
mod verify;

pub use files::{log_files, log_files_in_dir};
pub use handle::{AuditHandle, AuditStats, Reconfigured, BATCH, SYNC_EVERY};
pub use record::GENESIS;
pub use spec::{AuditSpec, DEFAULT_KEEP, DEFAULT_MAX_BYTES, DEFAULT_QUEUE};
pub use verify::{verify, verify_log, BreakKind, Broken, Intact, Verdict, VerifyError};

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

/// An audit log that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The log file could not be opened, read or written.
    #[error("audit log {path}: {source}", path = path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Another writer (in this process or another) holds the log: two writers would fork
    /// its chain.
    #[error("audit log {} is already open for writing (lock file beside it)", path.display())]
    Busy {
        /// The current log file.
        path: PathBuf,
    },
    /// The log's last line (or a rotated file's first) is not an audit line, so the chain
    /// cannot be continued.
    #[error("audit log {}: not an audit log: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The writer thread could not start.
    #[error("audit writer thread: {0}")]
    Spawn(std::io::Error),
}
