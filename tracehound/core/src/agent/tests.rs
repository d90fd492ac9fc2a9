use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use super::*;
use crate::notify::{NotificationEmitter, NotifyConfig};
use crate::state::{SecurityState, SecurityStateConfig};
use crate::types::{Severity, ThreatCategory, ThreatSignal};

fn scent(
    id: &str,
    source: &str,
    payload: Value,
    threat: Option<(ThreatCategory, Severity)>,
) -> Scent {
    Scent {
        id: id.into(),
        timestamp: 1.0,
        source: source.into(),
        payload,
        threat: threat.map(|(category, severity)| ThreatSignal { category, severity }),
        identity: None,
    }
}

fn agent(max_count: usize) -> Agent {
    let config = AgentConfig {
        max_payload_size: 1000,
        rate_limit: RateLimitConfig {
            window_ms: 1000,
            max_requests: 1_000_000,
            ..Default::default()
        },
        quarantine: QuarantineConfig {
            max_count,
            max_bytes: 1_000_000,
        },
    };
    Agent::new(config)
        .unwrap()
        .with_clock(Arc::new(ManualClock::new(1_700_000_000_000)))
}

#[test]
fn agent_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Agent>();
    check::<InterceptResult>();
}

#[test]
fn rejects_zero_payload_limit() {
    let cfg = AgentConfig {
        max_payload_size: 0,
        ..Default::default()
    };
    let e = Agent::new(cfg).unwrap_err();
    assert_eq!(e.code(), "CONFIG_AGENT_INVALID");
    assert_eq!(
        e.message(),
        "Invalid agent config: maxPayloadSize must be positive"
    );
}

#[test]
fn clean_payload_is_never_inspected() {
    let a = agent(10);
    // Far beyond the payload limit and nested beyond the canonical depth limit: still clean.
    let mut deep = json!("x".repeat(10_000));
    for _ in 0..(crate::canonical::MAX_DEPTH + 50) {
        deep = json!([deep]);
    }
    assert_eq!(a.intercept(&scent("c", "s", deep, None)).status(), "clean");
    assert_eq!(a.stats().clean_count, 1);
}

#[test]
fn too_deep_threat_is_an_evidence_error_with_scent_id() {
    let a = agent(10);
    let mut deep = json!(1);
    for _ in 0..(crate::canonical::MAX_DEPTH + 1) {
        deep = json!([deep]);
    }
    let r = a.intercept(&scent(
        "deep-1",
        "s",
        deep,
        Some((ThreatCategory::Injection, Severity::Low)),
    ));
    let InterceptResult::Error { error } = r else {
        panic!("{r:?}")
    };
    assert_eq!(error.code(), "EVIDENCE_CREATION_FAILED");
    assert_eq!(error.message(), "Maximum call stack size exceeded");
    assert_eq!(error.context(), Some(&json!({"scentId": "deep-1"})));
    assert_eq!(a.stats().error_count, 1);
}

struct Panicker;
impl InterceptObserver for Panicker {
    fn observe(&self, _: &InterceptEvent<'_>) {
        panic!("observer exploded");
    }
}

#[test]
fn a_panic_inside_becomes_an_error_result() {
    let a = agent(10).with_observer(Arc::new(Panicker));
    let r = a.intercept(&scent(
        "p1",
        "s",
        json!(1),
        Some((ThreatCategory::Spam, Severity::High)),
    ));
    let InterceptResult::Error { error } = r else {
        panic!("{r:?}")
    };
    assert_eq!(error.code(), "INTERCEPT_FAILED");
    assert_eq!(error.message(), "observer exploded");
    assert_eq!(error.context(), Some(&json!({"scentId": "p1"})));
    let s = a.stats();
    assert_eq!(
        (s.total_intercepts, s.error_count, s.panics_caught),
        (1, 1, 1)
    );
}

