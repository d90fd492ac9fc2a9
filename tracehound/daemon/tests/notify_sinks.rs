//! `[notify]` end to end: a WAF-marked intercept on a real daemon produces a webhook,
//! signed with v1's HMAC, at a loopback receiver; a flood is coalesced; `Stats` reports
//! the sink and coalescing counters.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::req;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::net::TcpListener;
use tracehound_core::webhook::verify_signature;
use tracehound_daemon::{Daemon, DaemonConfig};
use tracehound_rpc::pb;

/// `(signature header, body)` of every request the receiver got.
type Log = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

async fn receiver() -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let log: Log = Arc::default();
    let sink = Arc::clone(&log);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let sink = Arc::clone(&sink);
            tokio::spawn(async move {
                let svc = service_fn(move |r: hyper::Request<hyper::body::Incoming>| {
                    let sink = Arc::clone(&sink);
                    async move {
                        let path = r.uri().path().to_owned();
                        let sig = r
                            .headers()
                            .get("x-tracehound-signature")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        let body = r.into_body().collect().await.map(|c| c.to_bytes().to_vec());
                        sink.lock().push((path, sig, body.unwrap_or_default()));
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from_static(b"ok"),
                        )))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (format!("http://{addr}/hook"), log)
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waf_marked_intercept_produces_a_signed_webhook() {
    let (url, log) = receiver().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let secret_file = dir.path().join("hook.secret");
    std::fs::write(&secret_file, "webhook-secret\n").expect("write secret");
    let text = format!(
        r#"
[rate_limit]
max_requests = 100000
[notify]
poll_interval_ms = 5
[notify.coalesce]
window_ms = 2000
key = "source+category"
[[notify.sinks]]
name = "soc"
kind = "webhook"
url = "{url}"
secret_file = "{}"
events = ["threat.detected", "evidence.quarantined"]
retry_base_ms = 10
"#,
        secret_file.display()
    );
    let mut config = DaemonConfig::parse(&text, Path::new("notify.toml")).expect("config parses");
    config.listen.socket = Some(dir.path().join("run").join("d.sock"));
    config.reload.watch = false;
    let daemon = Daemon::start(config, None).await.expect("daemon starts");
    let mut client = tracehound_rpc::connect(&format!("unix:{}", daemon.socket_path().display()))
        .await
        .expect("connect");

    // One WAF-flagged request, then 49 more copies of it (duplicates) from the same source.
    let payload = r#"{"q":"' OR 1=1 --"}"#;
    let first = client
        .intercept(req(
            "198.51.100.20",
            payload,
            Some(("injection", "high")),
            1,
        ))
        .await
        .expect("intercept")
        .into_inner();
    assert_eq!(first.status(), pb::Status::Quarantined);
    for i in 2..=50 {
        client
            .intercept(req(
                "198.51.100.20",
                payload,
                Some(("injection", "high")),
                i,
            ))
            .await
            .expect("intercept");
    }

    // threat.detected (coalesced: 50) and evidence.quarantined (1).
    wait_for("two webhooks", || log.lock().len() >= 2).await;
    let got = log.lock().clone();
    assert_eq!(got.len(), 2, "one record per key per window");
    let mut types = Vec::new();
    for (path, sig, body) in &got {
        assert_eq!(path, "/hook");
        assert!(
            verify_signature(b"webhook-secret", body, sig),
            "HMAC verifies"
        );
        assert!(!verify_signature(b"webhook-secret\n", body, sig));
        let text = String::from_utf8_lossy(body);
        assert!(!text.contains("OR 1=1"), "no payload bytes: {text}");
        let v: Value = serde_json::from_slice(body).expect("json body");
        types.push(v["type"].as_str().unwrap_or("").to_owned());
        match v["type"].as_str() {
            Some("threat.detected") => {
                assert_eq!(v["payload"]["count"], 50);
                assert_eq!(v["payload"]["source"], "198.51.100.20");
                assert_eq!(v["payload"]["category"], "injection");
            }
            Some("evidence.quarantined") => {
                assert_eq!(v["payload"]["signature"], first.signature.as_str());
                assert_eq!(v["payload"]["severity"], "high");
                assert!(v["payload"].get("count").is_none());
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    types.sort();
    assert_eq!(types, ["evidence.quarantined", "threat.detected"]);

    let stats = client
        .stats(pb::StatsRequest::default())
        .await
        .expect("stats")
        .into_inner();
    assert_eq!(stats.notify_sinks.len(), 1);
    let s = &stats.notify_sinks[0];
    assert_eq!((s.name.as_str(), s.kind.as_str()), ("soc", "webhook"));
    assert_eq!((s.sent, s.dropped, s.failed, s.queued), (2, 0, 0, 0));
    let c = stats.notify_coalesce.expect("coalescing stats");
    assert_eq!((c.window_ms, c.key.as_str()), (2000, "source+category"));
    assert_eq!(
        (c.events_in, c.merged, c.records_out, c.open),
        (51, 49, 2, 0)
    );
    assert_eq!(stats.notifications_dropped, 0);
    daemon.shutdown().await;
}

#[tokio::test]
async fn notify_config_errors_name_the_field_and_hide_secrets() {
    let text = "[[notify.sinks]]\nkind = \"datadog\"\nurl = \"http://127.0.0.1:1\"\n";
    let err = DaemonConfig::parse(text, Path::new("n.toml")).expect_err("no API key");
    let msg = err.to_string();
    assert!(msg.starts_with("n.toml:1: field `notify.sinks`"), "{msg}");
    assert!(msg.contains("Datadog API key"), "{msg}");

    let text = "[[notify.sinks]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1\"\nsecret = \"hunter2\"\nbogus = 1\n";
    let msg = DaemonConfig::parse(text, Path::new("n.toml"))
        .expect_err("unknown key")
        .to_string();
    assert!(msg.contains("n.toml:5"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");

    let text = "[[notify.sinks]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1\"\nsecret = \"hunter2\"\n";
    let config = DaemonConfig::parse(text, Path::new("n.toml")).expect("parses");
    assert!(!format!("{config:?}").contains("hunter2"));
}
