//! Busy polling (`ProxyConfig::busy_poll`, `--busy-poll-us`): requests are forwarded as
//! without it, and once traffic stops the serving threads stop using CPU.
//!
//! In a test binary of its own: the idle check reads the whole process's CPU time (the
//! other tests here take a few milliseconds).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{alternating_version, send, Upstream};
use http::{Method, StatusCode, Version};
use tracehound_proxy::{Proxy, ProxyConfig};

/// This process's CPU time (user + system) in clock ticks, from `/proc/self/stat`.
fn process_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    // The command name (field 2) may hold spaces; the fields after it are plain.
    let after_name = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = |i: usize| fields[i].parse::<u64>().expect("tick count");
    ticks(11) + ticks(12)
}

#[tokio::test]
async fn a_busy_polling_proxy_forwards_and_goes_quiet_when_traffic_stops() {
    let upstream = Upstream::start().await;
    let mut config = ProxyConfig::new("127.0.0.1:0".parse().expect("addr"), upstream.url());
    config.busy_poll = Some(Duration::from_millis(5));
    // This test's runtime serves too: a current-thread one, as busy polling needs.
    let proxy = Proxy::bind_with_workers(config, 1)
        .await
        .expect("proxy starts");
    let addr = proxy.local_addr();

    for i in 0..40 {
        let version = alternating_version(i);
        let payload = Bytes::from(format!("request {i}"));
        let (status, _, body) =
            send(addr, version, Method::POST, "/echo", &[], payload.clone()).await;
        assert_eq!(status, StatusCode::OK, "request {i} ({version:?})");
        assert_eq!(body, payload, "request {i} echoed intact");
    }
    assert_eq!(upstream.seen().len(), 40);
    assert!(
        proxy.busy_poll_windows() > 0,
        "request events set the serving threads polling"
    );

    // Past the window both serving threads sleep: over a second of no traffic the process
    // gains at most a few ticks (a poller that never stopped would gain about 100 per
    // thread). CPU time, not wall time: a busy host slows this down but cannot fail it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = process_cpu_ticks();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let gained = process_cpu_ticks() - before;
    assert!(
        gained <= 10,
        "{gained} ticks of CPU in one idle second: the poller kept polling"
    );

    let (status, _, _) = send(addr, Version::HTTP_11, Method::GET, "/", &[], Bytes::new()).await;
    assert_eq!(status, StatusCode::OK, "serves again after going quiet");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_polling_is_refused_on_a_multi_thread_runtime() {
    let mut config = ProxyConfig::new("127.0.0.1:0".parse().expect("addr"), "http://127.0.0.1:9");
    config.busy_poll = Some(Duration::from_micros(100));
    let error = Proxy::bind(config).await.expect_err("refused");
    assert!(error.to_string().contains("current-thread"), "{error}");
}

#[tokio::test]
async fn a_window_beyond_the_cap_is_refused_and_zero_is_off() {
    let addr = "127.0.0.1:0".parse().expect("addr");
    let mut config = ProxyConfig::new(addr, "http://127.0.0.1:9");
    config.busy_poll = Some(tracehound_proxy::MAX_BUSY_POLL + Duration::from_micros(1));
    let error = Proxy::bind(config).await.expect_err("refused");
    assert!(error.to_string().contains("busy polling"), "{error}");

    let mut config = ProxyConfig::new(addr, "http://127.0.0.1:9");
    config.busy_poll = Some(Duration::ZERO);
    let proxy = Proxy::bind(config).await.expect("zero: off, accepted");
    assert_eq!(proxy.busy_poll_windows(), 0);
    proxy.shutdown().await;
}
