//! Evacuation: evictions of a small quarantine reach the cold store through the
//! quarantine's eviction sink, explicit and policy evacuations are audited, a full queue
//! drops and counts, failed writes are retried then counted.

mod common;

use std::sync::Arc;

use tracehound_cold::{ColdStore, EvacuateError, EvacuationConfig, Evacuator};
use tracehound_core::agent::{Agent, InterceptResult};
use tracehound_core::evidence::EvidenceFactory;
use tracehound_core::quarantine::{Quarantine, QuarantineConfig};
use tracehound_core::rate_limit::{RateLimitConfig, RateLimiter};
use tracehound_core::types::{Scent, Severity, ThreatCategory};

use common::{evidence, start_moto};

fn quick_config(queue_capacity: usize) -> EvacuationConfig {
    EvacuationConfig {
        queue_capacity,
        initial_backoff_ms: 1,
        max_backoff_ms: 5,
        ..EvacuationConfig::default()
    }
}

fn scent(n: u64) -> Scent {
    let severity = [Severity::Low, Severity::Medium, Severity::High][(n % 3) as usize];
    Scent::new(
        format!("req-{n}"),
        format!("198.51.100.{}", n % 200),
        n as f64,
        serde_json::json!({"q": format!("' OR {n}=1 --"), "pad": "z".repeat(200 + n as usize)}),
    )
    .with_threat(ThreatCategory::Injection, severity)
}

