//! Erasure runs inside the daemon, driven through the gRPC service in-process.

use std::sync::Arc;

use tonic::Request;
use tracehound_rpc::pb;
use tracehound_rpc::pb::tracehound_server::Tracehound;

use crate::engine::Engine;
use crate::{DaemonConfig, TracehoundService};

const SOURCE: &str = "192.0.2.44";

async fn intercept(svc: &TracehoundService, n: u64) -> String {
    let reply = svc
        .intercept(Request::new(pb::InterceptRequest {
            id: format!("scent-{n}"),
            source: SOURCE.into(),
            payload_json: format!(r#"{{"n":{n}}}"#),
            threat: Some(pb::Threat {
                category: "injection".into(),
                severity: "high".into(),
            }),
            sequence: n,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.status(), pb::Status::Quarantined, "{reply:?}");
    reply.signature
}

/// The request future is polled once (the erasure starts) and then dropped, as when the
/// client disconnects: the erasure still finishes — evidence gone, the audit record
/// appended, the source forgotten in the security state's history and the rate limiter.
#[tokio::test(flavor = "current_thread")]
async fn an_erasure_finishes_when_its_request_is_dropped() {
    let engine = Arc::new(Engine::new(DaemonConfig::default(), None).unwrap());
    let svc = TracehoundService::new(Arc::clone(&engine));
    let sig = intercept(&svc, 1).await;
    let audit_before = engine.quarantine.with_store(|q| q.audit_mut().len());
    {
        let fut = svc.erase(Request::new(pb::EraseRequest {
            target: Some(pb::erase_request::Target::Source(SOURCE.into())),
        }));
        tokio::pin!(fut);
        tokio::select! {
            biased;
            _ = &mut fut => panic!("the erasure cannot finish without yielding"),
            () = std::future::ready(()) => {}
        }
    }
    // Let the erasure's task take its lock, then wait for it to release it.
    tokio::task::yield_now().await;
    engine.erasure().wait_idle().await;
    assert!(engine.quarantine.with_store(|q| q.get(&sig).is_none()));
    let audit_after = engine.quarantine.with_store(|q| q.audit_mut().len());
    assert_eq!(
        audit_after,
        audit_before + 1,
        "the erasure record was appended"
    );
    assert_eq!(engine.erasure().stats().signatures_erased, 1);
    assert!(
        !engine.agent().rate_limiter().reset(SOURCE),
        "window forgotten"
    );
    assert!(engine
        .state
        .history(usize::MAX)
        .iter()
        .all(|e| !format!("{e:?}").contains(&sig)));
}

/// `threat.detected` carries the scent id and no signature: the emitter's participant
/// purges the pending events of the erased scent ids and keeps the others.
#[test]
fn scent_id_erasure_purges_pending_threat_events() {
    use tracehound_core::notify::{threat_detected_payload, EventType, NotificationEmitter};
    use tracehound_core::types::{Severity, ThreatCategory};

    use super::ErasureParticipant;
    let emitter = NotificationEmitter::new(Default::default());
    let sub = emitter.subscribe(&[EventType::ThreatDetected]).unwrap();
    for id in ["scent-a", "scent-b", "scent-a"] {
        let payload =
            threat_detected_payload(id, ThreatCategory::Injection, Severity::High, SOURCE);
        emitter.emit(EventType::ThreatDetected, payload, 1);
    }
    assert_eq!(
        ErasureParticipant::purge_matching(&emitter, Some("injection:00"), None),
        0,
        "by signature it is missed"
    );
    assert_eq!(emitter.purge_scents(&["scent-a".into()]), 2);
    assert_eq!(emitter.purge_scents(&[]), 0);
    let left: Vec<_> = sub.drain(10);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].payload()["scentId"], "scent-b");
}

/// A step that fails (the key file cannot be shredded: a directory stands in its place)
/// makes the record an `incomplete-erasure-` one, and the destroy is not counted; a clean
/// erasure gets the core's `erasure-` prefix.
#[tokio::test(flavor = "current_thread")]
async fn a_failed_step_is_audited_as_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let vault_dir = dir.path().join("vault");
    let toml = format!("[erasure]\nvault_dir = \"{}\"\n", vault_dir.display());
    let config = DaemonConfig::parse(&toml, &dir.path().join("d.toml")).unwrap();
    let engine = Arc::new(Engine::new(config, None).unwrap());
    let svc = TracehoundService::new(Arc::clone(&engine));
    let (bad, good) = (intercept(&svc, 1).await, intercept(&svc, 2).await);
    let vault = engine.erasure().vault().unwrap();
    let id = vault
        .key_for(&tracehound_vault::KeyMeta {
            signature: bad.clone(),
            ..Default::default()
        })
        .unwrap();
    let key_file = vault_dir.join(format!("{id}.key"));
    std::fs::remove_file(&key_file).unwrap();
    std::fs::create_dir(&key_file).unwrap();

    let mut ids = Vec::new();
    for (sig, complete) in [(&bad, false), (&good, true)] {
        let reply = svc
            .erase(Request::new(pb::EraseRequest {
                target: Some(pb::erase_request::Target::Signature(sig.clone())),
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.errors.is_empty(), complete, "{reply:?}");
        assert_eq!(reply.keys_destroyed, 0, "{reply:?}");
        let index = reply.audit_indexes[0] as usize;
        let id = engine
            .quarantine
            .with_store(|q| q.audit().get(index).map(|r| r.id.to_owned()))
            .unwrap();
        ids.push(id);
    }
    assert!(
        ids[0].starts_with(super::run::INCOMPLETE_ID_PREFIX),
        "{ids:?}"
    );
    assert!(
        ids[1].starts_with(tracehound_core::quarantine::ERASURE_ID_PREFIX),
        "{ids:?}"
    );
    // The key that could not be shredded stays findable: a retry can destroy it.
    assert_eq!(vault.find_signature(&bad), Some(id));
    std::fs::remove_dir(&key_file).unwrap();
    std::fs::write(&key_file, b"stand-in").unwrap();
    let retry = svc
        .erase(Request::new(pb::EraseRequest {
            target: Some(pb::erase_request::Target::Signature(bad.clone())),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(retry.errors.is_empty(), "{retry:?}");
    assert_eq!(retry.keys_destroyed, 1);
    assert!(!key_file.exists());
}

/// Orphan keys (no cold object) are destroyed; the key of a stored object stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_keys_are_collected_and_live_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[quarantine]\nmax_count = 1\n[cold.local]\npath = \"{}\"\n[erasure]\nvault_dir = \"{}\"\n",
        dir.path().join("cold").display(),
        dir.path().join("vault").display()
    );
    let config = DaemonConfig::parse(&toml, &dir.path().join("d.toml")).unwrap();
    let engine = Arc::new(Engine::new(config, None).unwrap());
    let svc = TracehoundService::new(Arc::clone(&engine));
    let evicted = intercept(&svc, 1).await;
    intercept(&svc, 2).await;
    let cold = engine.cold().unwrap();
    let wait = std::time::Duration::from_secs(30);
    assert!(cold.wait_queued(wait).await);
    assert!(cold.store().contains(&evicted).await.unwrap());
    let vault = engine.erasure().vault().unwrap();
    let orphan = "injection:".to_owned() + &"ab".repeat(32);
    vault
        .key_for(&tracehound_vault::KeyMeta {
            signature: orphan.clone(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(vault.stats().keys, 2);
    let n = engine
        .erasure()
        .collect_orphan_keys(cold, wait)
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert!(vault.find_signature(&orphan).is_none());
    assert!(vault.find_signature(&evicted).is_some());
    assert!(cold.store().get(&evicted).await.is_ok(), "still readable");
}

/// Re-inserts the erased payload from another source while the erasure runs (called
/// from the erasure's notification step).
struct Reinsert(Arc<Engine>);

impl super::ErasureParticipant for Reinsert {
    fn name(&self) -> &str {
        "re-insert"
    }
    fn purge_matching(&self, _: Option<&str>, source: Option<&str>) -> usize {
        if source.is_some() {
            use tracehound_core::types::{Scent, Severity, ThreatCategory};
            let scent = Scent::new("late-scent", "192.0.2.99", 5.0, serde_json::json!({"n": 1}))
                .with_threat(ThreatCategory::Injection, Severity::High);
            self.0.agent().intercept(&scent);
        }
        0
    }
}

/// Evidence re-inserted during an erasure is new evidence: it stays in the quarantine,
/// its new links survive the erasure's `forget`, and its tombstone is lifted when the
/// erasure finishes (so it can still reach cold storage).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_insertion_during_an_erasure_is_kept_as_new_evidence() {
    let engine = Arc::new(Engine::new(DaemonConfig::default(), None).unwrap());
    let svc = TracehoundService::new(Arc::clone(&engine));
    let sig = intercept(&svc, 1).await;
    engine
        .erasure()
        .register(Arc::new(Reinsert(Arc::clone(&engine))));
    let reply = svc
        .erase(Request::new(pb::EraseRequest {
            target: Some(pb::erase_request::Target::Source(SOURCE.into())),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.signatures, std::slice::from_ref(&sig));
    assert_eq!(reply.quarantine_removed, 1);
    let index = engine.erasure().index();
    assert!(engine.quarantine.with_store(|q| q.get(&sig).is_some()));
    assert_eq!(index.signature_of_scent("late-scent"), Some(sig.clone()));
    assert_eq!(
        index.signatures_of_source("192.0.2.99"),
        std::slice::from_ref(&sig)
    );
    assert!(index.signatures_of_source(SOURCE).is_empty());
    assert!(index.signature_of_scent("scent-1").is_none());
    assert!(!index.is_tombstoned(&sig));
}
