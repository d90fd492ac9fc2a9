//! `IncidentRecord` and `ExportSnapshot` over gRPC: an incident under `fsync = "batch"`
//! is forced durable and checkpointed, its index continues across a restart, the RPCs
//! refuse what they cannot answer, and exports are deterministic with or without a
//! ledger.

mod common;

use std::path::Path;

use common::{req, start};
use tracehound_daemon::config::{FsyncMode, LedgerSection, QuarantineSection};
use tracehound_daemon::DaemonConfig;
use tracehound_ledger::{verify_incident_record, CheckpointVerifier};
use tracehound_rpc::pb;
use tracehound_rpc::pb::tracehound_client::TracehoundClient;

type Client = TracehoundClient<tonic::transport::Channel>;

fn config(ledger: Option<&Path>) -> DaemonConfig {
    DaemonConfig {
        quarantine: QuarantineSection {
            max_count: 1,
            ..QuarantineSection::default()
        },
        ledger: ledger.map(|dir| LedgerSection {
            dir: Some(dir.to_path_buf()),
            // Nothing would sync these records for a long while: the incident must.
            fsync: FsyncMode::Batch,
            fsync_batch: 1000,
            checkpoint_interval_ms: 86_400_000,
            ..LedgerSection::default()
        }),
        ..DaemonConfig::default()
    }
}

async fn client(socket: &Path) -> Client {
    tracehound_rpc::connect(&format!("unix:{}", socket.display()))
        .await
        .unwrap()
}

