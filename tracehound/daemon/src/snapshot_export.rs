//! `ExportSnapshot`: gathers the forensic state from the engine and hands it to
//! `tracehound_core::snapshot_export`, which makes the canonical bytes.
//!
//! What is exported (and why nothing else) is documented there. The daemon's part is:
//!
//! * the configuration subset that shapes that state — payload limit, quarantine bounds,
//!   rate limits, the ledger's policy and names, `[cold]`'s backend kind, prefix, object
//!   bound and evacuation tuning, and the `[lifecycle]` policy — without file paths,
//!   bucket names or endpoints (they differ between hosts holding the same state), never
//!   credentials, and without listener, stats or reload settings;
//! * settling the ledger before reading it: the quarantine's evidence and audit length
//!   are captured first (one lock), then the export waits for the writer to copy up to
//!   that length, syncs and makes sure a signed checkpoint covers it (the code incident
//!   records use). So with a ledger the export is the same bytes for the same state
//!   whatever `fsync` and `checkpoint_interval_ms` say, as long as no record is added
//!   meanwhile.

use serde_json::{json, Value};
use tracehound_core::snapshot_export::{
    export, quarantine_state, SnapshotError, SnapshotState, MAX_SNAPSHOT_BYTES,
};
use tracehound_rpc::pb;

use crate::audit_log::SettleError;
use crate::config::DaemonConfig;
use crate::engine::Engine;

/// Why `ExportSnapshot` failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The ledger could not be settled up to the captured audit length.
    #[error("audit ledger: {0}")]
    Ledger(#[from] SettleError),
    /// The state could not be made canonical (a bug).
    #[error("internal: {0}")]
    Snapshot(#[from] SnapshotError),
    /// The export is larger than one gRPC message / what `snapshot verify` reads.
    #[error(
        "the export is {0} bytes, over the {MAX_SNAPSHOT_BYTES}-byte limit of one export \
         (lower [quarantine] max_count)"
    )]
    TooLarge(usize),
}

impl ExportError {
    /// The gRPC status for this error.
    pub fn into_status(self) -> tonic::Status {
        match self {
            ExportError::Ledger(_) => tonic::Status::unavailable(self.to_string()),
            ExportError::TooLarge(_) => tonic::Status::resource_exhausted(self.to_string()),
            ExportError::Snapshot(_) => tonic::Status::internal(self.to_string()),
        }
    }
}

/// The configuration subset covered by the export's `config.sha256`.
pub fn settings_json(config: &DaemonConfig) -> Value {
    let rl = config.rate_limit;
    let ledger = config.ledger.as_ref().map_or(Value::Null, |l| {
        json!({
            "fsync": l.fsync.as_str(),
            "fsync_interval_ms": l.fsync_interval_ms,
            "fsync_batch": l.fsync_batch,
            "key_name": l.key_name,
            "origin": l.origin,
            "checkpoint_interval_ms": l.checkpoint_interval_ms,
            "max_segment_bytes": l.max_segment_bytes,
        })
    });
    let cold = config.cold.as_ref().map_or(Value::Null, |c| {
        let c = &c.0;
        let e = &c.evacuation;
        // Backend kind only: paths, buckets, endpoints and credentials stay out.
        let backend = match (&c.local, &c.s3) {
            (Some(_), _) => "local",
            (_, Some(_)) => "s3",
            (None, None) => "none",
        };
        json!({
            "backend": backend,
            "prefix": c.prefix,
            "max_object_bytes": c.max_object_bytes,
            "evacuation": {
                "queue_capacity": e.queue_capacity,
                "concurrency": e.concurrency,
                "max_attempts": e.max_attempts,
                "initial_backoff_ms": e.initial_backoff_ms,
                "max_backoff_ms": e.max_backoff_ms,
            },
        })
    });
    let lifecycle = config.lifecycle.as_ref().map_or(Value::Null, |l| {
        let rules: Vec<Value> = l
            .rules
            .iter()
            .map(|r| {
                json!({
                    "severity": r.severity.map(|s| s.as_str()),
                    "category": r.category.map(|c| c.as_str()),
                    "memory_ttl_ms": r.memory_ttl_ms,
                    "cold_retention_ms": r.cold_retention_ms,
                })
            })
            .collect();
        json!({
            "interval_ms": l.interval_ms,
            "memory_max_bytes": l.memory_max_bytes,
            "cold_max_bytes": l.cold_max_bytes,
            "default": {
                "memory_ttl_ms": l.default.memory_ttl_ms,
                "cold_retention_ms": l.default.cold_retention_ms,
            },
            "rules": rules,
        })
    });
    json!({
        "limits": {"max_payload_size": config.limits.max_payload_size},
        "quarantine": {
            "max_count": config.quarantine.max_count,
            "max_bytes": config.quarantine.max_bytes,
        },
        "rate_limit": {
            "window_ms": rl.window_ms,
            "max_requests": rl.max_requests,
            "block_duration_ms": rl.block_duration_ms,
            "max_sources": rl.max_sources,
            "shards": rl.shards,
        },
        "ledger": ledger,
        "cold": cold,
        "lifecycle": lifecycle,
    })
}

/// The export of the engine's current state. Locks the quarantine briefly, then waits
/// (bounded) for the ledger writer and locks the ledger: call from a blocking context.
pub fn export_snapshot(engine: &Engine) -> Result<pb::ExportSnapshotReply, ExportError> {
    let (evidence, audit) = quarantine_state(&engine.quarantine);
    let ledger = match engine.audit_log() {
        Some(log) => Some(log.settled_facts(audit.length)?),
        None => None,
    };
    let state = SnapshotState {
        evidence,
        audit,
        ledger,
        settings: settings_json(&engine.config()),
    };
    let out = export(&state)?;
    if out.bytes.len() > MAX_SNAPSHOT_BYTES {
        return Err(ExportError::TooLarge(out.bytes.len()));
    }
    Ok(pb::ExportSnapshotReply {
        sha256: out.sha256_hex(),
        snapshot: out.bytes,
    })
}
