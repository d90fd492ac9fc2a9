//! Every method of the contract against a real daemon over its Unix socket.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{req, start};
use tokio_stream::StreamExt;
use tracehound_daemon::{Daemon, DaemonConfig, DaemonError};
use tracehound_rpc::pb;

fn small_config() -> DaemonConfig {
    let mut c = DaemonConfig::default();
    c.limits.max_payload_size = 200;
    c.rate_limit.max_requests = 3;
    c.rate_limit.window_ms = 60_000;
    c
}

#[tokio::test]
async fn intercept_outcomes_stats_inspect_and_chain() {
    let d = start(small_config()).await;
    let mut client = tracehound_rpc::connect(&format!("unix:{}", d.socket().display()))
        .await
        .unwrap();

    let clean = client
        .intercept(req("a", "{\"x\":1}", None, 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((clean.status(), clean.sequence), (pb::Status::Clean, 1));

    let threat = client
        .intercept(req(
            "b",
            "{\"q\":\"' OR 1=1\"}",
            Some(("injection", "high")),
            2,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(threat.status(), pb::Status::Quarantined);
    assert!(threat.signature.starts_with("injection:"));
    assert_eq!(threat.signature, format!("injection:{}", threat.hash));
    assert_eq!(threat.severity, "high");
    assert_eq!(threat.captured_ms, 1_700_000_000_002.0);
    assert!(threat.size > 0);

    let dup = client
        .intercept(req(
            "c",
            "{\"q\":\"' OR 1=1\"}",
            Some(("injection", "high")),
            3,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (dup.status(), dup.signature.as_str()),
        (pb::Status::Ignored, threat.signature.as_str())
    );

    let big = format!("{{\"k\":\"{}\"}}", "x".repeat(300));
    let too_big = client
        .intercept(req("d", &big, Some(("spam", "low")), 4))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (too_big.status(), too_big.limit),
        (pb::Status::PayloadTooLarge, 200)
    );

    for (payload, threat) in [
        ("{nope", None),
        ("1", Some(("bogus", "high"))),
        ("1", Some(("spam", "HIGH"))),
    ] {
        let e = client
            .intercept(req("e", payload, threat, 5))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(e.status(), pb::Status::Error, "{payload} {threat:?}");
        assert_eq!(e.error_code, "SCENT_PAYLOAD_INVALID");
    }

    // Source "r": 3 allowed per window, the 4th is limited.
    for i in 0..3 {
        let r = client
            .intercept(req("r", "1", None, 10 + i))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status(), pb::Status::Clean);
    }
    let limited = client
        .intercept(req("r", "1", None, 13))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(limited.status(), pb::Status::RateLimited);
    assert!(limited.retry_after_ms > 0);

    let found = client
        .inspect(pb::InspectRequest {
            signature: threat.signature.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(found.found);
    assert_eq!(found.category, "injection");
    assert_eq!(found.severity, "high");
    assert_eq!(found.hash, threat.hash);
    assert_eq!(found.size, threat.size);
    assert_eq!(found.captured_ms, threat.captured_ms);
    assert!(!found.disposed);
    let missing = client
        .inspect(pb::InspectRequest {
            signature: "spam:00".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!missing.found);

    let s = client
        .stats(pb::StatsRequest { top: 0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.total_intercepts, 11);
    assert_eq!(s.clean, 4);
    assert_eq!(s.quarantined, 1);
    assert_eq!(s.ignored, 1);
    assert_eq!(s.payload_too_large, 1);
    assert_eq!(s.rate_limited, 1);
    assert_eq!(s.errors, 3);
    assert_eq!(s.config_generation, 1);
    assert_eq!(s.reload_failures, 0);
    let q = s.quarantine.unwrap();
    assert_eq!(
        (q.count, q.bytes, q.pressure.as_str()),
        (1, threat.size, "normal")
    );
    assert_eq!(q.count_by_severity.get("high"), Some(&1));
    assert_eq!(q.count_by_severity.get("low"), Some(&0));
    assert_eq!(q.max_count, 10_000);
    let top = s.top_sources.first().unwrap();
    assert_eq!((top.source.as_str(), top.intercepts), ("r", 4));
    assert!(top.blocked);
    assert_eq!(s.rate_limited_sources_blocked, 1);
    assert!(s.rate_limited_sources_active >= 5);
    assert_eq!(s.recent_threats.len(), 1);
    assert_eq!(s.recent_threats[0].signature, threat.signature);
    assert_eq!(s.recent_threats[0].category, "injection");
    let one = client
        .stats(pb::StatsRequest { top: 1 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one.top_sources.len(), 1);

    let chain = client
        .verify_chain(pb::VerifyChainRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(chain.ok);
    let audit = s.audit.unwrap();
    assert_eq!(
        (chain.length, chain.head_hash.as_str()),
        (audit.length, audit.head_hash.as_str())
    );
    assert_eq!(chain.head_hash.len(), 64);

    let snap = client
        .snapshot(pb::SnapshotRequest {})
        .await
        .unwrap()
        .into_inner();
    let json: serde_json::Value = serde_json::from_str(&snap.json).unwrap();
    assert_eq!(json["counters"]["clean"], 4);
    assert_eq!(json["counters"]["evidence"], 1);
    use sha2::Digest;
    assert_eq!(
        snap.sha256,
        hex::encode(sha2::Sha256::digest(snap.json.as_bytes()))
    );
    // Payload bytes never leave the daemon.
    assert!(!snap.json.contains("OR 1=1"));
    d.daemon.shutdown().await;
}

#[tokio::test]
async fn batch_stream_answers_in_order_with_sequences() {
    let d = start(DaemonConfig::default()).await;
    let mut client = tracehound_rpc::connect(d.socket().to_str().unwrap())
        .await
        .unwrap();
    let reqs: Vec<_> = (0..500u64)
        .map(|i| {
            let threat = i.is_multiple_of(50).then_some(("malware", "critical"));
            req(&format!("s{i}"), &format!("{{\"i\":{i}}}"), threat, i)
        })
        .collect();
    let mut replies = client
        .intercept_batch(tokio_stream::iter(reqs))
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    while let Some(r) = replies.next().await {
        seen.push(r.unwrap());
    }
    assert_eq!(seen.len(), 500);
    for (i, r) in seen.iter().enumerate() {
        assert_eq!(r.sequence, i as u64);
        let want = if i.is_multiple_of(50) {
            pb::Status::Quarantined
        } else {
            pb::Status::Clean
        };
        assert_eq!(r.status(), want, "reply {i}");
    }
    let s = client
        .stats(pb::StatsRequest { top: 3 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((s.total_intercepts, s.quarantined), (500, 10));
    assert_eq!(s.recent_threats.len(), 3);
    assert_eq!(
        s.quarantine.unwrap().count_by_severity.get("critical"),
        Some(&10)
    );
    d.daemon.shutdown().await;
}

#[tokio::test]
async fn socket_is_private_and_not_shared() {
    let d = start(DaemonConfig::default()).await;
    let sock = d.socket();
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(sock.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);

    let mut again = DaemonConfig::default();
    again.listen.socket = Some(sock.clone());
    match Daemon::start(again, None).await {
        Err(DaemonError::AlreadyRunning(p)) => assert_eq!(p, sock),
        other => panic!("expected AlreadyRunning, got {other:?}"),
    }
    d.daemon.shutdown().await;
    assert!(!sock.exists(), "socket removed on shutdown");
}

#[tokio::test]
async fn stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let mut c = DaemonConfig::default();
    c.listen.socket = Some(path.clone());
    let d = Daemon::start(c, None).await.unwrap();
    let mut client = tracehound_rpc::connect(path.to_str().unwrap())
        .await
        .unwrap();
    assert!(client.stats(pb::StatsRequest { top: 0 }).await.is_ok());
    d.shutdown().await;
}

#[tokio::test]
async fn tcp_only_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = DaemonConfig::default();
    c.listen.socket = Some(dir.path().join("d.sock"));
    c.listen.tcp = Some("127.0.0.1:0".parse().unwrap());
    let d = Daemon::start(c.clone(), None).await.unwrap();
    let addr = d.tcp_addr().unwrap();
    assert_ne!(addr.port(), 0);
    let mut client = tracehound_rpc::connect(&format!("http://{addr}"))
        .await
        .unwrap();
    let r = client
        .intercept(req("t", "1", None, 7))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.status(), r.sequence), (pb::Status::Clean, 7));
    d.shutdown().await;

    c.listen.tcp = Some("0.0.0.0:0".parse().unwrap());
    let err = Daemon::start(c, None).await.unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
}

#[tokio::test]
async fn connect_reports_a_missing_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let err = tracehound_rpc::connect(dir.path().join("none.sock").to_str().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, tracehound_rpc::RpcError::Connect { .. }),
        "{err}"
    );
}
