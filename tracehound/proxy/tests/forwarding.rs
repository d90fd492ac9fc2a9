//! Forwarding over loopback: a real upstream, the real proxy, real HTTP/1.1 and HTTP/2
//! (prior knowledge) clients.

mod common;

use bytes::Bytes;
use common::{proxy, send, DetectorEndpoint, DetectorMode, Upstream, STUCK};
use http::{Method, StatusCode, Version};
use http_body_util::BodyExt;
use tracehound_proxy::{Proxy, ProxyConfig};

#[tokio::test]
async fn clean_get_and_post_reach_the_upstream_intact_over_h1_and_h2() {
    let upstream = Upstream::start().await;
    let proxy = proxy(&upstream, |_| {}).await;
    let addr = proxy.local_addr();

    for version in [Version::HTTP_11, Version::HTTP_2] {
        let (status, headers, body) = send(
            addr,
            version,
            Method::GET,
            "/items?id=7&q=a%20b",
            &[("x-custom", "kept"), ("user-agent", "proxy-test/1")],
            Bytes::new(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{version:?}");
        assert!(body.is_empty());
        assert_eq!(
            headers.get("x-upstream").map(|v| v.as_bytes()),
            Some(&b"echo"[..])
        );
        assert!(
            headers.get("x-hop").is_none(),
            "hop-by-hop answer header leaked"
        );

        let payload = Bytes::from_static(b"{\"name\": \"caf\xc3\xa9\", \"n\": 1}");
        let (status, _, body) = send(
            addr,
            version,
            Method::POST,
            "/submit",
            &[("content-type", "application/json")],
            payload.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, payload, "echoed body");
    }

    let seen = upstream.seen();
    assert_eq!(seen.len(), 4, "{seen:?}");
    for (i, request) in seen.iter().enumerate() {
        assert_eq!(
            request.version,
            Version::HTTP_11,
            "upstream leg is HTTP/1.1"
        );
        assert_eq!(
            request.headers.get("x-forwarded-for").map(|v| v.as_bytes()),
            Some(&b"127.0.0.1"[..]),
            "request {i}"
        );
        let forwarded = request
            .headers
            .get("forwarded")
            .map(|v| v.as_bytes().to_vec());
        let forwarded = String::from_utf8(forwarded.unwrap_or_default()).unwrap_or_default();
        assert!(
            forwarded.starts_with("for=127.0.0.1;proto=http"),
            "{forwarded}"
        );
        let host = format!("{addr}");
        assert_eq!(
            request.headers.get("host").map(|v| v.as_bytes()),
            Some(host.as_bytes()),
            "the client's host is kept"
        );
    }
    let (get, post) = (&seen[0], &seen[1]);
    assert_eq!(get.method, Method::GET);
    assert_eq!(get.uri, "/items?id=7&q=a%20b");
    assert_eq!(
        get.headers.get("x-custom").map(|v| v.as_bytes()),
        Some(&b"kept"[..])
    );
    assert_eq!(post.method, Method::POST);
    assert_eq!(post.uri, "/submit");
    assert_eq!(post.body.as_ref(), b"{\"name\": \"caf\xc3\xa9\", \"n\": 1}");
    assert_eq!(
        post.headers.get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );
    // The HTTP/2 requests got the same treatment.
    assert_eq!(seen[2].uri, "/items?id=7&q=a%20b");
    assert_eq!(seen[3].body, seen[1].body);

    assert_eq!(proxy.forward_stats().forwarded(), 4);
    assert_eq!(proxy.agent().stats().clean_count, 4);
    proxy.shutdown().await;
}

#[tokio::test]
async fn hop_by_hop_request_headers_are_stripped_and_forwarding_headers_appended() {
    let upstream = Upstream::start().await;
    let proxy = proxy(&upstream, |_| {}).await;
    let (status, _, _) = send(
        proxy.local_addr(),
        Version::HTTP_11,
        Method::GET,
        "/",
        &[
            ("connection", "keep-alive, x-drop-me"),
            ("x-drop-me", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic c2VjcmV0"),
            ("x-forwarded-for", "198.51.100.4"),
            ("x-end-to-end", "kept"),
        ],
        Bytes::new(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let seen = upstream.seen();
    let headers = &seen[0].headers;
    for gone in ["x-drop-me", "keep-alive", "proxy-authorization"] {
        assert!(headers.get(gone).is_none(), "{gone} was forwarded");
    }
    assert_eq!(
        headers.get("x-end-to-end").map(|v| v.as_bytes()),
        Some(&b"kept"[..])
    );
    assert_eq!(
        headers.get("x-forwarded-for").map(|v| v.as_bytes()),
        Some(&b"198.51.100.4, 127.0.0.1"[..])
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn a_body_larger_than_the_inspection_limit_arrives_intact() {
    let upstream = Upstream::start().await;
    // A detector makes the layer read the body prefix (without one, clean requests skip
    // the body altogether).
    let detector = DetectorEndpoint::start(DetectorMode::FlagAttacks).await;
    let proxy = proxy(&upstream, |c| {
        c.layer.max_body_bytes = 1024;
        c.layer.detector_timeout_ms = 5_000;
        c.detector_url = Some(detector.url.clone());
    })
    .await;
    // 1 MiB of a non-repeating pattern, so a reordered or dropped chunk shows.
    let body: Vec<u8> = (0u32..262_144).flat_map(|i| i.to_le_bytes()).collect();
    let body = Bytes::from(body);
    for version in [Version::HTTP_11, Version::HTTP_2] {
        let (status, _, echoed) = send(
            proxy.local_addr(),
            version,
            Method::PUT,
            "/upload",
            &[],
            body.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(echoed.len(), body.len());
        assert!(echoed == body, "echoed body differs ({version:?})");
    }
    let seen = upstream.seen();
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter().all(|s| s.body == body),
        "upstream saw a different body"
    );
    assert_eq!(detector.calls(), 2);
    let query = detector.last.lock().expect("lock").clone().expect("query");
    assert_eq!(query["body_truncated"], true);
    let prefix = query["body_base64"].as_str().map_or(0, str::len);
    assert!(
        prefix < 64 * 1024,
        "the detector got {prefix} base64 bytes, not a prefix"
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn a_body_beyond_the_limit_is_streamed_before_it_has_been_sent_whole() {
    let upstream = Upstream::start().await;
    let detector = DetectorEndpoint::start(DetectorMode::FlagAttacks).await;
    let proxy = proxy(&upstream, |c| {
        c.layer.max_body_bytes = 1024;
        c.layer.detector_timeout_ms = 5_000;
        c.detector_url = Some(detector.url.clone());
    })
    .await;
    let (tx, pending) = common::streaming_post(proxy.local_addr(), Version::HTTP_11);

    // The first 8 KiB (over the 1 KiB limit) must reach the upstream while the client
    // still holds the rest back: a proxy that buffered whole bodies would wait forever.
    tx.send(Bytes::from(vec![b'a'; 8192])).await.expect("send");
    let mut received = 0;
    {
        let mut frames = upstream.frames.lock().await;
        while received < 8192 {
            let frame = tokio::time::timeout(STUCK, frames.recv())
                .await
                .expect("upstream got the first part before the body ended");
            received += frame.expect("frame");
        }
    }
    tx.send(Bytes::from(vec![b'b'; 4096])).await.expect("send");
    drop(tx);
    let response = tokio::time::timeout(STUCK, pending)
        .await
        .expect("answer")
        .expect("task")
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let echoed = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(echoed.len(), 8192 + 4096);
    assert!(echoed[..8192].iter().all(|&b| b == b'a'));
    assert!(echoed[8192..].iter().all(|&b| b == b'b'));
    assert_eq!(detector.calls(), 1, "the prefix was inspected");
    proxy.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_upstream_is_answered_502_not_500() {
    // A port that was just free: nothing listens there.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let config = ProxyConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        format!("http://{closed}"),
    );
    let proxy = Proxy::bind(config).await.expect("proxy starts");
    for version in [Version::HTTP_11, Version::HTTP_2] {
        let (status, _, _) = send(
            proxy.local_addr(),
            version,
            Method::GET,
            "/",
            &[],
            Bytes::new(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
    }
    assert_eq!(proxy.forward_stats().bad_gateway(), 2);
    assert_eq!(proxy.agent().stats().error_count, 0);
    proxy.shutdown().await;
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    let upstream = Upstream::start().await;
    let proxy = proxy(&upstream, |_| {}).await;
    let addr = proxy.local_addr();
    let pending = tokio::spawn(async move {
        send(
            addr,
            Version::HTTP_11,
            Method::POST,
            "/slow",
            &[],
            Bytes::from_static(b"late"),
        )
        .await
    });
    let started = tokio::time::timeout(STUCK, upstream.frames.lock().await.recv()).await;
    assert_eq!(started.expect("request reached the upstream"), Some(0));
    proxy.shutdown().await;
    let (status, _, body) = tokio::time::timeout(STUCK, pending)
        .await
        .expect("answered")
        .expect("task");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_ref(), b"late");
}

#[tokio::test]
async fn shutdown_closes_what_outlives_the_grace_period() {
    // The proxy serves on this test's runtime, which goes on after `shutdown` returns: a
    // connection still open then must not be served on.
    for version in [Version::HTTP_11, Version::HTTP_2] {
        let upstream = Upstream::start().await;
        let proxy = proxy(&upstream, |c| {
            c.shutdown_grace = std::time::Duration::from_millis(100);
        })
        .await;
        // An upload that never ends: the request stays in flight however long the wait.
        let (tx, pending) = common::streaming_post(proxy.local_addr(), version);
        tx.send(Bytes::from_static(b"first part"))
            .await
            .expect("send");
        let frame = tokio::time::timeout(STUCK, upstream.frames.lock().await.recv()).await;
        assert!(
            frame.expect("the upload reached the upstream").is_some(),
            "{version:?}"
        );

        proxy.shutdown().await;
        let outcome = tokio::time::timeout(STUCK, pending)
            .await
            .expect("the request ended with the proxy, not left hanging")
            .expect("task");
        assert!(outcome.is_err(), "{version:?} answered: {outcome:?}");
        drop(tx);
    }
}

#[tokio::test]
async fn shutdown_stops_accepting() {
    let upstream = Upstream::start().await;
    let proxy = proxy(&upstream, |_| {}).await;
    let addr = proxy.local_addr();
    let (status, _, _) = send(addr, Version::HTTP_11, Method::GET, "/", &[], Bytes::new()).await;
    assert_eq!(status, StatusCode::OK);
    proxy.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting"
    );
}

#[test]
fn bad_settings_are_refused_before_binding() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for upstream in ["https://127.0.0.1:1", "127.0.0.1:1", "http://u:p@h:1"] {
        let config = ProxyConfig::new("127.0.0.1:0".parse().expect("addr"), upstream);
        let refused = runtime.block_on(Proxy::bind(config));
        assert!(refused.is_err(), "{upstream} accepted");
    }
    let mut config = ProxyConfig::new("127.0.0.1:0".parse().expect("addr"), "http://127.0.0.1:1");
    config.detector_url = Some("ftp://x/".to_owned());
    assert!(runtime.block_on(Proxy::bind(config)).is_err());
}
