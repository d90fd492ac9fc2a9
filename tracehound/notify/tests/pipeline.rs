//! The pipeline around the sinks: bounded queues against a receiver that hangs,
//! coalescing of a flood, and purging an erased subject's pending records.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{hanging, ok, receiver, threat, wait_for};
use tracehound_core::notify::{
    threat_detected_payload, EventType, NotificationEmitter, NotifyConfig,
};
use tracehound_core::types::{Severity, ThreatCategory};
use tracehound_notify::{
    CoalesceConfig, CoalesceKey, Notifier, NotifierConfig, SinkConfig, SinkKind,
};

fn config(window_ms: u64, sinks: Vec<SinkConfig>) -> NotifierConfig {
    NotifierConfig {
        coalesce: CoalesceConfig {
            window_ms,
            key: CoalesceKey::Source,
            ..CoalesceConfig::default()
        },
        sinks,
        poll_interval: Duration::from_millis(5),
        shutdown_grace: Duration::from_secs(5),
        ..NotifierConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_receiver_fills_a_bounded_queue_and_drops_are_counted() {
    let (addr, accepted) = hanging().await;
    let sinks = SinkKind::ALL
        .into_iter()
        .map(|k| {
            let path = if matches!(k, SinkKind::Webhook | SinkKind::OcsfHttp) {
                "/x"
            } else {
                ""
            };
            let mut s = SinkConfig::new(k.as_str(), k, format!("http://{addr}{path}"));
            s.queue_capacity = 4;
            s.batch_max = 1;
            s.timeout = Duration::from_secs(600);
            s
        })
        .collect();
    let emitter = NotificationEmitter::new(NotifyConfig::default());
    let n = Notifier::start(config(0, sinks), Some(&emitter)).expect("start");
    // The emitting side: every call returns at once whatever the sinks do.
    for i in 0..100u64 {
        emitter.emit(
            EventType::ThreatDetected,
            threat_detected_payload(
                &format!("s{i}"),
                ThreatCategory::Flood,
                Severity::Low,
                "10.9.9.9",
            ),
            1_700_000_000_000 + i,
        );
    }
    assert_eq!(emitter.stats().total_emitted, 100);
    // Once every queue is full the emitter sheds at the source; a dispatcher step in
    // the middle of the loop above may have started that early.
    wait_for("every record queued, in flight, dropped or shed", || {
        let st = n.stats();
        st.sinks
            .iter()
            .all(|s| s.queued + s.inflight + s.dropped + st.shed == 100 && s.inflight == 1)
    })
    .await;
    wait_for("a connection per sink", || *accepted.lock() >= 5).await;
    for s in n.stats().sinks {
        // The worker may take its batch before or after the queue first fills.
        assert!(
            (3..=4).contains(&s.queued),
            "{}: queue bounded: {s:?}",
            s.name
        );
        assert_eq!((s.sent, s.failed), (0, 0), "{}", s.name);
        let shed = n.stats().shed;
        assert_eq!(s.dropped + shed, 100 - s.queued - s.inflight, "{}", s.name);
    }
    assert_eq!(
        n.stats().input_dropped,
        n.stats().shed,
        "no full subscription queue"
    );
    // Shutdown is bounded by the grace period even though every request hangs (the
    // requests' timeout is far longer): returning at all is the check.
    tokio::task::block_in_place(|| n.shutdown());
}

/// Done-when 6's cost: once every sink that wants a type is full, the emitter sheds
/// events of that type without building them (the intercepting thread's whole cost is a
/// few counters), and counts them; a type a sink still has room for flows on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_sink_for_a_type_is_full_the_emitter_sheds_it_at_the_source() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tracehound_core::notify::EventBody;

    let (addr, _accepted) = hanging().await;
    let rx = receiver(ok()).await;
    let mut sinks: Vec<SinkConfig> = [SinkKind::Webhook, SinkKind::Datadog]
        .into_iter()
        .map(|k| {
            let mut s = SinkConfig::new(k.as_str(), k, format!("http://{addr}/x"));
            s.queue_capacity = 2;
            s.batch_max = 1;
            s.timeout = Duration::from_secs(600);
            s
        })
        .collect();
    // A healthy sink that wants evictions only.
    let mut evictions = SinkConfig::new("evictions", SinkKind::Webhook, rx.url("/hook"));
    evictions.events = vec![EventType::EvidenceEvicted];
    sinks.push(evictions);
    let emitter = NotificationEmitter::new(NotifyConfig::default());
    let n = Notifier::start(config(0, sinks), Some(&emitter)).expect("start");

    let built = AtomicUsize::new(0);
    let body = |i: u64| {
        let built = &built;
        move || {
            built.fetch_add(1, Ordering::Relaxed);
            EventBody::Json(threat_detected_payload(
                &format!("s{i}"),
                ThreatCategory::Flood,
                Severity::Low,
                "10.9.9.9",
            ))
        }
    };
    // Emit until a dispatcher step has seen both hanging sinks full and refused threats,
    // in the steady state: each hung worker holds one record, its queue the other two.
    // (Coalescing is off here: with it, a coalesced type is refused only after a whole
    // window full; `refusal.rs` tests that rule.)
    let mut i = 0u64;
    wait_for("threats shed at the source, both hung sinks full", || {
        i += 1;
        let shed = !emitter.emit_with(EventType::ThreatDetected, body(i), i);
        shed && n.stats().sinks[..2]
            .iter()
            .all(|s| (s.queued, s.inflight) == (2, 1))
    })
    .await;
    let before = built.load(Ordering::Relaxed);
    for k in 0..1000 {
        assert!(
            !emitter.emit_with(EventType::ThreatDetected, body(i + 1 + k), i),
            "shed until a hung sink frees room"
        );
    }
    assert_eq!(
        built.load(Ordering::Relaxed),
        before,
        "shed events are never built"
    );
    assert!(
        emitter.emit_with(EventType::EvidenceEvicted, body(0), i),
        "evictions still have a sink with room"
    );
    wait_for("the eviction delivered", || rx.received().len() == 1).await;
    wait_for("the shed events counted by the notifier", || {
        n.stats().shed >= 1001
    })
    .await;
    let st = n.stats();
    assert_eq!(st.shed, emitter.stats().shed);
    assert!(st.input_dropped >= st.shed);
    for s in &st.sinks[..2] {
        assert_eq!((s.queued, s.inflight), (2, 1), "{}: full and hung", s.name);
    }
    tokio::task::block_in_place(|| n.shutdown());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_identical_threats_in_one_window_become_one_record() {
    let rx = receiver(ok()).await;
    let emitter = NotificationEmitter::new(NotifyConfig {
        subscriber_capacity: 4096,
        ..NotifyConfig::default()
    });
    let webhook = SinkConfig::new("hook", SinkKind::Webhook, rx.url("/hook"));
    // A window far longer than the test: the record is closed by the shutdown flush.
    let n = Notifier::start(config(3_600_000, vec![webhook]), Some(&emitter)).expect("start");
    for i in 0..1000u64 {
        emitter.emit(
            EventType::ThreatDetected,
            threat_detected_payload(
                &format!("s{i}"),
                ThreatCategory::Injection,
                Severity::High,
                "203.0.113.5",
            ),
            1_700_000_000_000 + i,
        );
    }
    wait_for("all events collected", || {
        n.stats().coalesce.events_in == 1000
    })
    .await;
    let c = n.stats().coalesce;
    assert_eq!((c.merged, c.open, c.records_out), (999, 1, 0));
    assert!(
        rx.received().is_empty(),
        "nothing sent before the window closes"
    );
    tokio::task::block_in_place(|| n.shutdown());
    let got = rx.received();
    assert_eq!(got.len(), 1, "one record per key per window");
    let v = got[0].json();
    assert_eq!(v["type"], "threat.detected");
    assert_eq!(v["payload"]["count"], 1000);
    assert_eq!(v["payload"]["firstSeen"], 1_700_000_000_000u64);
    assert_eq!(v["payload"]["lastSeen"], 1_700_000_000_999u64);
    assert_eq!(v["payload"]["source"], "203.0.113.5");
    assert_eq!(v["id"], "evt-1");
    let c = n.stats().coalesce;
    assert_eq!((c.records_out, c.open), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_close_on_their_own() {
    let rx = receiver(ok()).await;
    let hook = SinkConfig::new("hook", SinkKind::Webhook, rx.url("/hook"));
    let n = Notifier::start(config(500, vec![hook]), None).expect("start");
    for i in 0..10 {
        n.submit(Arc::new(threat(i, "a")));
        n.submit(Arc::new(threat(100 + i, "b")));
    }
    wait_for("two records", || n.stats().sinks[0].sent == 2).await;
    let mut counts: Vec<u64> = rx
        .received()
        .iter()
        .map(|c| c.json()["payload"]["count"].as_u64().unwrap_or(0))
        .collect();
    counts.sort_unstable();
    assert_eq!(counts, vec![10, 10]);
    n.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_matching_removes_queued_records_of_a_subject() {
    let (addr, _) = hanging().await;
    let mk = |name: &str| {
        let mut s = SinkConfig::new(name, SinkKind::Elasticsearch, format!("http://{addr}"));
        s.batch_max = 1;
        s.timeout = Duration::from_secs(600);
        s
    };
    let n = Notifier::start(config(0, vec![mk("es1"), mk("es2")]), None).expect("start");
    for i in 0..10 {
        n.submit(Arc::new(threat(i, "erase-me")));
        n.submit(Arc::new(threat(100 + i, "keep-me")));
    }
    wait_for("queued", || {
        n.stats().sinks.iter().all(|s| s.queued + s.inflight == 20)
    })
    .await;
    let removed = n.purge_matching(None, Some("erase-me"));
    // Ten records of the subject in each of two sinks (queued or awaiting a retry).
    assert_eq!(removed, 20);
    for s in n.stats().sinks {
        // The receiver never answers: nothing left the pipeline, so exactly the ten
        // records of the other subject remain (queued or in flight).
        assert_eq!(s.purged, 10);
        assert_eq!(
            (s.queued + s.inflight, s.sent, s.failed),
            (10, 0, 0),
            "{s:?}"
        );
    }
    assert_eq!(n.purge_matching(None, Some("erase-me")), 0);
    assert_eq!(n.purge_matching(None, None), 0);

    // Open coalescing windows and not-yet-collected events are purged too.
    let m = Notifier::start(config(3_600_000, vec![mk("es3")]), None).expect("start");
    for i in 0..5 {
        m.submit(Arc::new(threat(i, "erase-me")));
    }
    m.submit(Arc::new(threat(9, "keep-me")));
    assert_eq!(
        m.purge_matching(None, Some("erase-me")),
        1,
        "one open record"
    );
    assert_eq!(m.stats().coalesce.open, 1);
    tokio::task::block_in_place(|| {
        n.shutdown();
        m.shutdown();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_scent_ids_removes_queued_and_coalesced_records_of_erased_scents() {
    let (addr, _) = hanging().await;
    let mk = |name: &str| {
        let mut s = SinkConfig::new(name, SinkKind::Elasticsearch, format!("http://{addr}"));
        s.batch_max = 1;
        s.timeout = Duration::from_secs(600);
        s
    };
    let n = Notifier::start(config(0, vec![mk("es1"), mk("es2")]), None).expect("start");
    for i in 0..10 {
        n.submit(Arc::new(threat(i, "same-source")));
    }
    wait_for("queued", || {
        n.stats().sinks.iter().all(|s| s.queued + s.inflight == 10)
    })
    .await;
    let erased = vec!["scent-0".to_owned(), "scent-7".to_owned()];
    // Two records in each of two sinks; scent-0 is the batch awaiting a retry.
    assert_eq!(n.purge_scent_ids(&erased), 4);
    for s in n.stats().sinks {
        assert_eq!(s.purged, 2, "{s:?}");
        assert_eq!(s.queued + s.inflight, 8, "{s:?}");
    }
    assert_eq!(n.purge_scent_ids(&erased), 0, "nothing left of them");
    assert_eq!(n.purge_scent_ids(&[]), 0);
    assert_eq!(n.purge_scent_ids(&["scent-404".to_owned()]), 0);

    // An open window whose record merged the scent after its first event is dropped
    // whole (the record keeps only the first scent id); another key stays open.
    let m = Notifier::start(config(3_600_000, vec![mk("es3")]), None).expect("start");
    for i in 0..5 {
        m.submit(Arc::new(threat(i, "flood")));
    }
    m.submit(Arc::new(threat(9, "other")));
    assert_eq!(m.purge_scent_ids(&["scent-3".to_owned()]), 1);
    let c = m.stats().coalesce;
    assert_eq!((c.events_in, c.open), (6, 1));
    assert_eq!(m.purge_scent_ids(&["scent-9".to_owned()]), 1);
    assert_eq!(m.stats().coalesce.open, 0);
    tokio::task::block_in_place(|| {
        n.shutdown();
        m.shutdown();
    });
}
