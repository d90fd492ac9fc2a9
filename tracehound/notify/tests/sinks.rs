//! Every sink kind against a real loopback receiver: request shape, auth, the HEC ack
//! flow, retries, and payload bytes never leaving.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{ok, quarantined, receiver, threat, wait_for, Captured};
use serde_json::{json, Value};
use tracehound_core::notify::{EventType, NotificationEmitter, NotifyConfig};
use tracehound_core::webhook::verify_signature;
use tracehound_notify::{CoalesceConfig, Notifier, NotifierConfig, SinkConfig, SinkKind};
use zeroize::Zeroizing;

fn no_coalescing() -> CoalesceConfig {
    CoalesceConfig {
        window_ms: 0,
        ..CoalesceConfig::default()
    }
}

fn start(sinks: Vec<SinkConfig>) -> Notifier {
    Notifier::start(
        NotifierConfig {
            coalesce: no_coalescing(),
            sinks,
            poll_interval: Duration::from_millis(5),
            ..NotifierConfig::default()
        },
        None,
    )
    .expect("notifier starts")
}

fn sink(kind: SinkKind, url: String, secret: Option<&str>) -> SinkConfig {
    let mut s = SinkConfig::new(kind.as_str(), kind, url);
    s.secret = secret.map(|s| Zeroizing::new(s.to_owned()));
    s.retry_base = Duration::from_millis(10);
    s.retry_max = Duration::from_millis(40);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_is_v1_signed_and_carries_metadata_only() {
    let rx = receiver(ok()).await;
    let emitter = NotificationEmitter::new(NotifyConfig::default());
    let n = Notifier::start(
        NotifierConfig {
            coalesce: no_coalescing(),
            sinks: vec![sink(
                SinkKind::Webhook,
                rx.url("/hooks/th"),
                Some("hmac-key"),
            )],
            poll_interval: Duration::from_millis(5),
            ..NotifierConfig::default()
        },
        Some(&emitter),
    )
    .expect("start");
    // A payload that smuggles request content: it must not reach the receiver.
    emitter.emit(
        EventType::ThreatDetected,
        json!({"scentId": "s1", "category": "injection", "severity": "high",
               "source": "10.0.0.9", "payload": "' OR 1=1 --", "body": {"q": "x"}}),
        1_700_000_000_000,
    );
    wait_for("delivery", || n.stats().sinks[0].sent == 1).await;
    let got: Vec<Captured> = rx.received();
    assert_eq!(got.len(), 1);
    let c = &got[0];
    assert_eq!(c.method, "POST");
    assert_eq!(c.target, "/hooks/th");
    assert_eq!(c.header("content-type"), Some("application/json"));
    assert_eq!(c.header("user-agent"), Some("Tracehound/1.0"));
    let sig = c.header("x-tracehound-signature").unwrap_or_default();
    assert!(
        verify_signature(b"hmac-key", &c.body, sig),
        "bad signature {sig}"
    );
    assert!(!verify_signature(b"other-key", &c.body, sig));
    assert_eq!(
        c.text(),
        r#"{"type":"threat.detected","timestamp":1700000000000,"payload":{"scentId":"s1","category":"injection","severity":"high","source":"10.0.0.9"},"id":"evt-1"}"#
    );
    assert!(!c.text().contains("OR 1=1"));
    tokio::task::block_in_place(|| n.shutdown());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splunk_hec_sends_token_and_channel_and_polls_acks() {
    let rx = receiver(Arc::new(|all: &[Captured]| {
        let last = &all[all.len() - 1];
        if last.path() == "/services/collector/event" {
            let id = all.iter().filter(|c| c.path() == last.path()).count();
            return (
                200,
                format!(r#"{{"text":"Success","code":0,"ackId":{id}}}"#),
            );
        }
        // Ack polls: "not yet" on the first poll of each id, then acknowledged.
        let body = last.json();
        let id = body["acks"][0].as_u64().unwrap_or(0);
        let polls = all
            .iter()
            .filter(|c| c.path() == "/services/collector/ack" && c.json()["acks"][0] == json!(id))
            .count();
        (
            200,
            json!({"acks": {id.to_string(): polls >= 2}}).to_string(),
        )
    }))
    .await;
    let mut s = sink(SinkKind::SplunkHec, rx.url(""), Some("hec-token"));
    s.ack_poll = Duration::from_millis(20);
    s.index = Some("security".into());
    let n = start(vec![s]);
    for i in 0..3 {
        n.submit(Arc::new(threat(i, "10.0.0.1")));
    }
    wait_for("acks", || n.stats().sinks[0].acked == 3).await;
    let st = &n.stats().sinks[0];
    assert_eq!((st.sent, st.failed, st.dropped), (3, 0, 0));
    let events = rx.on_path("/services/collector/event");
    assert!(!events.is_empty());
    let channel = events[0]
        .header("x-splunk-request-channel")
        .unwrap_or_default()
        .to_owned();
    assert_eq!(channel.len(), 36, "a GUID channel");
    for e in &events {
        assert_eq!(e.method, "POST");
        assert_eq!(e.header("authorization"), Some("Splunk hec-token"));
        assert_eq!(e.header("x-splunk-request-channel"), Some(channel.as_str()));
        let docs: Vec<Value> = serde_json::Deserializer::from_slice(&e.body)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .expect("concatenated JSON");
        for d in docs {
            assert_eq!(d["index"], "security");
            assert_eq!(d["sourcetype"], "tracehound:event");
            assert_eq!(d["event"]["type"], "threat.detected");
            assert_eq!(d["event"]["source"], "10.0.0.1");
        }
    }
    let acks = rx.on_path("/services/collector/ack");
    assert!(acks.len() >= 2 * events.len(), "each ack polled until true");
    for a in &acks {
        assert_eq!(
            a.target,
            format!("/services/collector/ack?channel={channel}")
        );
        assert_eq!(a.header("authorization"), Some("Splunk hec-token"));
        assert_eq!(a.header("x-splunk-request-channel"), Some(channel.as_str()));
    }
    tokio::task::block_in_place(|| n.shutdown());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_bulk_is_ndjson_pairs_with_ecs_fields() {
    let rx = receiver(Arc::new(|_: &[Captured]| {
        (200, r#"{"took":1,"errors":false,"items":[]}"#.into())
    }))
    .await;
    let mut s = sink(SinkKind::Elasticsearch, rx.url("/es"), Some("es-key"));
    s.index = Some("th-alerts".into());
    let n = start(vec![s]);
    n.submit(Arc::new(threat(1, "192.0.2.7")));
    n.submit(Arc::new(quarantined(2, "injection:00ff")));
    wait_for("delivery", || n.stats().sinks[0].sent == 2).await;
    let mut docs = Vec::new();
    let mut ids = Vec::new();
    for c in rx.received() {
        assert_eq!(c.method, "POST");
        assert_eq!(c.target, "/es/_bulk");
        assert_eq!(c.header("content-type"), Some("application/x-ndjson"));
        assert_eq!(c.header("authorization"), Some("ApiKey es-key"));
        let text = c.text();
        assert!(text.ends_with('\n'));
        let lines: Vec<&str> = text.split_terminator('\n').collect();
        assert_eq!(lines.len() % 2, 0, "action/doc pairs");
        for pair in lines.chunks(2) {
            let action: Value = serde_json::from_str(pair[0]).expect("action json");
            assert_eq!(action["create"]["_index"], "th-alerts");
            let id = action["create"]["_id"].as_str().unwrap_or_default();
            assert_eq!(id.len(), 36, "a UUID _id: {action}");
            ids.push(id.to_owned());
            docs.push(serde_json::from_str::<Value>(pair[1]).expect("doc json"));
        }
    }
    assert_eq!(docs.len(), 2);
    ids.dedup();
    assert_eq!(ids.len(), 2, "one _id per record");
    let t = docs
        .iter()
        .find(|d| d["event"]["action"] == "threat.detected")
        .cloned()
        .unwrap_or_default();
    assert_eq!(t["@timestamp"], "2023-11-14T22:13:20.001Z");
    assert_eq!(t["event"]["kind"], "alert");
    assert_eq!(t["event"]["category"], json!(["intrusion_detection"]));
    assert_eq!(t["event"]["type"], json!(["info"]));
    assert_eq!(t["event"]["severity"], 4);
    assert_eq!(t["source"]["ip"], "192.0.2.7");
    assert_eq!(t["rule"]["name"], "injection");
    let q = docs
        .iter()
        .find(|d| d["event"]["action"] == "evidence.quarantined")
        .cloned()
        .unwrap_or_default();
    assert_eq!(q["event"]["type"], json!(["denied"]));
    assert_eq!(q["event"]["severity"], 5);
    assert_eq!(q["file"]["hash"]["sha256"], "00ff");
    assert_eq!(q["tracehound"]["signature"], "injection:00ff");
    tokio::task::block_in_place(|| n.shutdown());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datadog_logs_carry_the_api_key() {
    let rx = receiver(Arc::new(|_: &[Captured]| (202, "{}".into()))).await;
    let mut s = sink(SinkKind::Datadog, rx.url(""), Some("dd-key"));
    s.tags = Some("env:test".into());
    let n = start(vec![s]);
    n.submit(Arc::new(threat(1, "198.51.100.4")));
    wait_for("delivery", || n.stats().sinks[0].sent == 1).await;
    let got = rx.received();
    assert_eq!(got.len(), 1);
    let c = &got[0];
    assert_eq!(c.method, "POST");
    assert_eq!(c.target, "/api/v2/logs");
    assert_eq!(c.header("dd-api-key"), Some("dd-key"));
    assert_eq!(c.header("content-type"), Some("application/json"));
    let v = c.json();
    assert_eq!(v[0]["ddsource"], "tracehound");
    assert_eq!(v[0]["ddtags"], "env:test");
    assert_eq!(v[0]["status"], "error");
    assert_eq!(v[0]["network"]["client"]["ip"], "198.51.100.4");
    assert_eq!(v[0]["evt"]["name"], "threat.detected");
    tokio::task::block_in_place(|| n.shutdown());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsf_http_posts_detection_findings() {
    let rx = receiver(ok()).await;
    let mut s = sink(SinkKind::OcsfHttp, rx.url("/ocsf"), Some("bearer-1"));
    s.headers = vec![("X-Tenant".into(), "blue".into())];
    let n = start(vec![s]);
    n.submit(Arc::new(quarantined(1, "malware:abcd")));
    wait_for("delivery", || n.stats().sinks[0].sent == 1).await;
    let got = rx.received();
    let c = &got[0];
    assert_eq!((c.method.as_str(), c.target.as_str()), ("POST", "/ocsf"));
    assert_eq!(c.header("authorization"), Some("Bearer bearer-1"));
    assert_eq!(c.header("x-tenant"), Some("blue"));
    let f = c.json();
    assert_eq!(f["class_uid"], 2004);
    assert_eq!(f["category_uid"], 2);
    assert_eq!(f["activity_id"], 1);
    assert_eq!(f["type_uid"], 200401);
    assert_eq!(f["severity_id"], 5);
    assert_eq!(f["time"], 1_700_000_000_001u64);
    assert_eq!(f["finding_info"]["uid"], "malware:abcd");
    assert_eq!(f["finding_info"]["types"], json!(["malware"]));
    tokio::task::block_in_place(|| n.shutdown());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_with_backoff_then_succeeds() {
    let rx = receiver(Arc::new(|all: &[Captured]| {
        if all.len() <= 2 {
            (503, "busy".into())
        } else {
            (200, "{}".into())
        }
    }))
    .await;
    let n = start(vec![sink(SinkKind::Webhook, rx.url("/h"), None)]);
    n.submit(Arc::new(threat(1, "10.0.0.1")));
    wait_for("delivery", || n.stats().sinks[0].sent == 1).await;
    let st = &n.stats().sinks[0];
    assert_eq!((st.retried, st.failed, st.sent), (2, 0, 1));
    let got = rx.received();
    assert_eq!(got.len(), 3);
    assert!(
        got.windows(2).all(|w| w[0].body == w[1].body),
        "same request each time"
    );

    // A 4xx is not retried; attempts are capped.
    let rx = receiver(Arc::new(|_: &[Captured]| (400, "no".into()))).await;
    let n2 = start(vec![sink(SinkKind::Webhook, rx.url("/h"), None)]);
    n2.submit(Arc::new(threat(1, "10.0.0.1")));
    wait_for("give up", || n2.stats().sinks[0].failed == 1).await;
    assert_eq!(rx.received().len(), 1);
    assert_eq!(n2.stats().sinks[0].retried, 0);

    let rx = receiver(Arc::new(|_: &[Captured]| (500, "no".into()))).await;
    let mut s = sink(SinkKind::Webhook, rx.url("/h"), None);
    s.max_attempts = 3;
    let n3 = start(vec![s]);
    n3.submit(Arc::new(threat(1, "10.0.0.1")));
    wait_for("give up", || n3.stats().sinks[0].failed == 1).await;
    assert_eq!(rx.received().len(), 3);
    assert_eq!(n3.stats().sinks[0].retried, 2);
    for n in [n, n2, n3] {
        tokio::task::block_in_place(|| n.shutdown());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_reply_is_a_failed_attempt_not_a_delivery() {
    // A 2xx whose body exceeds the 256 KiB reply limit: the `errors` flag cannot be
    // read, so the batch must not count as delivered.
    let big = format!(r#"{{"errors":true,"pad":"{}"}}"#, "x".repeat(300 * 1024));
    let rx = receiver(Arc::new(move |_: &[Captured]| (200, big.clone()))).await;
    let mut s = sink(SinkKind::Elasticsearch, rx.url("/es"), Some("es-key"));
    s.max_attempts = 3;
    let n = start(vec![s]);
    n.submit(Arc::new(threat(1, "10.0.0.1")));
    wait_for("give up", || n.stats().sinks[0].failed == 1).await;
    let st = &n.stats().sinks[0];
    assert_eq!((st.sent, st.retried, st.failed), (0, 2, 1));
    assert_eq!(rx.received().len(), 3);

    // HEC with acks: a 2xx without an ackId proves nothing was indexed; retried.
    let rx = receiver(Arc::new(|_: &[Captured]| {
        (200, r#"{"text":"Success","code":0}"#.into())
    }))
    .await;
    let mut s = sink(SinkKind::SplunkHec, rx.url(""), Some("hec-token"));
    s.max_attempts = 2;
    let n2 = start(vec![s]);
    n2.submit(Arc::new(threat(2, "10.0.0.2")));
    wait_for("give up", || n2.stats().sinks[0].failed == 1).await;
    let st = &n2.stats().sinks[0];
    assert_eq!((st.sent, st.acked, st.retried, st.failed), (0, 0, 1, 1));
    assert_eq!(rx.on_path("/services/collector/event").len(), 2);
    for n in [n, n2] {
        tokio::task::block_in_place(|| n.shutdown());
    }
}

/// A `_bulk` receiver's item statuses for the last request: an `_id` already indexed
/// answers 409, the second distinct `_id` ever sent fails once with 429, others 201.
fn bulk_statuses(all: &[Captured]) -> Vec<u16> {
    let mut indexed = std::collections::HashSet::new();
    let mut order: Vec<String> = Vec::new();
    let mut last = Vec::new();
    for c in all {
        last.clear();
        for line in c.text().split_terminator('\n').step_by(2) {
            let v: Value = serde_json::from_str(line).unwrap_or_default();
            let id = v["create"]["_id"].as_str().unwrap_or_default().to_owned();
            if !order.contains(&id) {
                order.push(id.clone());
                if order.len() == 2 {
                    last.push(429);
                    continue;
                }
            }
            last.push(if indexed.insert(id) { 201 } else { 409 });
        }
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partly_failed_bulk_is_resent_whole_without_duplicates() {
    let rx = receiver(Arc::new(|all: &[Captured]| {
        let statuses = bulk_statuses(all);
        let errors = statuses.iter().any(|s| *s >= 300);
        let items: Vec<Value> = statuses
            .iter()
            .map(|s| json!({"create": {"status": s}}))
            .collect();
        (200, json!({"errors": errors, "items": items}).to_string())
    }))
    .await;
    let n = start(vec![sink(SinkKind::Elasticsearch, rx.url(""), None)]);
    n.submit(Arc::new(threat(1, "10.0.0.1")));
    n.submit(Arc::new(threat(2, "10.0.0.2")));
    wait_for("delivery", || n.stats().sinks[0].sent == 2).await;
    let st = &n.stats().sinks[0];
    assert_eq!((st.retried, st.failed), (1, 0));
    // Every `_id` was created exactly once across all attempts.
    let all = rx.received();
    let mut created = Vec::new();
    for i in 1..=all.len() {
        let statuses = bulk_statuses(&all[..i]);
        for (line, s) in all[i - 1]
            .text()
            .split_terminator('\n')
            .step_by(2)
            .zip(statuses)
        {
            let v: Value = serde_json::from_str(line).unwrap_or_default();
            if s == 201 {
                created.push(v["create"]["_id"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    created.sort();
    let before = created.len();
    created.dedup();
    assert_eq!((before, created.len()), (2, 2), "{created:?}");
    tokio::task::block_in_place(|| n.shutdown());
}
