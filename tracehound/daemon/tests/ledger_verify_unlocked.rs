//! `VerifyChain`'s ledger part does not hold up the writer: while a verification is in
//! progress (captured, files not yet read) new audit records are copied into the ledger,
//! synced and acknowledged, and the verification answers for the size it captured.
//!
//! Deterministic: the verification is paused through a hook at the point between the
//! capture and the file reads, and the acknowledgement is awaited inside that pause. If
//! the ledger lock were still held there the writer could never acknowledge; the timeout
//! below only turns that deadlock into a failure instead of a hang (no timing is measured).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tracehound_core::audit::RecordKind;
use tracehound_core::quarantine::{Quarantine, QuarantineConfig};
use tracehound_daemon::audit_log::AuditLog;
use tracehound_daemon::config::{FsyncMode, LedgerSection};
use tracehound_rpc::pb;

/// Generous: reached only if the writer is blocked for good.
const DEADLOCK_GUARD: Duration = Duration::from_secs(120);

fn settings(dir: &Path) -> LedgerSection {
    LedgerSection {
        dir: Some(dir.to_path_buf()),
        fsync: FsyncMode::Every,
        // Several segments, so the verification has files to walk.
        max_segment_bytes: 8192,
        ..LedgerSection::default()
    }
}

/// Appends records `from..to` to the core chain (as intercepts do) and nudges the writer.
fn add_records(q: &Quarantine, log: &AuditLog, from: u64, to: u64) -> u64 {
    q.with_store(|s| {
        for i in from..to {
            s.audit_mut().append(
                RecordKind::Neutralization,
                &format!("rec-{i}"),
                &format!("spam:{i:064x}"),
                1_700_000_000_000.0 + i as f64,
            );
        }
    });
    log.durability_target()
}

/// Waits until the writer reports `target` records of this run durable; returns the
/// acknowledged ledger size.
fn acknowledged(rt: &tokio::runtime::Runtime, log: &AuditLog, target: u64) -> u64 {
    let mut reply = pb::InterceptReply::default();
    rt.block_on(async {
        tokio::time::timeout(DEADLOCK_GUARD, log.acknowledge(target, &mut reply)).await
    })
    .expect("the writer could not acknowledge while a verification was in progress");
    assert_eq!(reply.error_code, "", "{}", reply.error_message);
    reply.audit_durable_size
}

#[test]
fn appends_are_acknowledged_while_a_verification_is_in_progress() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let q = Arc::new(Quarantine::new(QuarantineConfig::default()));
    let log = AuditLog::open(&settings(&dir.path().join("ledger")), Arc::clone(&q)).unwrap();

    let target = add_records(&q, &log, 0, 300);
    assert_eq!(acknowledged(&rt, &log, target), 300);

    let mut during = None;
    let verified = log.verify_pausing(|| {
        let target = add_records(&q, &log, 300, 310);
        during = Some(acknowledged(&rt, &log, target));
    });
    assert_eq!(during, Some(310), "acknowledged during the verification");
    assert!(verified.ok, "{}", verified.error);
    assert_eq!(verified.entries, 300, "the size captured, not the size now");

    let after = log.verify();
    assert!(after.ok, "{}", after.error);
    assert_eq!(after.entries, 310);
    assert_ne!(after.root_hash, verified.root_hash);

    // Proofs still answer for the acknowledged size.
    let proof = log.prove(305, Some((0, 0))).unwrap();
    assert!(proof.inclusion_bundle.contains("\"tree_size\": 310"));
    log.close();
}
