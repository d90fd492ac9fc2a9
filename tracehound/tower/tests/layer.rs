//! The layer in front of a real axum server over loopback, driven by a real HTTP client.

mod common;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::*;
use http::Request;
use serde_json::json;
use tracehound_core::hash::signature;
use tracehound_core::types::{Severity, ThreatCategory};
use tracehound_tower::{LayerConfig, TracehoundLayer};

#[tokio::test]
async fn clean_requests_reach_the_handler_with_the_body_intact() {
    let layer = TracehoundLayer::new(agent(1000), trusted_config());
    let server = serve(layer, true).await;
    let client = client();

    let r = send(
        &client,
        Request::get(server.url("/")).body(full("")).unwrap(),
    )
    .await;
    assert_eq!((r.status, &r.body[..]), (200, &b"hello"[..]));

    let small = pattern(100);
    let r = send(
        &client,
        Request::post(server.url("/echo"))
            .body(full(small.clone()))
            .unwrap(),
    )
    .await;
    assert_eq!((r.status, r.body.to_vec()), (200, small));

    // Ten times the inspection limit, in chunks.
    let large = pattern(10 * 1024 + 17);
    let chunks = large.chunks(700).map(Bytes::copy_from_slice).collect();
    let r = send(
        &client,
        Request::post(server.url("/echo"))
            .body(chunked(chunks))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.to_vec(), large);

    assert_eq!(server.hits(), 3);
    let stats = server.layer.stats();
    assert_eq!((stats.requests, stats.passed), (3, 3));
    assert_eq!(server.layer.agent().stats().clean_count, 3);
}

#[tokio::test]
async fn with_a_detector_the_prefix_is_inspected_and_the_whole_body_forwarded() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let layer = TracehoundLayer::new(agent(1000), trusted_config())
        .with_detector(Arc::new(TestDetector::Record(log.clone())));
    let server = serve(layer, true).await;
    let client = client();

    let large = pattern(300 * 1024 + 5);
    let chunks = large.chunks(1000).map(Bytes::copy_from_slice).collect();
    let r = send(
        &client,
        Request::post(server.url("/echo"))
            .body(chunked(chunks))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), large.len());
    assert!(r.body == large, "the body reached the handler altered");

    let small = pattern(10);
    let r = send(
        &client,
        Request::post(server.url("/echo"))
            .body(full(small.clone()))
            .unwrap(),
    )
    .await;
    assert_eq!(r.body.to_vec(), small);

    let r = send(
        &client,
        Request::get(server.url("/")).body(full("")).unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);

    // The detector saw the limit (1024 bytes) of the large body, all of the small one.
    assert_eq!(
        *log.lock().unwrap(),
        vec![(1024, true), (10, false), (0, false)]
    );
    assert_eq!(server.layer.stats().passed, 3);
}

#[tokio::test]
async fn a_waf_marked_request_from_a_trusted_peer_is_quarantined_with_inspectable_evidence() {
    let layer = TracehoundLayer::new(agent(1000), trusted_config());
    let server = serve(layer, true).await;
    let client = client();
    let req = || {
        Request::post(server.url("/echo?id=7"))
            .header("x-tracehound-threat", "injection; severity=high")
            .header("x-forwarded-for", "198.51.100.9")
            .header("user-agent", "probe/1.0")
            .header("cookie", "not-in-evidence")
            .body(full("name=' OR 1=1 --"))
            .unwrap()
    };
    let r = send(&client, req()).await;
    assert_eq!(r.status, 403);
    assert_eq!(server.hits(), 0);

    // The evidence is the request as the layer documents it; its signature is computed
    // here independently.
    let expected = json!({
        "method": "POST", "path": "/echo", "query": "id=7",
        "headers": {"user-agent": "probe/1.0"},
        "body": "name=' OR 1=1 --",
    });
    let sig = signature(ThreatCategory::Injection, &expected).unwrap();
    let agent = server.layer.agent();
    let handle = agent
        .quarantine()
        .get(&sig)
        .expect("evidence held under its signature");
    assert_eq!(handle.severity(), Severity::High);
    let stored = agent
        .quarantine()
        .with_store(|s| s.with_bytes(&sig, |b| b.to_vec()))
        .unwrap();
    let stored: serde_json::Value = serde_json::from_slice(&stored).unwrap();
    assert_eq!(stored, expected);

    // The same request again is a duplicate: still refused.
    let r = send(&client, req()).await;
    assert_eq!(r.status, 403);
    let stats = server.layer.stats();
    assert_eq!(
        (stats.quarantined, stats.duplicates, stats.waf_flagged),
        (1, 1, 2)
    );
    assert_eq!(stats.passed, 0);
    assert_eq!(agent.stats().quarantined_count, 1);
}

#[tokio::test]
async fn the_waf_header_from_an_untrusted_peer_is_ignored() {
    let config = LayerConfig {
        trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
        ..trusted_config()
    };
    let layer = TracehoundLayer::new(agent(1000), config);
    let server = serve(layer, true).await;
    let r = send(
        &client(),
        Request::post(server.url("/echo"))
            .header("x-tracehound-threat", "injection; severity=critical")
            .body(full("payload"))
            .unwrap(),
    )
    .await;
    assert_eq!((r.status, &r.body[..]), (200, &b"payload"[..]));
    let stats = server.layer.stats();
    assert_eq!(
        (stats.untrusted_waf_headers, stats.quarantined, stats.passed),
        (1, 0, 1)
    );
    assert_eq!(server.layer.agent().quarantine().stats().count, 0);
}