async fn threat(c: &mut Client, n: u64) -> String {
    let r = c
        .intercept(req(
            &format!("s{n}"),
            &format!("{{\"n\":{n}}}"),
            Some(("ddos", "medium")),
            n,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.status(), pb::Status::Quarantined);
    r.signature
}

async fn incident(c: &mut Client, signature: &str) -> pb::IncidentRecordReply {
    c.incident_record(pb::IncidentRecordRequest {
        signature: signature.to_owned(),
    })
    .await
    .unwrap()
    .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_are_forced_durable_and_continue_across_a_restart() {
    let ledger_dir = tempfile::tempdir().unwrap();
    let d = start(config(Some(ledger_dir.path()))).await;
    let mut c = client(&d.socket()).await;
    let mut held = String::new();
    for n in 0..3 {
        held = threat(&mut c, n).await;
    }
    let r = incident(&mut c, &held).await;
    assert_eq!((r.index, r.tree_size), (2, 3));
    let verifier = CheckpointVerifier::from_verifier_key(&r.verifier_key).unwrap();
    let v = verify_incident_record(&r.record, &verifier).unwrap();
    assert_eq!(v.evidence.signature, held);
    assert_eq!(v.evidence.severity, "medium");
    assert_eq!(v.evidence.captured_ms, 1_700_000_000_002.0);
    // The forced checkpoint is the latest one too.
    let cp = c
        .audit_checkpoint(pb::AuditCheckpointRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cp.size, 3);
    // Unknown evidence.
    let status = c
        .incident_record(pb::IncidentRecordRequest {
            signature: format!("ddos:{}", "0".repeat(64)),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    // The in-memory chain holds the incident record as its last record and verifies.
    let chain = c
        .verify_chain(pb::VerifyChainRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        chain.ok && chain.ledger.as_ref().is_some_and(|l| l.ok),
        "{chain:?}"
    );
    assert_eq!(chain.length, 3);
    drop(c);
    d.daemon.shutdown().await;

    // After a restart the core chain starts again; the ledger continues at entry 3.
    let d = start(config(Some(ledger_dir.path()))).await;
    let mut c = client(&d.socket()).await;
    let held = threat(&mut c, 10).await;
    let r = incident(&mut c, &held).await;
    assert_eq!((r.index, r.tree_size), (3, 4));
    let v = verify_incident_record(&r.record, &verifier).unwrap();
    assert_eq!(v.inclusion.index, 3);
    drop(c);
    d.daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_are_deterministic_and_incidents_need_a_ledger() {
    let d = start(config(None)).await;
    let mut c = client(&d.socket()).await;
    let status = c
        .incident_record(pb::IncidentRecordRequest {
            signature: format!("ddos:{}", "0".repeat(64)),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    threat(&mut c, 1).await;
    let export = |mut c: Client| async move {
        c.export_snapshot(pb::ExportSnapshotRequest {})
            .await
            .unwrap()
            .into_inner()
    };
    let a = export(c.clone()).await;
    // Clean traffic and a rate-limited source change counters, not forensic state.
    for n in 0..20 {
        c.intercept(req("busy", "{}", None, 100 + n)).await.unwrap();
    }
    let b = export(c.clone()).await;
    assert_eq!(a, b);
    assert_eq!(
        a.sha256,
        tracehound_core::hash::sha256_hex(&a.snapshot),
        "the hash is of the bytes sent"
    );
    let text = String::from_utf8(a.snapshot.clone()).unwrap();
    assert!(text.contains("\"ledger\":null"), "{text}");
    tracehound_core::snapshot_export::verify(&a.snapshot).unwrap();
    threat(&mut c, 2).await;
    assert_ne!(export(c.clone()).await.sha256, a.sha256);
    drop(c);
    d.daemon.shutdown().await;
}

/// The ledger's part of an export as `(size, checkpoint size)`.
fn ledger_sizes(snapshot: &[u8]) -> (u64, u64) {
    let doc: serde_json::Value = serde_json::from_slice(snapshot).unwrap();
    (
        doc["ledger"]["size"].as_u64().unwrap(),
        doc["ledger"]["checkpoint"]["size"].as_u64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_with_a_batched_ledger_settle_it_without_an_incident() {
    let ledger_dir = tempfile::tempdir().unwrap();
    let d = start(config(Some(ledger_dir.path()))).await;
    let mut c = client(&d.socket()).await;
    // max_count 1: each new threat evicts the last one, so the chain grows (3 records).
    for n in 0..4 {
        threat(&mut c, n).await;
    }
    let export = |mut c: Client| async move {
        c.export_snapshot(pb::ExportSnapshotRequest {})
            .await
            .unwrap()
            .into_inner()
    };
    let a = export(c.clone()).await;
    let doc: serde_json::Value = serde_json::from_slice(&a.snapshot).unwrap();
    let audit_length = doc["audit"]["length"].as_u64().unwrap();
    assert_eq!(audit_length, 3, "{doc}");
    // fsync_batch 1000 and a day between checkpoints: only the export can have synced
    // and checkpointed these records.
    assert_eq!(ledger_sizes(&a.snapshot), (3, 3));
    // Published at once, not at the writer's next pass.
    let stats = c
        .stats(pb::StatsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .ledger
        .unwrap();
    assert_eq!((stats.acknowledged, stats.checkpoint_size), (3, 3));
    let b = export(c.clone()).await;
    assert_eq!(a, b, "same state, same bytes");
    tracehound_core::snapshot_export::verify(&a.snapshot).unwrap();
    // A new record moves the export, and it is settled again.
    threat(&mut c, 9).await;
    let after = export(c.clone()).await;
    assert_ne!(after.sha256, a.sha256);
    assert_eq!(ledger_sizes(&after.snapshot), (4, 4));
    drop(c);
    d.daemon.shutdown().await;
}

#[test]
fn the_config_digest_covers_cold_and_lifecycle_without_paths() {
    use tracehound_daemon::config::LifecycleSection;
    use tracehound_daemon::snapshot_export::settings_json;

    let mut cfg = config(None);
    let plain = settings_json(&cfg);
    assert!(plain["cold"].is_null() && plain["lifecycle"].is_null());
    cfg.lifecycle = Some(LifecycleSection {
        interval_ms: 1234,
        ..LifecycleSection::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let cold: tracehound_daemon::config::ColdSection = toml::from_str(&format!(
        "prefix = \"evidence/\"\n[local]\npath = {:?}\n",
        dir.path().display().to_string()
    ))
    .unwrap();
    cfg.cold = Some(cold);
    let with = settings_json(&cfg);
    assert_eq!(with["lifecycle"]["interval_ms"], 1234);
    assert_eq!(with["cold"]["backend"], "local");
    let text = with.to_string();
    assert!(!text.contains(&dir.path().display().to_string()), "{text}");
}
