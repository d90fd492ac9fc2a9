//! Tests of the runtime modules around the agent: notification emitter, lane queue,
//! scheduler, watcher, fail-safe error window, security state, webhook retries.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::json;
use tracehound_core::fail_safe::{FailSafe, FailSafeConfig, PanicLevel};
use tracehound_core::lane_queue::{LaneConfig, LaneQueue, OverflowPolicy};
use tracehound_core::notify::{EventType, NotificationEmitter, NotifyConfig, NotifyError};
use tracehound_core::scheduler::{Scheduler, SchedulerConfig, TickOutcome};
use tracehound_core::state::{Health, LicenseStatus, SecurityState, SecurityStateConfig};
use tracehound_core::types::{Severity, ThreatCategory};
use tracehound_core::watcher::{AlertInput, AlertSeverity, Watcher, WatcherConfig};
use tracehound_core::webhook::{
    deliver, AttemptOutcome, RetryDecision, RetryPolicy, WebhookConfig, WebhookRequest,
    WebhookTransport,
};

fn small_emitter(capacity: usize) -> NotificationEmitter {
    NotificationEmitter::new(NotifyConfig {
        subscriber_capacity: capacity,
        max_subscribers: 4,
        max_webhooks: 2,
        webhook_outbox_capacity: capacity,
    })
}