#[tokio::test]
async fn a_flood_from_one_source_gets_429_with_retry_after() {
    let layer = TracehoundLayer::new(agent(3), trusted_config());
    let server = serve(layer, true).await;
    let client = client();
    let from = |ip: &str| {
        Request::get(server.url("/"))
            .header("x-forwarded-for", ip)
            .body(full(""))
            .unwrap()
    };
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = send(&client, from("203.0.113.5")).await;
        if r.status == 429 {
            let secs: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
            // The default block lasts 300 s; the header rounds up to whole seconds.
            assert!((1..=300).contains(&secs), "retry-after {secs}");
        }
        statuses.push(r.status);
    }
    assert_eq!(statuses, vec![200, 200, 200, 429, 429, 429]);
    // Another client behind the same proxy is not affected.
    assert_eq!(send(&client, from("203.0.113.6")).await.status, 200);
    let stats = server.layer.stats();
    assert_eq!((stats.rate_limited, stats.passed), (3, 4));
    assert_eq!(server.hits(), 4);
}

#[tokio::test]
async fn hanging_failing_and_panicking_detectors_let_requests_pass() {
    for (detector, timeouts, errors, panics) in [
        (TestDetector::Hang, 2, 0, 0),
        (TestDetector::Fail, 0, 2, 0),
        (TestDetector::PanicInCall, 0, 2, 2),
        (TestDetector::PanicInFuture, 0, 2, 2),
    ] {
        let layer =
            TracehoundLayer::new(agent(1000), trusted_config()).with_detector(Arc::new(detector));
        let server = serve(layer, true).await;
        let client = client();
        let r = send(
            &client,
            Request::post(server.url("/echo"))
                .body(full("body"))
                .unwrap(),
        )
        .await;
        assert_eq!((r.status, &r.body[..]), (200, &b"body"[..]));
        let r = send(
            &client,
            Request::get(server.url("/")).body(full("")).unwrap(),
        )
        .await;
        assert_eq!(r.status, 200);
        let s = server.layer.stats();
        assert_eq!(
            (
                s.passed,
                s.detector_timeouts,
                s.detector_errors,
                s.detector_panics
            ),
            (2, timeouts, errors, panics)
        );
        assert_eq!(server.hits(), 2);
    }
}

#[tokio::test]
async fn a_detector_flagged_request_is_quarantined() {
    let layer = TracehoundLayer::new(agent(1000), trusted_config())
        .with_detector(Arc::new(TestDetector::Tautology));
    let server = serve(layer, true).await;
    let client = client();
    let r = send(
        &client,
        Request::get(server.url("/?q=%27%20OR%201=1"))
            .body(full(""))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = send(
        &client,
        Request::post(server.url("/echo"))
            .body(full("x=' OR 1=1"))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = send(
        &client,
        Request::post(server.url("/echo"))
            .body(full("x=1"))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    let s = server.layer.stats();
    assert_eq!((s.detector_flagged, s.quarantined, s.passed), (2, 2, 1));
    let q = server.layer.agent().quarantine().stats();
    assert_eq!(q.count, 2);
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn the_quarantine_status_is_configurable_and_oversized_evidence_gets_413() {
    let mut config = trusted_config();
    config.quarantine_status = http::StatusCode::from_u16(451).unwrap();
    let agent_config = tracehound_core::agent::AgentConfig {
        max_payload_size: 200,
        ..Default::default()
    };
    let agent = Arc::new(tracehound_core::agent::Agent::new(agent_config).unwrap());
    let server = serve(TracehoundLayer::new(agent, config), true).await;
    let client = client();
    let flagged = |body: Vec<u8>| {
        Request::post(server.url("/echo"))
            .header("x-tracehound-threat", "spam")
            .body(full(body))
            .unwrap()
    };
    assert_eq!(send(&client, flagged(pattern(20))).await.status, 451);
    assert_eq!(send(&client, flagged(pattern(500))).await.status, 413);
    let s = server.layer.stats();
    assert_eq!((s.quarantined, s.payload_too_large, s.passed), (1, 1, 0));
}

#[tokio::test]
async fn without_a_peer_address_requests_pass_counted() {
    let layer = TracehoundLayer::new(agent(1), trusted_config());
    let server = serve(layer, false).await;
    let client = client();
    for _ in 0..3 {
        let r = send(
            &client,
            Request::get(server.url("/"))
                .header("x-tracehound-threat", "injection")
                .body(full(""))
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 200);
    }
    let s = server.layer.stats();
    assert_eq!((s.missing_peer, s.fail_open_internal, s.passed), (3, 3, 3));
    assert_eq!(server.layer.agent().stats().total_intercepts, 0);
}

#[tokio::test]
async fn a_body_that_fails_while_the_prefix_is_read_is_forwarded_with_its_error() {
    use tokio::io::AsyncWriteExt;
    let layer = TracehoundLayer::new(agent(1000), trusted_config())
        .with_detector(Arc::new(TestDetector::Tautology));
    let mut server = serve(layer, true).await;
    // Promise 100 bytes, send 10, close the write side.
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"POST /observe HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    stream.shutdown().await.unwrap();
    let outcome = server.observed.recv().await.unwrap();
    assert!(
        outcome.is_err(),
        "the handler should see the body error, got {outcome:?}"
    );
    let s = server.layer.stats();
    assert_eq!(
        (s.body_read_errors, s.fail_open_internal, s.passed),
        (1, 1, 1)
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn an_unparsable_waf_header_from_a_trusted_peer_is_counted_and_the_request_passes() {
    let layer = TracehoundLayer::new(agent(1000), trusted_config());
    let server = serve(layer, true).await;
    let r = send(
        &client(),
        Request::get(server.url("/"))
            .header("x-tracehound-threat", "teapot; severity=high")
            .body(full(""))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    let s = server.layer.stats();
    assert_eq!((s.invalid_waf_headers, s.waf_flagged, s.passed), (1, 0, 1));
}
