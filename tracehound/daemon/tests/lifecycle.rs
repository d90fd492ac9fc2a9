//! `[lifecycle]` in the daemon: a short TTL evacuates evidence to cold storage, cold
//! retention then deletes it, every move is on the audit chain (and in the ledger), the
//! chain verifies, the cost accounting matches the disk, and byte budgets hold.
//!
//! Time is driven by data, not by waiting: evidence is captured in the past so its TTL
//! has run out, and runs are triggered with `RunLifecycle` (polled until the state is
//! reached, bounded by a count).

mod cold_support;

use std::time::Duration;

use cold_support::{
    client, cold_cost, now_ms, on_disk, quarantine, rewrite_and_reload, start, stats, threat,
    Client,
};
use tracehound_rpc::pb;

async fn run(c: &mut Client) -> pb::RunLifecycleReply {
    c.run_lifecycle(pb::RunLifecycleRequest {})
        .await
        .expect("run lifecycle")
        .into_inner()
}

fn base(dir: &std::path::Path) -> String {
    format!(
        "[cold.local]\npath = \"{}\"\n[ledger]\ndir = \"{}\"\nfsync = \"interval\"\nfsync_interval_ms = 5\n",
        dir.join("cold").display(),
        dir.join("ledger").display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_evacuates_then_cold_retention_deletes_with_audit_records() {
    let dir = tempfile::tempdir().unwrap();
    let cold_dir = dir.path().join("cold");
    let base = base(dir.path());
    // Hour-long interval: only RunLifecycle runs the policy in this test.
    let policy = "[lifecycle]\ninterval_ms = 3600000\n[lifecycle.default]\nmemory_ttl_ms = 60000\n\
                  [[lifecycle.rules]]\nseverity = \"critical\"\nmemory_ttl_ms = 86400000\n";
    let r = start(dir, &format!("{base}{policy}")).await;
    let mut c = client(&r).await;
    let old = now_ms() - 600_000.0;
    let mut expired = Vec::new();
    for n in 0..3 {
        expired.push(quarantine(&mut c, threat(n, "spam", "low", 40, old)).await);
    }
    expired.push(quarantine(&mut c, threat(3, "injection", "medium", 80, old)).await);
    // Kept: critical (day-long TTL) and fresh evidence.
    let critical = quarantine(&mut c, threat(4, "injection", "critical", 10, old)).await;
    let fresh = quarantine(&mut c, threat(5, "spam", "low", 10, 0.0)).await;
    let chain_before = stats(&mut c).await.audit.unwrap().length;

    let first = run(&mut c).await;
    assert_eq!(first.evacuated, 4, "{first:?}");
    assert_eq!(
        (first.neutralized, first.deleted_from_cold, first.failures),
        (0, 0, 0)
    );
    let s = stats(&mut c).await;
    assert_eq!(s.quarantine.as_ref().unwrap().count, 2);
    let (disk, files) = on_disk(&cold_dir);
    assert_eq!(files.len(), 4);
    assert_eq!(disk["spam"].0, 3);
    assert_eq!(disk["injection"].0, 1);
    // Cost accounting matches the disk, and memory holds the two kept ones.
    assert_eq!(cold_cost(&s), disk);
    assert_eq!(s.cost_by_category["spam"].memory_count, 1);
    assert_eq!(s.cost_by_category["injection"].memory_count, 1);
    let lifecycle = s.lifecycle.unwrap();
    assert_eq!((lifecycle.runs, lifecycle.evacuated), (1, 4));
    for sig in &expired {
        let got = c
            .cold_retrieve(pb::ColdRetrieveRequest {
                signature: sig.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(got.verified, "{got:?}");
    }

    // Now cold retention of 1 ms: the next runs delete them (polled, bounded).
    rewrite_and_reload(
        &r,
        &format!("{base}{policy}cold_retention_ms = 86400000\n[[lifecycle.rules]]\ncategory = \"spam\"\ncold_retention_ms = 1\n[[lifecycle.rules]]\ncategory = \"injection\"\ncold_retention_ms = 1\n"),
    );
    let mut deleted = 0;
    for _ in 0..500 {
        deleted += run(&mut c).await.deleted_from_cold;
        if deleted == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(deleted, 4);
    let (disk, files) = on_disk(&cold_dir);
    assert!(files.is_empty(), "{files:?}");
    assert!(disk.is_empty());
    let s = stats(&mut c).await;
    assert!(cold_cost(&s).is_empty(), "{:?}", s.cost_by_category);
    assert_eq!(s.cold.as_ref().unwrap().stored_objects, 0);
    // The kept evidence is untouched.
    for sig in [&critical, &fresh] {
        let i = c
            .inspect(pb::InspectRequest {
                signature: sig.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(i.found);
    }
    // Four evacuation records and four deletion records, and the chain verifies.
    let audit = s.audit.unwrap();
    assert_eq!(audit.length, chain_before + 8);
    let v = c
        .verify_chain(pb::VerifyChainRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(v.ok, "{v:?}");
    // The ledger got every record, and verifies from genesis.
    let mut ledger_ok = false;
    for _ in 0..1000 {
        let v = c
            .verify_chain(pb::VerifyChainRequest {})
            .await
            .unwrap()
            .into_inner();
        let l = v.ledger.unwrap();
        if l.entries == audit.length {
            assert!(l.ok, "{l:?}");
            assert_eq!(l.head_hash, audit.head_hash);
            ledger_ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(ledger_ok, "the ledger never caught up with the chain");
    // The last four ledger entries are the deletions, their reason in the id.
    for index in audit.length - 4..audit.length {
        // Proofs cover synced entries: poll until this one is (bounded).
        let mut bundle = None;
        for _ in 0..1000 {
            let asked = c
                .audit_prove(pb::AuditProveRequest {
                    index,
                    ..Default::default()
                })
                .await;
            if let Ok(proof) = asked {
                bundle = Some(proof.into_inner().inclusion_bundle);
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let bundle = bundle.expect("entry never acknowledged");
        assert!(bundle.contains("\"cold-expired-"), "{bundle}");
    }
    r.daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_budgets_hold() {
    let dir = tempfile::tempdir().unwrap();
    let cold_dir = dir.path().join("cold");
    let base = base(dir.path());
    // Pieces of ~230 bytes; memory may keep 1000 bytes, cold 2000.
    let policy =
        "[lifecycle]\ninterval_ms = 3600000\nmemory_max_bytes = 1000\ncold_max_bytes = 2000\n";
    let r = start(dir, &format!("{base}{policy}")).await;
    let mut c = client(&r).await;
    let mut high = Vec::new();
    for n in 0..4u64 {
        high.push(quarantine(&mut c, threat(n, "spam", "high", 200, 0.0)).await);
    }
    let mut deleted = 0;
    for round in 0..3u64 {
        // Each round brings more than either budget can take.
        for n in 0..8u64 {
            quarantine(
                &mut c,
                threat(100 + round * 10 + n, "spam", "low", 200, 0.0),
            )
            .await;
        }
        let out = run(&mut c).await;
        assert_eq!(out.failures, 0, "{out:?}");
        assert!(out.memory_bytes_after <= 1000, "{out:?}");
        assert!(out.cold_bytes_after <= 2000, "{out:?}");
        deleted += out.deleted_from_cold;
        let s = stats(&mut c).await;
        assert!(
            s.quarantine.as_ref().unwrap().bytes <= 1000,
            "round {round}"
        );
        let (disk, _) = on_disk(&cold_dir);
        let on_disk_bytes: u64 = disk.values().map(|t| t.1).sum();
        assert!(on_disk_bytes <= 2000, "round {round}: {on_disk_bytes}");
        assert!(
            on_disk_bytes > 0,
            "round {round}: nothing reached cold storage"
        );
        assert_eq!(cold_cost(&s), disk, "round {round}");
    }
    assert!(deleted > 0, "the cold budget never deleted anything");
    // Lowest priority went first: every high-severity piece is still in memory.
    for sig in &high {
        let i = c
            .inspect(pb::InspectRequest {
                signature: sig.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(i.found, "{sig} was shed before low-severity evidence");
    }
    let s = stats(&mut c).await;
    let l = s.lifecycle.unwrap();
    assert!(l.evacuated > 0 && l.deleted_from_cold > 0, "{l:?}");
    let v = c
        .verify_chain(pb::VerifyChainRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(v.ok, "{v:?}");
    r.daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cold_expired_evidence_is_neutralized_and_the_periodic_task_runs() {
    let dir = tempfile::tempdir().unwrap();
    // A short interval: the periodic task (not RunLifecycle) does the work; the test
    // polls for the state.
    let r = start(
        dir,
        "[lifecycle]\ninterval_ms = 20\n[lifecycle.default]\nmemory_ttl_ms = 1000\n",
    )
    .await;
    let mut c = client(&r).await;
    let old = now_ms() - 600_000.0;
    quarantine(&mut c, threat(1, "spam", "low", 5, old)).await;
    let keep = quarantine(&mut c, threat(2, "spam", "low", 5, now_ms() + 3_600_000.0)).await;
    let s = cold_support::wait_stats(&mut c, "one neutralized", |s| {
        s.lifecycle.as_ref().is_some_and(|l| l.neutralized == 1)
    })
    .await;
    assert_eq!(s.quarantine.as_ref().unwrap().count, 1);
    assert_eq!(s.audit.as_ref().unwrap().length, 1);
    assert!(
        c.inspect(pb::InspectRequest { signature: keep })
            .await
            .unwrap()
            .into_inner()
            .found
    );
    r.daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_lifecycle_without_a_policy_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(dir, "").await;
    let mut c = client(&r).await;
    let e = c
        .run_lifecycle(pb::RunLifecycleRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert!(stats(&mut c).await.lifecycle.is_none());
    r.daemon.shutdown().await;
}

/// After a restart the daemon no longer knows the severity of what is in cold storage:
/// retention by severity must fail closed (the longest retention the category could
/// have), so critical evidence is not deleted under the short default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_unknown_severity_keeps_critical_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let cold_dir = dir.path().join("cold");
    let base = base(dir.path());
    // Default: 1 ms in cold. Critical injection: a day.
    let policy = "[lifecycle]\ninterval_ms = 3600000\n[lifecycle.default]\nmemory_ttl_ms = 1\n\
                  cold_retention_ms = 1\n[[lifecycle.rules]]\nseverity = \"critical\"\n\
                  category = \"injection\"\ncold_retention_ms = 86400000\n";
    let config = format!("{base}{policy}");
    let r = start(dir, &config).await;
    let mut c = client(&r).await;
    let old = now_ms() - 600_000.0;
    let critical = quarantine(&mut c, threat(1, "injection", "critical", 30, old)).await;
    let low = quarantine(&mut c, threat(2, "spam", "low", 30, old)).await;
    let first = run(&mut c).await;
    assert_eq!((first.evacuated, first.failures), (2, 0), "{first:?}");
    assert_eq!(on_disk(&cold_dir).1.len(), 2);
    drop(c);
    let cold_support::Running { daemon, dir, .. } = r;
    daemon.shutdown().await;

    let r = start(dir, &config).await;
    let mut c = client(&r).await;
    // Runs until the spam object (no rule could keep it longer) is gone, bounded.
    let mut deleted = 0;
    for _ in 0..500 {
        let out = run(&mut c).await;
        assert_eq!(out.failures, 0, "{out:?}");
        deleted += out.deleted_from_cold;
        if deleted >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(deleted, 1);
    let retrieve = |sig: &String| pb::ColdRetrieveRequest {
        signature: sig.clone(),
    };
    let kept = c
        .cold_retrieve(retrieve(&critical))
        .await
        .unwrap()
        .into_inner();
    assert!(
        kept.found && kept.verified,
        "critical evidence deleted: {kept:?}"
    );
    let gone = c.cold_retrieve(retrieve(&low)).await.unwrap().into_inner();
    assert!(!gone.found, "{gone:?}");
    // More runs change nothing.
    for _ in 0..3 {
        assert_eq!(run(&mut c).await.deleted_from_cold, 0);
    }
    assert_eq!(on_disk(&cold_dir).1.len(), 1);
    r.daemon.shutdown().await;
}
