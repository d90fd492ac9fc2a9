//! The audit ledger inside the daemon: each fsync policy gets every audit record into the
//! ledger (only `every` makes replies wait), a graceful restart continues the chain and
//! the tree, one ledger directory serves one daemon, and the audit RPCs refuse what they
//! cannot answer.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{req, start};
use tracehound_daemon::config::{FsyncMode, LedgerSection, QuarantineSection};
use tracehound_daemon::{Daemon, DaemonConfig, DaemonError};
use tracehound_ledger::{verify_inclusion_bundle, CheckpointVerifier};
use tracehound_rpc::pb;

fn config(ledger: &Path, fsync: FsyncMode) -> DaemonConfig {
    DaemonConfig {
        quarantine: QuarantineSection {
            max_count: 1,
            ..QuarantineSection::default()
        },
        ledger: Some(LedgerSection {
            dir: Some(ledger.to_path_buf()),
            fsync,
            fsync_interval_ms: 5,
            fsync_batch: 3,
            checkpoint_interval_ms: 20,
            ..LedgerSection::default()
        }),
        ..DaemonConfig::default()
    }
}

fn threat(n: u64) -> pb::InterceptRequest {
    req(
        &format!("s{n}"),
        &format!("{{\"n\":{n}}}"),
        Some(("spam", "low")),
        n,
    )
}

async fn client(
    socket: &Path,
) -> tracehound_rpc::pb::tracehound_client::TracehoundClient<tonic::transport::Channel> {
    tracehound_rpc::connect(&format!("unix:{}", socket.display()))
        .await
        .unwrap()
}

