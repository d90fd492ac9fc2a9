//! `[cold]` in the daemon: evictions from a small quarantine end up in cold storage (a
//! local directory, and S3 through moto), `ColdRetrieve` verifies them and answers
//! metadata only, a damaged object is reported corrupt, `Evacuate` moves evidence with
//! its audit record, `Stats` counts what is stored, and bad tables are refused with their
//! line and field.

mod cold_support;

use std::path::Path;

use cold_support::{
    client, cold_cost, on_disk, quarantine, start, start_moto, stats, threat, wait_stats,
};
use tracehound_daemon::{ConfigError, DaemonConfig};
use tracehound_rpc::pb;

fn local(dir: &Path, quarantine_count: usize) -> String {
    format!(
        "[quarantine]\nmax_count = {quarantine_count}\n[cold.local]\npath = \"{}\"\n",
        dir.join("cold").display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evicted_evidence_is_stored_verified_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let toml = local(dir.path(), 1);
    let r = start(dir, &toml).await;
    let mut c = client(&r).await;
    let mut sigs = Vec::new();
    for n in 0..4 {
        sigs.push(quarantine(&mut c, threat(n, "spam", "low", 100, 0.0)).await);
    }
    // Three evictions, each written to cold storage.
    let s = wait_stats(&mut c, "3 objects written", |s| {
        s.cold
            .as_ref()
            .is_some_and(|c| c.objects_written == 3 && c.queued == 0)
    })
    .await;
    let cold = s.cold.clone().unwrap();
    assert_eq!(
        (cold.from_evictions, cold.dropped, cold.failures),
        (3, 0, 0)
    );
    assert!(cold.store.starts_with("file://"), "{}", cold.store);
    let cold_dir = r.dir.path().join("cold");
    let (disk, files) = on_disk(&cold_dir);
    assert_eq!(files.len(), 3);
    assert_eq!(disk["spam"].0, 3);
    // Cost accounting: the cold side matches the disk, memory holds the newest one.
    assert_eq!(cold_cost(&s), disk);
    assert_eq!((cold.stored_objects, cold.stored_bytes), disk["spam"]);
    let spam = &s.cost_by_category["spam"];
    assert_eq!(spam.memory_count, 1);
    assert_eq!(spam.memory_bytes, s.quarantine.as_ref().unwrap().bytes);

    // Every evicted one verifies; the one still in memory has no cold object.
    for sig in &sigs[..3] {
        let got = c
            .cold_retrieve(pb::ColdRetrieveRequest {
                signature: sig.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(got.found && got.verified, "{got:?}");
        assert_eq!(&got.signature, sig);
        assert_eq!(got.hash, sig.split_once(':').unwrap().1);
        assert_eq!(got.severity, "low");
        assert!(got.size > 100 && got.object_size > 78, "{got:?}");
        assert!(got.corrupt_reason.is_empty());
    }
    let missing = c
        .cold_retrieve(pb::ColdRetrieveRequest {
            signature: sigs[3].clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!missing.found && !missing.verified);
    let bad = c
        .cold_retrieve(pb::ColdRetrieveRequest {
            signature: "spam:../../etc".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    r.daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_object_is_reported_corrupt_not_returned() {
    let dir = tempfile::tempdir().unwrap();
    let toml = local(dir.path(), 1);
    let r = start(dir, &toml).await;
    let mut c = client(&r).await;
    let first = quarantine(&mut c, threat(1, "injection", "high", 50, 0.0)).await;
    quarantine(&mut c, threat(2, "injection", "high", 50, 0.0)).await;
    wait_stats(&mut c, "1 object written", |s| {
        s.cold
            .as_ref()
            .is_some_and(|c| c.objects_written == 1 && c.queued == 0)
    })
    .await;
    let (_, files) = on_disk(&r.dir.path().join("cold"));
    assert_eq!(files.len(), 1);
    // Flip one byte of the compressed bytes (after the 78-byte header).
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&files[0], &bytes).unwrap();
    let got = c
        .cold_retrieve(pb::ColdRetrieveRequest {
            signature: first.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(got.found, "{got:?}");
    assert!(!got.verified, "{got:?}");
    assert!(!got.corrupt_reason.is_empty());
    assert_eq!((got.size, got.compressed_size), (0, 0));
    assert_eq!(got.object_size, bytes.len() as u64);
    r.daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evacuate_moves_evidence_with_its_audit_record() {
    let dir = tempfile::tempdir().unwrap();
    let toml = local(dir.path(), 100);
    let r = start(dir, &toml).await;
    let mut c = client(&r).await;
    let one = quarantine(&mut c, threat(1, "spam", "low", 10, 0.0)).await;
    quarantine(&mut c, threat(2, "spam", "high", 10, 0.0)).await;
    quarantine(&mut c, threat(3, "ddos", "low", 10, 0.0)).await;
    quarantine(&mut c, threat(4, "malware", "critical", 10, 0.0)).await;
    let before = stats(&mut c).await.audit.unwrap().length;

    let reply = c
        .evacuate(pb::EvacuateRequest {
            signature: one.clone(),
            wait: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.evacuated.len(), 1);
    assert_eq!(reply.evacuated[0].signature, one);
    assert!(reply.destination.starts_with("file://"));
    assert_eq!(reply.cold.unwrap().objects_written, 1);
    let again = c
        .evacuate(pb::EvacuateRequest {
            signature: one.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), tonic::Code::NotFound);

    // A filter: low severity only (the ddos one; spam/low is already gone).
    let low = c
        .evacuate(pb::EvacuateRequest {
            severity: "low".into(),
            wait: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(low.evacuated.len(), 1);
    assert!(low.evacuated[0].signature.starts_with("ddos:"));
    let bad = c
        .evacuate(pb::EvacuateRequest {
            severity: "low".into(),
            all: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    let all = c
        .evacuate(pb::EvacuateRequest {
            all: true,
            wait: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.evacuated.len(), 2);

    let s = stats(&mut c).await;
    assert_eq!(s.quarantine.as_ref().unwrap().count, 0);
    // One evacuation record per move, and the chain verifies.
    assert_eq!(s.audit.as_ref().unwrap().length, before + 4);
    let v = c
        .verify_chain(pb::VerifyChainRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(v.ok, "{v:?}");
    let (disk, files) = on_disk(&r.dir.path().join("cold"));
    assert_eq!(files.len(), 4);
    assert_eq!(cold_cost(&s), disk);
    r.daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cold_the_methods_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(dir, "").await;
    let mut c = client(&r).await;
    let e = c
        .cold_retrieve(pb::ColdRetrieveRequest {
            signature: format!("spam:{}", "0".repeat(64)),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    let e = c
        .evacuate(pb::EvacuateRequest {
            all: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert!(stats(&mut c).await.cold.is_none());
    r.daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evictions_reach_s3_and_verify() {
    let Some(moto) = start_moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[quarantine]\nmax_count = 1\n{}",
        moto.bucket_toml("evidence")
    );
    let r = start(dir, &toml).await;
    let mut c = client(&r).await;
    let mut sigs = Vec::new();
    for n in 0..3 {
        sigs.push(quarantine(&mut c, threat(n, "flood", "medium", 64, 0.0)).await);
    }
    let s = wait_stats(&mut c, "2 objects in S3", |s| {
        s.cold
            .as_ref()
            .is_some_and(|c| c.objects_written == 2 && c.queued == 0)
    })
    .await;
    let cold = s.cold.unwrap();
    assert_eq!(cold.store, "s3://evidence/tracehound/evidence");
    assert_eq!(cold.stored_objects, 2);
    assert_eq!(s.cost_by_category["flood"].cold_count, 2);
    for sig in &sigs[..2] {
        let got = c
            .cold_retrieve(pb::ColdRetrieveRequest {
                signature: sig.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(got.found && got.verified, "{got:?}");
        assert!(got.store.starts_with("s3://"));
    }
    // Damage one object through S3 itself: put different bytes under its key.
    let key = c
        .cold_retrieve(pb::ColdRetrieveRequest {
            signature: sigs[0].clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .key;
    let direct = tracehound_cold::ColdStore::s3(
        &tracehound_cold::S3Config {
            bucket: "evidence".into(),
            region: Some("us-east-1".into()),
            endpoint: Some(format!("http://127.0.0.1:{}", moto.port)),
            access_key_id: Some("testing".into()),
            secret_access_key: Some("testing".into()),
            allow_http: true,
            ..Default::default()
        },
        tracehound_cold::layout::DEFAULT_PREFIX,
    )
    .unwrap();
    use object_store::ObjectStoreExt;
    direct
        .object_store()
        .put(
            &object_store::path::Path::from(key),
            object_store::PutPayload::from(b"not an envelope".to_vec()),
        )
        .await
        .unwrap();
    let got = c
        .cold_retrieve(pb::ColdRetrieveRequest {
            signature: sigs[0].clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        got.found && !got.verified && !got.corrupt_reason.is_empty(),
        "{got:?}"
    );
    r.daemon.shutdown().await;
}

fn config_error(text: &str) -> (usize, String, String) {
    match DaemonConfig::parse(text, Path::new("d.toml")) {
        Err(ConfigError::Invalid {
            line,
            field,
            message,
            ..
        }) => (line, field, message),
        other => panic!("expected an invalid config, got {other:?}"),
    }
}

#[test]
fn bad_cold_and_lifecycle_tables_name_line_and_field() {
    let (line, field, _) = config_error("[cold.local]\npath = \"/x\"\n[cold.s3]\nbucket = \"b\"\n");
    assert_eq!((line, field.as_str()), (0, "cold"));
    let (line, field, _) = config_error("[cold.local]\npath = \"/x\"\nbogus = 1\n");
    assert_eq!((line, field.as_str()), (3, "cold.local.bogus"));
    let (line, field, message) =
        config_error("[cold.s3]\nbucket = \"b\"\nendpoint = \"http://127.0.0.1:9\"\n");
    assert_eq!((line, field.as_str()), (3, "cold.s3.endpoint"));
    assert!(message.contains("allow_http"), "{message}");
    let (line, field, _) =
        config_error("[cold.local]\npath = \"/x\"\n[cold.evacuation]\nqueue_capacity = 0\n");
    assert_eq!(
        (line, field.as_str()),
        (4, "cold.evacuation.queue_capacity")
    );
    let (line, field, message) =
        config_error("[lifecycle]\ninterval_ms = 5\n[[lifecycle.rules]]\nseverity = \"urgent\"\n");
    assert_eq!(line, 4, "{field}: {message}");
    assert!(message.contains("urgent"), "{message}");
    let (line, field, _) = config_error("[lifecycle]\ninterval_ms = 0\n");
    assert_eq!((line, field.as_str()), (2, "lifecycle.interval_ms"));
    let (line, field, message) = config_error("[[lifecycle.rules]]\nmemory_ttl_ms = 5\n");
    assert_eq!((line, field.as_str()), (1, "lifecycle.rules"));
    assert!(message.contains("rules[0]"), "{message}");
    // A complete, valid example parses.
    let ok = DaemonConfig::parse(
        "[cold.local]\npath = \"/x\"\n[lifecycle]\ninterval_ms = 1000\nmemory_max_bytes = 10\n\
         [lifecycle.default]\nmemory_ttl_ms = 60000\n[[lifecycle.rules]]\ncategory = \"spam\"\n\
         cold_retention_ms = 5\n",
        Path::new("d.toml"),
    )
    .unwrap();
    assert_eq!(ok.clone().lifecycle.unwrap().rules.len(), 1);
    // [cold] needs a restart; [lifecycle] is reloaded.
    let moved = DaemonConfig::parse(
        "[cold.local]\npath = \"/y\"\n[lifecycle]\ninterval_ms = 5\n",
        Path::new("d.toml"),
    )
    .unwrap();
    assert_eq!(moved.restart_only_changes(&ok), vec!["cold"]);
    let applied = moved.reloadable_part(&ok);
    assert_eq!(applied.cold, ok.cold);
    assert_eq!(applied.lifecycle.unwrap().interval_ms, 5);
}

#[test]
fn an_evacuation_queue_that_could_hold_too_many_bytes_is_refused() {
    // 4096 entries of up to 1 MB payloads: 4 GB at worst, over the 1 GiB cap.
    let (_, field, message) =
        config_error("[cold.local]\npath = \"/x\"\n[cold.evacuation]\nqueue_capacity = 4096\n");
    assert_eq!(field, "cold.evacuation.queue_capacity");
    assert!(message.contains("max_payload_size"), "{message}");
    // The same queue with smaller payloads fits (1 GiB exactly is allowed).
    DaemonConfig::parse(
        "[limits]\nmax_payload_size = 262144\n[cold.local]\npath = \"/x\"\n\
         [cold.evacuation]\nqueue_capacity = 4096\n",
        Path::new("d.toml"),
    )
    .unwrap();
    // The defaults fit.
    DaemonConfig::parse("[cold.local]\npath = \"/x\"\n", Path::new("d.toml")).unwrap();
}

/// A deletion planned from a listing removes only the object that was listed: if the
/// evacuator rewrote it since (different size or time), nothing is deleted and nothing
/// recorded. When it is deleted, its record is on the chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_skips_an_object_rewritten_since_the_listing() {
    use tracehound_core::quarantine::{Quarantine, QuarantineConfig};
    use tracehound_daemon::cold_wiring::Listed;

    let dir = tempfile::tempdir().unwrap();
    let cold_dir = dir.path().join("cold");
    let toml = local(dir.path(), 100);
    let r = start(dir, &toml).await;
    let mut c = client(&r).await;
    let one = quarantine(&mut c, threat(1, "spam", "low", 10, 0.0)).await;
    c.evacuate(pb::EvacuateRequest {
        signature: one.clone(),
        wait: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let cold = r.daemon.engine().cold().expect("cold storage");
    let listed = cold.list_and_reconcile().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].severity.map(|s| s.as_str()), Some("low"));
    let was = Listed {
        last_modified_ms: listed[0].stored_ms as i64,
        size: listed[0].size,
    };
    // Rewritten since the listing: another size.
    let (_, files) = on_disk(&cold_dir);
    let mut bytes = std::fs::read(&files[0]).unwrap();
    bytes.push(0);
    std::fs::write(&files[0], &bytes).unwrap();
    let audit = Quarantine::new(QuarantineConfig::default());
    let skipped = cold
        .delete_audited(&audit, &one, "cold-expired", 1.0, Some(was))
        .await
        .unwrap();
    assert!(skipped.is_none());
    assert_eq!(audit.with_store(|s| s.audit().len()), 0);
    assert_eq!(on_disk(&cold_dir).1.len(), 1);
    // As listed now: deleted, with its record.
    let now = Listed {
        size: was.size + 1,
        ..was
    };
    let listed = cold.list_and_reconcile().await.unwrap();
    let now = Listed {
        last_modified_ms: listed[0].stored_ms as i64,
        ..now
    };
    let deleted = cold
        .delete_audited(&audit, &one, "cold-expired", 1.0, Some(now))
        .await
        .unwrap()
        .expect("deleted");
    assert!(deleted.record.id.starts_with("cold-expired-"));
    assert_eq!(audit.with_store(|s| s.audit().len()), 1);
    assert!(on_disk(&cold_dir).1.is_empty());
    r.daemon.shutdown().await;
}