/// Intercepts 20 threats through an agent whose quarantine holds 4: the 16 evicted come
/// back from `store` byte-identical to the evidence the agent built, and the counters
/// reconcile (observer saw 16, sink enqueued 16, 16 objects written, nothing dropped).
async fn evictions_reach(store: ColdStore) {
    let quarantine = Arc::new(Quarantine::new(QuarantineConfig {
        max_count: 4,
        max_bytes: usize::MAX,
    }));
    let evac = Evacuator::start(store, quick_config(64), &tokio::runtime::Handle::current());
    evac.install(&quarantine);
    let limiter = Arc::new(
        RateLimiter::new(RateLimitConfig {
            max_requests: 1000,
            ..RateLimitConfig::default()
        })
        .unwrap(),
    );
    let agent = Agent::from_parts(
        1 << 20,
        limiter,
        Arc::clone(&quarantine),
        EvidenceFactory::new(),
    )
    .unwrap()
    .with_observer(evac.handle());

    let mut signatures = Vec::new();
    for n in 0..20 {
        match agent.intercept(&scent(n)) {
            InterceptResult::Quarantined { handle } => {
                signatures.push(handle.signature().to_owned())
            }
            other => panic!("intercept {n}: {}", other.status()),
        }
    }
    evac.wait_idle().await;
    let stats = evac.stats();
    assert_eq!(quarantine.stats().count, 4);
    assert_eq!(
        (
            stats.evictions_observed,
            stats.from_evictions,
            stats.objects_written
        ),
        (16, 16, 16),
        "{stats:?}"
    );
    assert_eq!((stats.dropped(), stats.failures, stats.pending), (0, 0, 0));
    assert!(stats.bytes_written > 16 * 78);

    let factory = EvidenceFactory::new();
    let mut evicted = 0;
    for (n, sig) in signatures.iter().enumerate() {
        if quarantine.has(sig) {
            assert!(matches!(
                evac.retrieve(sig).await,
                Err(tracehound_cold::ColdError::NotFound { .. })
            ));
            continue;
        }
        evicted += 1;
        let s = scent(n as u64);
        let expected = factory
            .create_from(&s.payload, s.threat.unwrap(), s.timestamp, 1 << 20)
            .unwrap();
        let back = evac.retrieve(sig).await.unwrap();
        assert_eq!(
            back.payload,
            expected.bytes(),
            "evidence {n} byte-identical"
        );
    }
    assert_eq!(evicted, 16);
    assert_eq!(quarantine.with_audit(|c| c.verify()), Ok(()));
    assert_eq!(quarantine.with_audit(|c| c.len()), 16);
    let end = evac.shutdown().await;
    assert_eq!(end.objects_written, 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evictions_are_evacuated_to_the_local_store() {
    let dir = tempfile::tempdir().unwrap();
    evictions_reach(ColdStore::local(dir.path(), "tracehound/evidence").unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evictions_are_evacuated_to_s3() {
    let Some(moto) = start_moto() else { return };
    evictions_reach(moto.store("th-evacuate")).await;
}

/// The writer never runs until the test drives its runtime, so the queue fills
/// deterministically: capacity 2, five evictions → two queued, three dropped; after
/// shutdown the two are written and later evictions count as `dropped_closed`.
#[test]
fn a_full_queue_drops_and_counts_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = ColdStore::local(dir.path(), "p").unwrap();
    let evac = Evacuator::start(store.clone(), quick_config(2), rt.handle());
    let handle = evac.handle();
    let q = Quarantine::new(QuarantineConfig {
        max_count: 1,
        max_bytes: usize::MAX,
    });
    evac.install(&q);
    let evs: Vec<_> = (0..6).map(|n| evidence(n, Severity::High, 10)).collect();
    let sigs: Vec<String> = evs.iter().map(|e| e.signature().to_owned()).collect();
    for e in evs {
        q.insert(e, 0.0);
    }
    let s = evac.stats();
    assert_eq!((s.enqueued, s.dropped_full, s.pending), (2, 3, 2), "{s:?}");
    // An explicit evacuation with a full queue leaves the evidence where it is.
    assert_eq!(
        evac.evacuate(&q, &sigs[5], 1.0),
        Err(EvacuateError::QueueFull)
    );
    assert!(q.has(&sigs[5]));

    let end = rt.block_on(evac.shutdown());
    assert_eq!(
        (end.objects_written, end.failures, end.pending),
        (2, 0, 0),
        "{end:?}"
    );
    // The two queued were the first two evicted (the oldest captured).
    for sig in &sigs[..2] {
        assert!(rt.block_on(store.get(sig)).is_ok());
    }
    for sig in &sigs[2..5] {
        assert!(!rt.block_on(store.contains(sig)).unwrap());
    }
    // The sink is still installed: later evictions meet a closed queue, counted.
    q.insert(evidence(99, Severity::High, 10), 0.0);
    q.insert(evidence(100, Severity::High, 10), 0.0);
    let after = handle.stats();
    assert_eq!(
        (after.dropped_closed, after.dropped_full, after.pending),
        (2, 3, 0)
    );
    assert_eq!(q.stats().count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_and_policy_evacuations_are_audited_and_retrievable() {
    let dir = tempfile::tempdir().unwrap();
    let store = ColdStore::local(dir.path(), "tracehound/evidence").unwrap();
    let evac = Evacuator::start(store, quick_config(16), &tokio::runtime::Handle::current());
    let q = Quarantine::new(QuarantineConfig::default());
    let a = evidence(1, Severity::Critical, 100);
    let lows: Vec<_> = (2..5).map(|n| evidence(n, Severity::Low, 100)).collect();
    let (sig_a, bytes_a) = (a.signature().to_owned(), a.bytes().to_vec());
    let low_sigs: Vec<String> = lows.iter().map(|e| e.signature().to_owned()).collect();
    q.insert(a, 0.0);
    for e in lows {
        q.insert(e, 0.0);
    }

    let record = evac.evacuate(&q, &sig_a, 42.0).unwrap();
    assert_eq!(record.destination, evac.store().description());
    assert_eq!(record.signature, sig_a);
    assert!(!q.has(&sig_a));
    assert!(matches!(
        evac.evacuate(&q, &sig_a, 43.0),
        Err(EvacuateError::NotHeld { .. })
    ));

    let sweep = evac.evacuate_where(&q, 44.0, |h| h.severity() == Severity::Low);
    assert_eq!((sweep.evacuated.len(), sweep.left_in_quarantine), (3, 0));
    assert_eq!(q.stats().count, 0);

    evac.wait_idle().await;
    let s = evac.stats();
    assert_eq!((s.explicit, s.objects_written, s.from_evictions), (4, 4, 0));
    assert_eq!(evac.retrieve(&sig_a).await.unwrap().payload, bytes_a);
    for sig in &low_sigs {
        assert!(evac.retrieve(sig).await.is_ok());
    }
    // Four evacuation records, chain intact.
    assert_eq!(q.with_audit(|c| c.len()), 4);
    assert_eq!(q.with_audit(|c| c.verify()), Ok(()));
    let s = evac.shutdown().await;
    assert_eq!(s.objects_written, 4);
}

/// A file where the category directory should be makes every write fail: with three
/// attempts the object is retried twice then counted as a failure; with many attempts,
/// removing the obstacle mid-way lets a retry succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_writes_are_retried_with_backoff_then_counted() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("p").join("injection");
    std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
    std::fs::write(&blocker, b"in the way").unwrap();
    let store = ColdStore::local(dir.path(), "p").unwrap();

    let config = EvacuationConfig {
        max_attempts: 3,
        ..quick_config(8)
    };
    let evac = Evacuator::start(store.clone(), config, &tokio::runtime::Handle::current());
    let q = Quarantine::new(QuarantineConfig::default());
    let e = evidence(1, Severity::High, 10);
    let sig = e.signature().to_owned();
    q.insert(e, 0.0);
    evac.evacuate(&q, &sig, 1.0).unwrap();
    evac.wait_idle().await;
    let s = evac.shutdown().await;
    assert_eq!(
        (s.retries, s.failures, s.objects_written),
        (2, 1, 0),
        "{s:?}"
    );

    let config = EvacuationConfig {
        max_attempts: 10_000,
        ..quick_config(8)
    };
    let evac = Evacuator::start(store.clone(), config, &tokio::runtime::Handle::current());
    let e = evidence(2, Severity::High, 10);
    let sig = e.signature().to_owned();
    q.insert(e, 0.0);
    evac.evacuate(&q, &sig, 2.0).unwrap();
    while evac.stats().retries == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    std::fs::remove_file(&blocker).unwrap();
    evac.wait_idle().await;
    let s = evac.stats();
    assert!(s.retries >= 1);
    assert_eq!((s.failures, s.objects_written), (0, 1), "{s:?}");
    assert!(store.get(&sig).await.is_ok());
}
