//! `[ledger]`: where the durable audit log lives, when it syncs, and how its checkpoints
//! are signed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tracehound_ledger::FsyncPolicy;

/// When ledger appends become durable (`fsync = "every" | "interval" | "batch"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncMode {
    /// Every audit record is durable before the intercept that caused it is answered.
    Every,
    /// Synced once the oldest unsynced record is `fsync_interval_ms` old.
    Interval,
    /// Synced after every `fsync_batch` records.
    Batch,
}

impl FsyncMode {
    /// The config and stats name.
    pub fn as_str(self) -> &'static str {
        match self {
            FsyncMode::Every => "every",
            FsyncMode::Interval => "interval",
            FsyncMode::Batch => "batch",
        }
    }
}

/// The durable audit log. Present means enabled; `dir` is required.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerSection {
    /// Directory of the segment files (created 0700 if missing).
    pub dir: Option<PathBuf>,
    /// When appends are synced.
    pub fsync: FsyncMode,
    /// `fsync = "interval"`: the longest a record stays unsynced, in ms.
    pub fsync_interval_ms: u64,
    /// `fsync = "batch"`: records per sync.
    pub fsync_batch: u32,
    /// Ed25519 checkpoint signing key (PKCS#8 DER), generated 0600 on first start when
    /// missing. Absent: `checkpoint.key` in `dir`.
    pub key_file: Option<PathBuf>,
    /// Checkpoint signing key name (no whitespace, no `+`).
    pub key_name: String,
    /// The log's origin line in checkpoints.
    pub origin: String,
    /// How often a new checkpoint is signed when the log grew, in ms.
    pub checkpoint_interval_ms: u64,
    /// Segment files are rolled before they pass this size.
    pub max_segment_bytes: u64,
}

impl Default for LedgerSection {
    fn default() -> Self {
        LedgerSection {
            dir: None,
            fsync: FsyncMode::Every,
            fsync_interval_ms: 100,
            fsync_batch: 64,
            key_file: None,
            key_name: "tracehoundd".to_owned(),
            origin: "tracehoundd/audit".to_owned(),
            checkpoint_interval_ms: 10_000,
            max_segment_bytes: 64 << 20,
        }
    }
}

/// Longest accepted interval (a day): anything longer is a typo, not a policy.
const MAX_INTERVAL_MS: u64 = 86_400_000;

impl LedgerSection {
    /// Range checks; the dotted field and the reason.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.dir.as_deref().is_none_or(|d| d.as_os_str().is_empty()) {
            return Err((
                "ledger",
                "`dir` is required: the directory of the audit log's segment files".into(),
            ));
        }
        for (field, value) in [
            ("ledger.fsync_interval_ms", self.fsync_interval_ms),
            ("ledger.checkpoint_interval_ms", self.checkpoint_interval_ms),
        ] {
            if value == 0 || value > MAX_INTERVAL_MS {
                return Err((field, format!("must be within 1..={MAX_INTERVAL_MS}")));
            }
        }
        if self.fsync_batch == 0 {
            return Err(("ledger.fsync_batch", "must be positive".into()));
        }
        if self.key_name.is_empty()
            || self
                .key_name
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '+')
        {
            return Err((
                "ledger.key_name",
                "must be non-empty, without whitespace or '+'".into(),
            ));
        }
        if self.origin.is_empty() || self.origin.chars().any(char::is_control) {
            return Err((
                "ledger.origin",
                "must be non-empty, without control characters".into(),
            ));
        }
        if !(1024..=u64::from(u32::MAX)).contains(&self.max_segment_bytes) {
            return Err((
                "ledger.max_segment_bytes",
                "must be within 1024..=4294967295".into(),
            ));
        }
        Ok(())
    }

    /// The segment directory (validated to be present).
    pub fn dir(&self) -> &Path {
        self.dir.as_deref().unwrap_or(Path::new("."))
    }

    /// The signing key file.
    pub fn key_path(&self) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| self.dir().join("checkpoint.key"))
    }

    /// The ledger's own policy. Under `every` the daemon syncs each group of records
    /// itself (group commit, see `audit_log`), so the ledger is told never to sync on its
    /// own except when rolling a segment.
    pub fn ledger_policy(&self) -> FsyncPolicy {
        match self.fsync {
            FsyncMode::Every => FsyncPolicy::Batch(u32::MAX),
            FsyncMode::Interval => {
                FsyncPolicy::Interval(Duration::from_millis(self.fsync_interval_ms))
            }
            FsyncMode::Batch => FsyncPolicy::Batch(self.fsync_batch),
        }
    }
}