#[test]
fn emit_never_blocks_and_counts_drops() {
    // A subscriber that never reads: 4 threads emit 10 000 events each into a queue of
    // 64. Every emit returns (the threads finish), 64 events are kept, the rest counted.
    let emitter = small_emitter(64);
    let stalled = emitter.subscribe(&[]).unwrap();
    let barrier = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let e = emitter.clone();
            let b = Arc::clone(&barrier);
            std::thread::spawn(move || {
                b.wait();
                for i in 0..10_000u64 {
                    e.emit(EventType::ThreatDetected, json!({"t": t, "i": i}), i);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = emitter.stats();
    assert_eq!(stats.total_emitted, 40_000);
    assert_eq!(stalled.pending(), 64);
    assert_eq!(stalled.dropped(), 40_000 - 64);
    assert_eq!(stats.dropped, 40_000 - 64);
    assert_eq!(stats.by_type[0], 40_000);
    // Draining frees room again; event ids are unique "evt-n".
    let drained = stalled.drain(usize::MAX);
    assert_eq!(drained.len(), 64);
    let mut ids: Vec<&str> = drained.iter().map(|e| e.id()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 64);
    emitter.emit(EventType::SystemPanic, json!({}), 1);
    assert_eq!(stalled.pending(), 1);
}

/// `emit_with` builds an event only for a taker: a refused type is shed (counted per
/// subscriber, never built), an unrefused one is queued, and nobody at all means nothing
/// is built while the emit is still counted.
#[test]
fn refused_types_are_shed_before_the_event_is_built() {
    use tracehound_core::notify::EventBody;
    let built = AtomicUsize::new(0);
    let body = || {
        built.fetch_add(1, Ordering::Relaxed);
        EventBody::Json(json!({"signature": "s"}))
    };
    let emitter = small_emitter(16);
    assert!(!emitter.emit_with(EventType::ThreatDetected, body, 1));
    assert_eq!(
        built.load(Ordering::Relaxed),
        0,
        "no subscriber: nothing built"
    );
    assert_eq!(emitter.stats().total_emitted, 1);

    let sub = emitter.subscribe(&[]).unwrap();
    let other = emitter.subscribe(&[EventType::EvidenceEvicted]).unwrap();
    sub.set_refused(&[EventType::ThreatDetected]);
    assert_eq!(sub.refused(), vec![EventType::ThreatDetected]);
    for _ in 0..5 {
        assert!(!emitter.emit_with(EventType::ThreatDetected, body, 2));
    }
    assert_eq!(built.load(Ordering::Relaxed), 0, "refused: nothing built");
    assert_eq!((sub.shed(), sub.dropped(), sub.pending()), (5, 5, 0));
    assert_eq!(
        (other.shed(), other.dropped()),
        (0, 0),
        "it never wanted them"
    );
    assert!(emitter.emit_with(EventType::EvidenceEvicted, body, 3));
    assert_eq!(
        built.load(Ordering::Relaxed),
        1,
        "one event for both takers"
    );
    assert_eq!((sub.pending(), other.pending()), (1, 1));

    sub.set_refused(&[]);
    assert!(emitter.emit_with(EventType::ThreatDetected, body, 4));
    assert_eq!(sub.pending(), 2);
    let stats = emitter.stats();
    assert_eq!((stats.total_emitted, stats.shed, stats.dropped), (8, 5, 5));
    assert_eq!(stats.by_type[0], 7);
    // Numbers are drawn by built events only: the two built ones are evt-1 and evt-2.
    let ids: Vec<String> = sub.drain(2).iter().map(|e| e.id().to_owned()).collect();
    assert_eq!(ids, ["evt-1", "evt-2"]);
    drop(sub);
    assert_eq!(
        emitter.stats().shed,
        5,
        "a dropped subscription's sheds still count"
    );
}

#[test]
fn subscriptions_filter_types_and_unsubscribe_on_drop() {
    let emitter = small_emitter(8);
    let threats = emitter.subscribe(&[EventType::ThreatDetected]).unwrap();
    {
        let _all = emitter.subscribe(&[]).unwrap();
        assert_eq!(emitter.stats().active_subscribers, 2);
    }
    assert_eq!(emitter.stats().active_subscribers, 1);
    emitter.emit(EventType::EvidenceEvicted, json!({"signature": "x"}), 5);
    emitter.emit(EventType::ThreatDetected, json!({"scentId": "s"}), 6);
    let got = threats.drain(10);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event_type, EventType::ThreatDetected);
    assert_eq!(got[0].id(), "evt-2");
    assert_eq!(got[0].timestamp, 6);
    let _a = emitter.subscribe(&[]).unwrap();
    let _b = emitter.subscribe(&[]).unwrap();
    let _c = emitter.subscribe(&[]).unwrap();
    assert_eq!(
        emitter.subscribe(&[]).unwrap_err(),
        NotifyError::TooManySubscribers(4)
    );
}

#[test]
fn webhook_outbox_is_bounded_and_filtered() {
    let emitter = small_emitter(3);
    let mut cfg = WebhookConfig::new("http://127.0.0.1:9/hook");
    cfg.events = vec![EventType::SystemPanic];
    let id = emitter.register_webhook(cfg).unwrap();
    for i in 0..5 {
        emitter.emit(EventType::SystemPanic, json!({"i": i}), i);
        emitter.emit(EventType::ThreatDetected, json!({"i": i}), i);
    }
    let stats = emitter.stats();
    assert_eq!(stats.pending_webhooks, 3);
    assert_eq!(stats.webhook_dropped, 2);
    let (hook, req) = emitter.next_webhook_request().unwrap();
    assert_eq!(hook, id);
    assert!(req
        .body
        .starts_with("{\"type\":\"system.panic\",\"timestamp\":0,"));
    assert_eq!(req.header("X-Tracehound-Signature"), None);
    assert!(emitter.unregister_webhook(id));
    assert!(
        emitter.next_webhook_request().is_none(),
        "deliveries of a removed webhook are skipped"
    );
}

struct Scripted {
    outcomes: Vec<AttemptOutcome>,
    calls: AtomicUsize,
}

impl WebhookTransport for Scripted {
    fn send(&self, _: &WebhookRequest) -> AttemptOutcome {
        let i = self.calls.fetch_add(1, Ordering::SeqCst);
        self.outcomes
            .get(i)
            .copied()
            .unwrap_or(AttemptOutcome::Status(200))
    }
}

#[test]
fn webhook_retries_are_linear_and_stop_on_4xx() {
    let policy = RetryPolicy::default();
    assert_eq!(
        policy.decide(1, AttemptOutcome::Status(503)),
        RetryDecision::RetryAfterMs(1000)
    );
    assert_eq!(
        policy.decide(2, AttemptOutcome::NetworkError),
        RetryDecision::RetryAfterMs(2000)
    );
    assert_eq!(
        policy.decide(3, AttemptOutcome::NetworkError),
        RetryDecision::GiveUp
    );
    assert_eq!(
        policy.decide(1, AttemptOutcome::Status(404)),
        RetryDecision::GiveUp
    );
    assert_eq!(
        policy.decide(1, AttemptOutcome::Status(204)),
        RetryDecision::Delivered
    );

    let req = WebhookConfig::new("http://x").build_request(&tracehound_core::notify::Event::new(
        EventType::SystemPanic,
        1,
        json!({}),
        "evt-1".into(),
    ));
    let t = Scripted {
        outcomes: vec![AttemptOutcome::NetworkError, AttemptOutcome::Status(500)],
        calls: AtomicUsize::new(0),
    };
    let mut slept = Vec::new();
    let report = deliver(&t, &req, policy, |ms| slept.push(ms));
    assert!(report.delivered);
    assert_eq!(report.attempts, 3);
    assert_eq!(slept, [1000, 2000]);
    let t = Scripted {
        outcomes: vec![AttemptOutcome::Status(400)],
        calls: AtomicUsize::new(0),
    };
    let report = deliver(&t, &req, policy, |_| panic!("no retry after 4xx"));
    assert!(!report.delivered);
    assert_eq!(report.attempts, 1);
}

fn arb_severity() -> impl Strategy<Value = Severity> {
    prop_oneof![
        Just(Severity::Low),
        Just(Severity::Medium),
        Just(Severity::High),
        Just(Severity::Critical)
    ]
}

fn arb_policy() -> impl Strategy<Value = OverflowPolicy> {
    prop_oneof![
        Just(OverflowPolicy::DropOldest),
        Just(OverflowPolicy::DropLowest),
        Just(OverflowPolicy::Reject)
    ]
}

proptest! {
    #[test]
    fn lane_queue_never_exceeds_bounds(
        bounds in proptest::array::uniform4(0usize..5),
        policy in arb_policy(),
        ops in proptest::collection::vec((arb_severity(), any::<bool>()), 0..200),
    ) {
        let cfg = LaneConfig { critical: bounds[0], high: bounds[1], medium: bounds[2], low: bounds[3], overflow: policy };
        let q: LaneQueue<u32> = LaneQueue::new(cfg);
        let (mut accepted, mut dequeued) = (0u64, 0u64);
        for (i, (sev, deq)) in ops.into_iter().enumerate() {
            if deq {
                if q.dequeue().is_some() { dequeued += 1; }
            } else if q.enqueue(sev, i as u32) {
                accepted += 1;
            }
            let s = q.stats();
            prop_assert!(s.counts.critical <= cfg.critical);
            prop_assert!(s.counts.high <= cfg.high);
            prop_assert!(s.counts.medium <= cfg.medium);
            prop_assert!(s.counts.low <= cfg.low);
            // Conservation: everything accepted is queued, dequeued or dropped (a
            // refused entry counts as dropped without having been accepted).
            let refused_or_evicted = s.dropped;
            prop_assert!(q.len() as u64 + dequeued <= accepted);
            prop_assert!(accepted - q.len() as u64 - dequeued <= refused_or_evicted);
            prop_assert_eq!(s.processed, dequeued);
        }
    }

    #[test]
    fn lane_queue_dequeues_by_priority_then_fifo(items in proptest::collection::vec(arb_severity(), 0..50)) {
        let q: LaneQueue<usize> = LaneQueue::new(LaneConfig { critical: 100, high: 100, medium: 100, low: 100, overflow: OverflowPolicy::Reject });
        for (i, s) in items.iter().enumerate() {
            prop_assert!(q.enqueue(*s, i));
        }
        let mut out = Vec::new();
        q.flush(|s, i| out.push((s, i)));
        let mut want: Vec<(Severity, usize)> = items.iter().copied().enumerate().map(|(i, s)| (s, i)).collect();
        want.sort_by_key(|(s, i)| (std::cmp::Reverse(*s), *i));
        prop_assert_eq!(out, want);
    }
}

#[test]
fn scheduler_runs_due_tasks_by_priority_with_injected_clock() {
    let s = Scheduler::new(SchedulerConfig {
        tick_interval_ms: 100,
        jitter_ms: 50,
        skip_if_busy: true,
        max_tasks: 3,
    });
    s.schedule("cleanup", 1000, None).unwrap();
    s.schedule("flush", 500, Some(10)).unwrap();
    s.schedule("report", 2000, Some(200)).unwrap();
    assert!(s.schedule("extra", 10, None).is_err());
    assert!(s.schedule("zero", 0, None).is_err());

    assert_eq!(
        s.tick(0, false),
        TickOutcome::Run(vec!["flush".into(), "cleanup".into(), "report".into()])
    );
    assert_eq!(s.tick(400, false), TickOutcome::Run(vec![]));
    assert_eq!(s.tick(500, false), TickOutcome::Run(vec!["flush".into()]));
    assert_eq!(s.tick(1000, true), TickOutcome::Skipped);
    assert_eq!(
        s.tick(1000, false),
        TickOutcome::Run(vec!["flush".into(), "cleanup".into()])
    );
    assert_eq!(s.next_due_ms(), Some(1500));
    assert!(s.unschedule("flush"));
    assert_eq!(s.next_due_ms(), Some(2000));
    let st = s.stats();
    assert_eq!(
        (
            st.total_ticks,
            st.skipped_ticks,
            st.total_tasks_executed,
            st.scheduled_tasks
        ),
        (5, 1, 6, 2)
    );

    let mut rng = StdRng::seed_from_u64(7);
    let delays: Vec<u64> = (0..1000).map(|_| s.next_delay_ms(&mut rng)).collect();
    assert!(delays.iter().all(|d| (100..=150).contains(d)));
    assert!(
        delays.iter().any(|d| *d != delays[0]),
        "jitter varies the delay"
    );
}

#[test]
fn watcher_counts_threats_limits_alerts_and_bounds_history() {
    let w = Watcher::new(
        WatcherConfig {
            max_alerts_per_window: 3,
            alert_window_ms: 1000,
            quarantine_high_watermark: 0.8,
            max_alert_history: 2,
        },
        10_000,
    );
    w.record_threat(ThreatCategory::Injection, Severity::High);
    w.record_threat(ThreatCategory::Ddos, Severity::Low);
    assert!(
        !w.update_quarantine(1, 50, 100, 10_001),
        "below the watermark"
    );
    assert!(w.update_quarantine(2, 85, 100, 10_002));
    let alert = |n: u64| {
        w.alert(
            AlertInput {
                alert_type: "custom".into(),
                severity: AlertSeverity::Info,
                message: format!("a{n}"),
                context: None,
            },
            n,
        )
    };
    assert!(alert(10_003));
    assert!(alert(10_004));
    assert!(!alert(10_005), "fourth alert in the window is rejected");
    assert!(alert(11_002), "a new window accepts again");
    w.set_overloaded(true, 11_003);
    w.set_overloaded(true, 11_004);
    let snap = w.snapshot(11_005);
    assert_eq!(snap.uptime_ms, 1005);
    assert_eq!(snap.threats.total, 2);
    assert_eq!(snap.threats.by_category[0], 1);
    assert_eq!(snap.threats.by_category[1], 1);
    assert_eq!(snap.threats.by_severity, [1, 0, 1, 0]);
    assert_eq!(snap.capacity_percent, 85.0);
    assert_eq!(snap.total_alerts, 5);
    assert_eq!(snap.rejected_alerts, 1);
    assert_eq!(snap.recent_alerts.len(), 2, "history is bounded");
    let last = snap.last_alert.unwrap();
    assert_eq!(last.id, "alert-5");
    assert_eq!(last.input.alert_type, "system_overload");
    assert!(snap.overloaded);
    let first = &w.snapshot(0).recent_alerts[0];
    assert_eq!(first.id, "alert-4");
}

#[test]
fn quarantine_high_alert_text_matches_v1() {
    let w = Watcher::new(WatcherConfig::default(), 0);
    assert!(w.update_quarantine(3, 905, 1000, 1));
    let a = w.snapshot(2).last_alert.unwrap();
    assert_eq!(a.input.message, "Quarantine at 90.5% capacity");
    assert_eq!(
        a.input.context,
        Some(json!({"count": 3, "bytes": 905, "maxBytes": 1000}))
    );
}

#[test]
fn fail_safe_error_window_counts_errors_per_minute() {
    let fs = FailSafe::new(FailSafeConfig::default());
    let mut events = Vec::new();
    for i in 0..60u64 {
        // One error per second for a minute.
        if let Some(e) = fs.record_error(i * 1000) {
            events.push(e);
        }
    }
    assert_eq!(fs.errors_per_minute(59_000), 60);
    assert_eq!(events.first().unwrap().context.current, Some(10.0));
    assert_eq!(events.first().unwrap().level, PanicLevel::Warning);
    assert_eq!(
        events
            .iter()
            .filter(|e| e.level == PanicLevel::Critical)
            .count(),
        11
    );
    // The window slides: a minute later only the most recent errors count.
    assert_eq!(fs.errors_per_minute(89_000), 30);
    assert_eq!(fs.errors_per_minute(200_000), 0);
    // History is bounded at 100.
    for i in 0..150 {
        fs.panic(PanicLevel::Warning, None, i);
    }
    assert_eq!(fs.history().len(), 100);
    // A panicking callback does not escape.
    fs.on_any(|_| panic!("bad callback"));
    let e = fs.panic(PanicLevel::Emergency, Some("x"), 1);
    assert_eq!(fs.last_panic(), Some(e));
}

#[test]
fn security_state_counts_bounds_history_and_reports_health() {
    let st = SecurityState::new(SecurityStateConfig {
        max_history: 3,
        quarantine_max_bytes: 1000,
    });
    st.record_clean();
    st.record_threat(ThreatCategory::Spam, Severity::Medium, 1);
    st.record_evidence("spam:ab", 120, Severity::Medium, 2);
    st.record_eviction("spam:ab", "capacity", 3);
    st.record_rate_limit("10.0.0.1", true, 4);
    st.record_rate_limit("10.0.0.2", false, 5);
    st.update_quarantine(1, 500);
    let s = st.snapshot(6);
    assert_eq!(s.counters.clean, 1);
    assert_eq!(s.counters.threats, 1);
    assert_eq!(s.counters.threats_by_severity, [0, 1, 0, 0]);
    assert_eq!(s.counters.evidence_bytes, 120);
    assert_eq!(s.counters.rate_limited, 2);
    assert_eq!(s.counters.blocked_sources, 1);
    assert_eq!(s.history_len, 3);
    assert_eq!(st.history(10).first().unwrap().timestamp, 3);
    assert_eq!(s.health, Health::Healthy);
    assert_eq!(s.license.tier, "starter");
    st.update_quarantine(1, 750);
    assert_eq!(st.snapshot(7).health, Health::Degraded);
    st.update_quarantine(1, 950);
    assert_eq!(st.snapshot(8).health, Health::Critical);
    st.update_quarantine(1, 10);
    st.update_license("pro", LicenseStatus::Expired, Some(0));
    assert_eq!(st.snapshot(9).health, Health::Critical);
}

#[test]
fn runtime_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<NotificationEmitter>();
    check::<LaneQueue<String>>();
    check::<Scheduler>();
    check::<Watcher>();
    check::<FailSafe>();
    check::<SecurityState>();
    check::<tracehound_core::codec::GzipCodec>();
    check::<tracehound_core::ipc::FrameParser>();
}

#[test]
fn webhook_body_is_json_stringify() {
    use tracehound_core::webhook::js_stringify;
    // ECMAScript number formatting and escaping, keys in insertion order (not sorted).
    let v: serde_json::Value =
        serde_json::from_str(r#"{"z":1e21,"a":0.1,"m":-0.0,"big":123456789012345678,"s":"\u0001\"\\/\u2028é","n":[null,true,1.5e-7]}"#)
            .unwrap();
    assert_eq!(
        js_stringify(&v),
        "{\"z\":1e+21,\"a\":0.1,\"m\":0,\"big\":123456789012345680,\"s\":\"\\u0001\\\"\\\\/\u{2028}é\",\"n\":[null,true,1.5e-7]}"
    );
}

#[test]
fn webhook_custom_headers_override_in_place() {
    let mut cfg = WebhookConfig::new("http://h");
    cfg.headers = vec![
        ("User-Agent".into(), "custom".into()),
        ("X-A".into(), "1".into()),
    ];
    cfg.secret = Some(zeroize::Zeroizing::new(b"k".to_vec()));
    let event = tracehound_core::notify::Event::new(
        EventType::EvidenceEvicted,
        5,
        json!({"b": 1, "a": 2}),
        "evt-9".into(),
    );
    let req = cfg.build_request(&event);
    let names: Vec<&str> = req.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "Content-Type",
            "User-Agent",
            "X-A",
            "X-Tracehound-Signature"
        ]
    );
    assert_eq!(req.header("User-Agent"), Some("custom"));
    assert_eq!(
        req.body,
        "{\"type\":\"evidence.evicted\",\"timestamp\":5,\"payload\":{\"b\":1,\"a\":2},\"id\":\"evt-9\"}"
    );
    assert!(tracehound_core::webhook::verify_signature(
        b"k",
        req.body.as_bytes(),
        req.header("X-Tracehound-Signature").unwrap()
    ));
    assert!(
        !format!("{cfg:?}").contains("[107]"),
        "secret bytes never printed"
    );
}
