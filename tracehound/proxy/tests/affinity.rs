//! Connection affinity and per-core workers: counted upstream connections over loopback.

mod common;

use bytes::Bytes;
use common::{alternating_version, client, proxy, send, Upstream, STUCK};
use http::{Method, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use tracehound_proxy::{Proxy, ProxyConfig, RunningProxy};

/// Sends `GET path` on `client` (which keeps its connection) and returns the status.
async fn get(
    client: &hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
    addr: std::net::SocketAddr,
    path: &str,
) -> StatusCode {
    let req = Request::builder()
        .method(Method::GET)
        .uri(format!("http://{addr}{path}"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let response = tokio::time::timeout(STUCK, client.request(req))
        .await
        .expect("proxy answered")
        .expect("request succeeded");
    let status = response.status();
    // Read the whole answer so the client can reuse its connection.
    let _ = response.into_body().collect().await.expect("answer body");
    status
}

/// A proxy in front of `upstream` with `workers` worker threads besides the test's own.
async fn with_workers(upstream: &Upstream, workers: usize) -> RunningProxy {
    let config = ProxyConfig::new("127.0.0.1:0".parse().expect("addr"), upstream.url());
    Proxy::bind_with_workers(config, workers)
        .await
        .expect("proxy starts")
}

#[tokio::test]
async fn one_client_connection_uses_one_upstream_connection() {
    let upstream = Upstream::start().await;
    let proxy = proxy(&upstream, |_| {}).await;
    let addr = proxy.local_addr();

    let first = client::<Full<Bytes>>(Version::HTTP_11);
    for i in 0..5 {
        assert_eq!(get(&first, addr, &format!("/a/{i}")).await, StatusCode::OK);
    }
    assert_eq!(
        upstream.accepted(),
        1,
        "five requests, one upstream connection"
    );

    let second = client::<Full<Bytes>>(Version::HTTP_11);
    for i in 0..3 {
        assert_eq!(get(&second, addr, &format!("/b/{i}")).await, StatusCode::OK);
    }
    assert_eq!(upstream.accepted(), 2, "a second client gets its own");
    assert_eq!(upstream.seen().len(), 8);
    assert_eq!(proxy.forward_stats().forwarded(), 8);
    proxy.shutdown().await;
}

#[tokio::test]
async fn an_upstream_connection_closed_by_the_upstream_is_reopened() {
    let upstream = Upstream::start().await;
    let proxy = proxy(&upstream, |_| {}).await;
    let addr = proxy.local_addr();

    let client = client::<Full<Bytes>>(Version::HTTP_11);
    // The upstream closes after each of these answers; the next request on the same
    // client connection must find a fresh upstream connection, not a 502.
    for _ in 0..3 {
        assert_eq!(get(&client, addr, "/close").await, StatusCode::OK);
    }
    assert_eq!(get(&client, addr, "/after").await, StatusCode::OK);
    assert_eq!(
        upstream.accepted(),
        4,
        "three closed, a fourth for the last request"
    );
    assert_eq!(proxy.forward_stats().bad_gateway(), 0);
    assert_eq!(upstream.seen().len(), 4);
    proxy.shutdown().await;
}

#[tokio::test]
async fn workers_share_the_serving_and_stop_on_shutdown() {
    let upstream = Upstream::start().await;
    let proxy = with_workers(&upstream, 2).await;
    let addr = proxy.local_addr();

    // Fresh connections each time, spread over the runtimes.
    for i in 0..12 {
        let version = alternating_version(i);
        let payload = Bytes::from(format!("request {i}"));
        let (status, _, body) = send(addr, version, Method::POST, "/w", &[], payload.clone()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, payload);
    }
    assert_eq!(upstream.seen().len(), 12);
    // Every agent decision lands in the one shared agent, whichever runtime served it.
    assert_eq!(proxy.forward_stats().forwarded(), 12);
    tokio::time::timeout(STUCK, proxy.shutdown())
        .await
        .expect("workers stop");
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert!(refused.is_err(), "no runtime accepts after shutdown");
}

#[tokio::test]
async fn a_burst_of_keep_alive_connections_is_spread_evenly_over_the_serving_threads() {
    let upstream = Upstream::start().await;
    let proxy = with_workers(&upstream, 1).await;
    let addr = proxy.local_addr();
    assert_eq!(proxy.open_connections(), vec![0, 0]);

    // Eight clients (half HTTP/1.1, half HTTP/2) connect at once and keep their one
    // connection each. With every thread keeping what it accepted, such a burst all went
    // to whichever thread was awake.
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let version = alternating_version(i);
            client::<Full<Bytes>>(version)
        })
        .collect();
    let burst: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(i, client)| {
            let client = client.clone();
            tokio::spawn(async move { get(&client, addr, &format!("/k/{i}")).await })
        })
        .collect();
    for answer in burst {
        assert_eq!(answer.await.expect("task"), StatusCode::OK);
    }
    assert_eq!(upstream.seen().len(), 8);
    assert_eq!(
        proxy.open_connections(),
        vec![4, 4],
        "four connections per thread"
    );

    // Closed connections are no longer counted.
    drop(clients);
    tokio::time::timeout(STUCK, async {
        while proxy.open_connections().iter().sum::<usize>() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("closed connections uncounted");
    proxy.shutdown().await;
}

#[tokio::test]
async fn requests_in_flight_on_every_serving_thread_finish_at_shutdown() {
    let upstream = Upstream::start().await;
    let proxy = with_workers(&upstream, 2).await;
    let addr = proxy.local_addr();

    // Six slow requests (answered 300 ms after they reach the upstream), one connection
    // each: two per serving thread.
    let pending: Vec<_> = (0..6)
        .map(|i| {
            tokio::spawn(async move {
                let body = Bytes::from(format!("late {i}"));
                let (status, _, echoed) = send(
                    addr,
                    Version::HTTP_11,
                    Method::POST,
                    "/slow",
                    &[],
                    body.clone(),
                )
                .await;
                (status, echoed == body)
            })
        })
        .collect();
    for _ in 0..6 {
        let started = tokio::time::timeout(STUCK, upstream.frames.lock().await.recv()).await;
        assert_eq!(started.expect("request reached the upstream"), Some(0));
    }
    assert_eq!(proxy.open_connections(), vec![2, 2, 2]);

    tokio::time::timeout(STUCK, proxy.shutdown())
        .await
        .expect("stops once the requests are answered");
    for request in pending {
        let (status, intact) = tokio::time::timeout(STUCK, request)
            .await
            .expect("answered")
            .expect("task");
        assert_eq!(status, StatusCode::OK);
        assert!(intact, "answer body intact");
    }
}
