//! Detection through the proxy: the trusted WAF header, rate limiting, and a detector
//! endpoint that flags, hangs or answers garbage. Real servers over loopback.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{proxy, send, DetectorEndpoint, DetectorMode, Upstream};
use http::{Method, StatusCode, Version};
use tracehound_core::types::Severity;

const WAF: &str = "x-tracehound-threat";

#[tokio::test]
async fn waf_header_from_a_trusted_peer_is_quarantined_with_inspectable_evidence() {
    let upstream = Upstream::start().await;
    let proxy = proxy(&upstream, |c| {
        c.layer.trusted_proxies = vec!["127.0.0.0/8".parse().expect("cidr")];
    })
    .await;
    for (version, body) in [
        (Version::HTTP_11, &b"user=admin' OR 1=1 --"[..]),
        (Version::HTTP_2, &b"user=root' OR 2=2 --"[..]),
    ] {
        let (status, _, _) = send(
            proxy.local_addr(),
            version,
            Method::POST,
            "/login",
            &[(WAF, "injection; severity=high")],
            Bytes::from_static(body),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{version:?}");
    }
    assert!(
        upstream.seen().is_empty(),
        "a quarantined request reached the upstream"
    );

    let agent = proxy.agent();
    assert_eq!(agent.stats().quarantined_count, 2);
    let held = agent
        .quarantine()
        .with_store(|store| store.insertion_order());
    assert_eq!(held.len(), 2);
    for handle in &held {
        assert!(
            handle.signature().starts_with("injection:"),
            "{}",
            handle.signature()
        );
        assert_eq!(handle.severity(), Severity::High);
        assert!(handle.size() > 0);
        // The evidence can be looked up by its signature.
        assert!(agent.quarantine().get(handle.signature()).is_some());
    }
    assert_ne!(held[0].signature(), held[1].signature());
    proxy.shutdown().await;
}

#[tokio::test]
async fn the_same_header_from_an_untrusted_peer_is_ignored() {
    let upstream = Upstream::start().await;
    // Only 10.0.0.0/8 is trusted; the test client is 127.0.0.1.
    let proxy = proxy(&upstream, |c| {
        c.layer.trusted_proxies = vec!["10.0.0.0/8".parse().expect("cidr")];
    })
    .await;
    let (status, _, body) = send(
        proxy.local_addr(),
        Version::HTTP_11,
        Method::POST,
        "/login",
        &[(WAF, "injection; severity=high")],
        Bytes::from_static(b"user=admin' OR 1=1 --"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_ref(), b"user=admin' OR 1=1 --");
    assert_eq!(upstream.seen().len(), 1);
    assert_eq!(proxy.agent().stats().quarantined_count, 0);
    assert_eq!(proxy.agent().quarantine().stats().count, 0);
    assert_eq!(proxy.layer_stats().untrusted_waf_headers, 1);
    proxy.shutdown().await;
}

#[tokio::test]
async fn a_flood_from_one_source_gets_429_with_retry_after() {
    let upstream = Upstream::start().await;
    let proxy = proxy(&upstream, |c| {
        c.agent.rate_limit.max_requests = 5;
        c.agent.rate_limit.window_ms = 60_000;
        c.agent.rate_limit.block_duration_ms = 60_000;
    })
    .await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..8 {
        let (status, headers, _) = send(
            proxy.local_addr(),
            Version::HTTP_11,
            Method::GET,
            "/",
            &[],
            Bytes::new(),
        )
        .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            retry_after = headers.get("retry-after").cloned();
        }
        statuses.push(status.as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    let retry_after = retry_after.expect("Retry-After on 429");
    let seconds: u64 = retry_after
        .to_str()
        .expect("ascii")
        .parse()
        .expect("delay-seconds");
    assert!((1..=60).contains(&seconds), "Retry-After {seconds}");
    assert_eq!(upstream.seen().len(), 5);
    assert_eq!(proxy.agent().stats().rate_limited_count, 3);
    proxy.shutdown().await;
}

#[tokio::test]
async fn a_hanging_detector_lets_requests_pass_after_the_deadline() {
    let upstream = Upstream::start().await;
    let detector = DetectorEndpoint::start(DetectorMode::Hang).await;
    let proxy = proxy(&upstream, |c| {
        c.detector_url = Some(detector.url.clone());
        c.layer.detector_timeout_ms = 100;
    })
    .await;
    for version in [Version::HTTP_11, Version::HTTP_2] {
        let (status, _, body) = send(
            proxy.local_addr(),
            version,
            Method::POST,
            "/",
            &[],
            Bytes::from_static(b"attack"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body.as_ref(), b"attack");
    }
    assert_eq!(upstream.seen().len(), 2);
    assert_eq!(detector.calls(), 2, "the detector was asked");
    let stats = proxy.layer_stats();
    assert_eq!(stats.detector_timeouts, 2, "{stats:?}");
    assert_eq!(stats.passed, 2);
    assert_eq!(proxy.agent().quarantine().stats().count, 0);
    proxy.shutdown().await;
}

#[tokio::test]
async fn a_detector_answering_garbage_or_gone_lets_requests_pass() {
    let upstream = Upstream::start().await;
    let garbage = DetectorEndpoint::start(DetectorMode::Garbage).await;
    let proxy_garbage = proxy(&upstream, |c| {
        c.detector_url = Some(garbage.url.clone());
        c.layer.detector_timeout_ms = 2_000;
    })
    .await;
    let gone = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let proxy_gone = proxy(&upstream, |c| {
        c.detector_url = Some(format!("http://{gone}/judge"));
        c.layer.detector_timeout_ms = 2_000;
    })
    .await;
    for running in [&proxy_garbage, &proxy_gone] {
        let (status, _, _) = send(
            running.local_addr(),
            Version::HTTP_11,
            Method::POST,
            "/",
            &[],
            Bytes::from_static(b"attack"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let stats = running.layer_stats();
        assert_eq!(stats.detector_errors, 1, "{stats:?}");
        assert_eq!(stats.passed, 1);
        let callout = running.detector_stats().expect("detector configured");
        assert_eq!((callout.calls(), callout.errors()), (1, 1));
    }
    assert_eq!(garbage.calls(), 1);
    assert_eq!(upstream.seen().len(), 2);
    proxy_garbage.shutdown().await;
    proxy_gone.shutdown().await;
}

#[tokio::test]
async fn a_detector_that_flags_gets_the_request_quarantined() {
    let upstream = Upstream::start().await;
    let detector = DetectorEndpoint::start(DetectorMode::FlagAttacks).await;
    let proxy = proxy(&upstream, |c| {
        c.detector_url = Some(detector.url.clone());
        // Generous: this test is about the verdict, not the deadline.
        c.layer.detector_timeout_ms = 5_000;
    })
    .await;
    let addr = proxy.local_addr();
    let (status, _, _) = send(
        addr,
        Version::HTTP_2,
        Method::POST,
        "/comment?id=3",
        &[
            ("authorization", "Bearer top-secret"),
            ("user-agent", "t/1"),
        ],
        Bytes::from_static(b"an attack payload"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let query = detector
        .last
        .lock()
        .expect("lock")
        .clone()
        .expect("query received");
    assert_eq!(query["method"], "POST");
    assert_eq!(query["uri"], "/comment?id=3");
    assert_eq!(query["client"], "127.0.0.1");
    assert_eq!(query["body_truncated"], false);
    assert!(
        !query.to_string().contains("top-secret"),
        "credentials sent to the detector"
    );

    let (status, _, _) = send(
        addr,
        Version::HTTP_11,
        Method::POST,
        "/comment?id=4",
        &[],
        Bytes::from_static(b"a kind remark"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    assert_eq!(detector.calls(), 2);
    assert_eq!(
        upstream.seen().len(),
        1,
        "only the clean request went upstream"
    );
    assert_eq!(upstream.seen()[0].body.as_ref(), b"a kind remark");
    let held = proxy
        .agent()
        .quarantine()
        .with_store(|s| s.insertion_order());
    assert_eq!(held.len(), 1);
    assert!(held[0].signature().starts_with("injection:"));
    assert_eq!(held[0].severity(), Severity::High);
    assert_eq!(proxy.layer_stats().detector_flagged, 1);
    let callout = proxy.detector_stats().expect("detector configured");
    assert_eq!((callout.calls(), callout.flagged()), (2, 1));
    // A stop is not held up by the idle detector connection.
    tokio::time::timeout(Duration::from_secs(20), proxy.shutdown())
        .await
        .expect("shutdown ends");
}