#[test]
fn many_threads_count_every_intercept() {
    let a = Arc::new(agent(100));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let a = Arc::clone(&a);
            std::thread::spawn(move || {
                for i in 0..500 {
                    let threat = (i % 10 == 0).then_some((ThreatCategory::Flood, Severity::Medium));
                    a.intercept(&scent(
                        "x",
                        &format!("src-{t}"),
                        json!({"t": t, "i": i}),
                        threat,
                    ));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = a.stats();
    assert_eq!(s.total_intercepts, 2000);
    assert_eq!(s.clean_count, 1800);
    assert_eq!(s.quarantined_count, 200);
    assert_eq!(a.quarantine().stats().count, 100);
}

#[test]
fn duplicates_are_ignored_without_touching_the_chain() {
    let a = agent(10);
    let t = Some((ThreatCategory::Injection, Severity::High));
    assert_eq!(
        a.intercept(&scent("1", "s", json!({"q": 1}), t)).status(),
        "quarantined"
    );
    let low = Some((ThreatCategory::Injection, Severity::Low));
    let r = a.intercept(&scent("2", "s", json!({"q": 1}), low));
    assert_eq!(r.status(), "ignored");
    assert_eq!(a.quarantine().with_audit(|c| c.len()), 0);
    assert_eq!(a.quarantine().stats().count, 1);
}

#[derive(Default)]
struct Counting(AtomicUsize, AtomicUsize);
impl InterceptObserver for Counting {
    fn observe(&self, ev: &InterceptEvent<'_>) {
        self.0.fetch_add(1, Ordering::Relaxed);
        self.1.fetch_add(ev.evicted.len(), Ordering::Relaxed);
    }
}

#[test]
fn observer_sees_every_intercept_and_eviction() {
    let obs = Arc::new(Counting::default());
    let a = agent(2).with_observer(obs.clone());
    for i in 0..5 {
        a.intercept(&scent(
            "t",
            "s",
            json!(i),
            Some((ThreatCategory::Malware, Severity::Low)),
        ));
    }
    a.intercept(&scent("c", "s", json!(0), None));
    assert_eq!(obs.0.load(Ordering::Relaxed), 6);
    assert_eq!(obs.1.load(Ordering::Relaxed), 3);
}

#[test]
fn runtime_hooks_feed_state_and_notifications() {
    let state = Arc::new(SecurityState::new(SecurityStateConfig::default()));
    let notes = Arc::new(NotificationEmitter::new(NotifyConfig::default()));
    let sub = notes
        .subscribe(&[crate::notify::EventType::ThreatDetected])
        .unwrap();
    let hooks = RuntimeHooks {
        state: Some(state.clone()),
        notifications: Some(notes.clone()),
        quarantine_max_bytes: 1_000_000,
        ..Default::default()
    };
    let a = agent(10).with_observer(Arc::new(hooks));
    a.intercept(&scent("c", "s", json!(0), None));
    a.intercept(&scent(
        "t",
        "s",
        json!(1),
        Some((ThreatCategory::Ddos, Severity::Critical)),
    ));
    let snap = state.snapshot(0);
    assert_eq!(snap.counters.clean, 1);
    assert_eq!(snap.counters.threats, 1);
    assert_eq!(snap.counters.evidence, 1);
    assert_eq!(snap.quarantine_count, 1);
    let ev = sub.try_recv().expect("threat.detected emitted");
    assert_eq!(ev.payload()["scentId"], "t");
    assert_eq!(ev.payload()["category"], "ddos");
    assert!(sub.try_recv().is_none());
}

/// Events are emitted as facts and rendered when read: every type must still render
/// v1's payload, keys in v1's order.
#[test]
fn lazily_rendered_events_have_v1_payloads() {
    let notes = Arc::new(NotificationEmitter::new(NotifyConfig::default()));
    let sub = notes.subscribe(&[]).unwrap();
    let hooks = RuntimeHooks {
        notifications: Some(notes.clone()),
        ..Default::default()
    };
    let a = agent(1).with_observer(Arc::new(hooks));
    let first = (ThreatCategory::Ddos, Severity::Low);
    let second = (ThreatCategory::Injection, Severity::High);
    let sig_of = |r: InterceptResult| match r {
        InterceptResult::Quarantined { handle } => handle.signature().to_owned(),
        other => panic!("not quarantined: {other:?}"),
    };
    let s1 = sig_of(a.intercept(&scent("t1", "10.0.0.1", json!(1), Some(first))));
    let s2 = sig_of(a.intercept(&scent("t2", "10.0.0.2", json!(2), Some(second))));
    let mut got = Vec::new();
    while let Some(e) = sub.try_recv() {
        got.push((
            e.event_type.as_str(),
            serde_json::to_string(e.payload()).unwrap(),
        ));
    }
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(
        got[0],
        (
            "threat.detected",
            r#"{"scentId":"t1","category":"ddos","severity":"low","source":"10.0.0.1"}"#.to_owned()
        )
    );
    assert_eq!(got[1].0, "evidence.quarantined");
    assert!(
        got[1]
            .1
            .starts_with(&format!(r#"{{"signature":"{s1}","size":"#)),
        "{got:?}"
    );
    assert!(got[1].1.ends_with(r#","severity":"low"}"#), "{got:?}");
    assert_eq!(got[2].0, "threat.detected");
    assert_eq!(got[3].0, "evidence.quarantined");
    assert!(
        got[3]
            .1
            .starts_with(&format!(r#"{{"signature":"{s2}","size":"#)),
        "{got:?}"
    );
    assert_eq!(
        got[4],
        (
            "evidence.evicted",
            format!(r#"{{"signature":"{s1}","severity":"low"}}"#)
        )
    );
}

#[test]
fn reconfigured_agent_shares_quarantine_and_counters() {
    let a = agent(10);
    a.intercept(&scent(
        "t1",
        "s",
        json!({"k": "first"}),
        Some((ThreatCategory::Spam, Severity::Low)),
    ));
    let strict = Arc::new(
        RateLimiter::new(RateLimitConfig {
            window_ms: 60_000,
            max_requests: 1,
            block_duration_ms: 0,
            ..Default::default()
        })
        .unwrap(),
    );
    let b = a.reconfigured(5, strict).unwrap();
    assert_eq!(b.max_payload_size(), 5);
    assert!(Arc::ptr_eq(a.quarantine(), b.quarantine()));
    // The new payload limit applies to the new agent only.
    let big = scent(
        "t2",
        "s",
        json!({"k": "a payload over five bytes"}),
        Some((ThreatCategory::Spam, Severity::Low)),
    );
    assert_eq!(b.intercept(&big).status(), "payload_too_large");
    // The new limiter (one request per window) applies too: "s" already used its one.
    assert_eq!(
        b.intercept(&scent("c", "s", json!(0), None)).status(),
        "rate_limited"
    );
    assert_eq!(a.intercept(&big).status(), "quarantined");
    // Counts from both agents land in the same counters.
    assert_eq!(a.stats(), b.stats());
    assert_eq!(b.stats().total_intercepts, 4);
    assert_eq!(b.stats().quarantined_count, 2);
    assert!(a.reconfigured(0, Arc::clone(a.rate_limiter())).is_err());
}