/// Polls Stats until the ledger holds `entries` durable entries (bounded, not timed).
async fn wait_for_entries(
    c: &mut tracehound_rpc::pb::tracehound_client::TracehoundClient<tonic::transport::Channel>,
    entries: u64,
) -> pb::LedgerStats {
    for _ in 0..1000 {
        let s = c
            .stats(pb::StatsRequest { top: 1 })
            .await
            .unwrap()
            .into_inner()
            .ledger
            .unwrap();
        if s.acknowledged >= entries && s.checkpoint_size >= entries {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the ledger never reached {entries} durable entries");
}

#[tokio::test]
async fn every_policy_writes_every_record_and_only_every_waits() {
    for fsync in [FsyncMode::Every, FsyncMode::Interval, FsyncMode::Batch] {
        let ledger = tempfile::tempdir().unwrap();
        let d = start(config(ledger.path(), fsync)).await;
        let mut c = client(&d.socket()).await;
        // 10 quarantines through a batch stream and 10 unary: 19 evictions.
        let batch: Vec<_> = (0..10).map(threat).collect();
        let mut replies = c
            .intercept_batch(tokio_stream::iter(batch))
            .await
            .unwrap()
            .into_inner();
        let mut seqs = Vec::new();
        while let Some(r) = replies.message().await.unwrap() {
            assert_eq!(r.status(), pb::Status::Quarantined);
            seqs.push((r.sequence, r.audit_durable_size));
        }
        for n in 10..20 {
            let r = c.intercept(threat(n)).await.unwrap().into_inner();
            seqs.push((r.sequence, r.audit_durable_size));
        }
        let order: Vec<u64> = seqs.iter().map(|(s, _)| *s).collect();
        assert_eq!(order, (0..20).collect::<Vec<_>>(), "{fsync:?}");
        let acked: Vec<u64> = seqs.iter().map(|(_, a)| *a).collect();
        if fsync == FsyncMode::Every {
            // Reply n waits for the n evictions before it.
            for (n, a) in acked.iter().enumerate() {
                assert!(*a >= n as u64, "{fsync:?}: reply {n} acknowledged {a}");
            }
        } else {
            assert!(acked.iter().all(|a| *a == 0), "{fsync:?}: {acked:?}");
        }
        let stats = wait_for_entries(&mut c, 19).await;
        assert_eq!(stats.fsync, fsync.as_str());
        assert_eq!((stats.entries, stats.pending, stats.failures), (19, 0, 0));
        let chain = c
            .verify_chain(pb::VerifyChainRequest {})
            .await
            .unwrap()
            .into_inner();
        let l = chain.ledger.unwrap();
        assert!(l.ok, "{}", l.error);
        // First run: the ledger's chain is the core's, record for record.
        assert_eq!((l.entries, &l.head_hash), (chain.length, &chain.head_hash));
        d.daemon.shutdown().await;
    }
}

#[tokio::test]
async fn a_restart_continues_chain_and_tree() {
    let ledger = tempfile::tempdir().unwrap();
    let d = start(config(ledger.path(), FsyncMode::Every)).await;
    let mut c = client(&d.socket()).await;
    for n in 0..6 {
        c.intercept(threat(n)).await.unwrap();
    }
    let first = c
        .verify_chain(pb::VerifyChainRequest {})
        .await
        .unwrap()
        .into_inner()
        .ledger
        .unwrap();
    assert_eq!(first.entries, 5);
    d.daemon.shutdown().await;

    let d = start(config(ledger.path(), FsyncMode::Every)).await;
    let mut c = client(&d.socket()).await;
    for n in 100..104 {
        c.intercept(threat(n)).await.unwrap();
    }
    let chain = c
        .verify_chain(pb::VerifyChainRequest {})
        .await
        .unwrap()
        .into_inner();
    let second = chain.ledger.unwrap();
    assert!(second.ok, "{}", second.error);
    // The shutdown left one piece of evidence unevicted: 3 new records after the restart.
    assert_eq!(second.entries, 8);
    // The in-memory chain of this run starts at genesis; the ledger's goes on.
    assert_eq!(chain.length, 3);
    assert_ne!(chain.head_hash, second.head_hash);
    let proof = c
        .audit_prove(pb::AuditProveRequest {
            index: 6,
            consistency: true,
            first_size: 5,
            second_size: 8,
        })
        .await
        .unwrap()
        .into_inner();
    let verifier = CheckpointVerifier::from_verifier_key(&proof.verifier_key).unwrap();
    let v = verify_inclusion_bundle(&proof.inclusion_bundle, Some(&verifier)).unwrap();
    assert_eq!((v.index, v.tree_size), (6, 8));
    let cons = tracehound_ledger::verify_consistency_bundle(&proof.consistency_bundle).unwrap();
    assert_eq!(cons.first_root, first.root_hash);
    assert_eq!(cons.second_root, second.root_hash);
    // The same key signs after the restart.
    let cp = c
        .audit_checkpoint(pb::AuditCheckpointRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cp.verifier_key, proof.verifier_key);
    assert!(verifier.verify(&cp.checkpoint).is_ok());
    assert!(ledger.path().join("checkpoint").is_file());

    // Out of range: past the acknowledged entries, or reversed sizes.
    for (index, consistency, first_size, second_size) in
        [(8, false, 0, 0), (0, true, 6, 5), (0, true, 1, 9)]
    {
        let e = c
            .audit_prove(pb::AuditProveRequest {
                index,
                consistency,
                first_size,
                second_size,
            })
            .await
            .unwrap_err();
        assert_eq!(
            e.code(),
            tonic::Code::OutOfRange,
            "{index} {first_size} {second_size}"
        );
    }

    // A second daemon on the same ledger directory is refused.
    let other = tempfile::tempdir().unwrap();
    let mut cfg = config(ledger.path(), FsyncMode::Every);
    cfg.listen.socket = Some(other.path().join("d.sock"));
    cfg.reload.watch = false;
    match Daemon::start(cfg, None).await {
        Err(DaemonError::Apply(m)) => assert!(m.contains("in use"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn audit_rpcs_without_a_ledger_are_failed_precondition() {
    let d = start(DaemonConfig::default()).await;
    let mut c = client(&d.socket()).await;
    let e = c
        .audit_prove(pb::AuditProveRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    let e = c
        .audit_checkpoint(pb::AuditCheckpointRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    let s = c
        .stats(pb::StatsRequest { top: 1 })
        .await
        .unwrap()
        .into_inner();
    assert!(s.ledger.is_none());
    let v = c
        .verify_chain(pb::VerifyChainRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(v.ledger.is_none());
}
