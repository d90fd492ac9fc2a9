//! Issue 4, "Metrics": the opt-in Prometheus listener counts what the agent did. Signs are
//! made over the agent socket, then the page is scraped over HTTP/1.1 and its counters
//! compared with the numbers of requests sent.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;

use common::agent::{run_agent, AgentImpl};
use common::wire::{self, FAILURE, SIGN_RESPONSE};
use common::{gen_key, tempdir, AgentBuilder, KeyKind};
use secretivex_proto::{Request, SignRequest};

/// Sends one HTTP GET over `stream` and returns the body of a 200 answer.
fn get(mut stream: impl Read + Write, path: &str) -> String {
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("HTTP head");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    body.to_string()
}

/// The value of the series named exactly `series` (name and labels) on the page.
fn value(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in\n{page}"))
}

fn sign(sock: &Path, blob: &[u8], i: usize) -> Option<u8> {
    let mut req = Vec::new();
    Request::Sign(SignRequest {
        key_blob: blob.to_vec(),
        data: format!("message {i}").into_bytes(),
        flags: 0,
    })
    .encode_frame(&mut req);
    let mut s = wire::connect(sock).expect("connect");
    wire::request(&mut s, &req).expect("reply").msg_type()
}

#[test]
fn scraped_counters_match_the_signs_made() {
    const ED_SIGNS: usize = 25;
    const EC_SIGNS: usize = 7;
    let dir = tempdir();
    let ed = gen_key(dir.path(), KeyKind::Ed25519, "id_ed");
    let ec = gen_key(dir.path(), KeyKind::Ecdsa256, "id_ec");
    let unknown = gen_key(dir.path(), KeyKind::Ed25519, "id_unknown");
    let metrics_sock = dir.path().join("metrics.sock");
    let agent = AgentBuilder::with_impl(AgentImpl::SecretiveX, dir.path())
        .args([format!("--metrics-listen=unix:{}", metrics_sock.display())])
        .start();
    agent.add(&ed.private);
    agent.add(&ec.private);

    let before = get(
        UnixStream::connect(&metrics_sock).expect("scrape"),
        "/metrics",
    );
    assert_eq!(
        value(
            &before,
            "secretivex_agent_signs_total{key_type=\"ed25519\",store=\"memory\"}"
        ),
        0.0
    );

    for i in 0..ED_SIGNS {
        assert_eq!(
            sign(agent.sock(), &ed.public_blob(), i),
            Some(SIGN_RESPONSE)
        );
    }
    for i in 0..EC_SIGNS {
        assert_eq!(
            sign(agent.sock(), &ec.public_blob(), i),
            Some(SIGN_RESPONSE)
        );
    }
    for i in 0..3 {
        assert_eq!(sign(agent.sock(), &unknown.public_blob(), i), Some(FAILURE));
    }

    let page = get(
        UnixStream::connect(&metrics_sock).expect("scrape"),
        "/metrics",
    );
    assert_eq!(
        value(
            &page,
            "secretivex_agent_signs_total{key_type=\"ed25519\",store=\"memory\"}"
        ),
        ED_SIGNS as f64
    );
    assert_eq!(
        value(
            &page,
            "secretivex_agent_signs_total{key_type=\"ecdsa-p256\",store=\"memory\"}"
        ),
        EC_SIGNS as f64
    );
    assert_eq!(
        value(
            &page,
            "secretivex_agent_signs_total{key_type=\"rsa\",store=\"memory\"}"
        ),
        0.0
    );
    let signed = (ED_SIGNS + EC_SIGNS) as f64;
    assert_eq!(
        value(&page, "secretivex_agent_sign_latency_seconds_count"),
        signed
    );
    assert_eq!(
        value(&page, "secretivex_agent_sign_queue_wait_seconds_count"),
        signed
    );
    assert_eq!(
        value(
            &page,
            "secretivex_agent_failures_total{reason=\"unknown_key\"}"
        ),
        3.0
    );
    assert_eq!(
        value(
            &page,
            "secretivex_agent_failures_total{reason=\"sign_timeout\"}"
        ),
        0.0
    );
    // Every sign used its own connection; ssh-add and the start-up probe add a few more.
    let total = value(&page, "secretivex_agent_connections_total");
    assert!(total >= (ED_SIGNS + EC_SIGNS + 3) as f64, "{total}");
    assert_eq!(
        value(
            &page,
            "secretivex_agent_connections_refused_total{reason=\"max_connections\"}"
        ),
        0.0
    );
}

#[test]
fn metrics_over_loopback_tcp_and_refused_elsewhere() {
    let dir = tempdir();
    // A free port: bind, note it, release it for the agent.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let agent = AgentBuilder::with_impl(AgentImpl::SecretiveX, dir.path())
        .args([format!("--metrics-listen=127.0.0.1:{port}")])
        .start();
    let mut s = wire::connect(agent.sock()).expect("connect");
    wire::identities_on(&mut s).expect("list");
    let page = get(
        TcpStream::connect(("127.0.0.1", port)).expect("scrape"),
        "/metrics",
    );
    // Ours at least (the start-up probe's may not be seen closed yet).
    assert!(value(&page, "secretivex_agent_connections_current") >= 1.0);

    // A non-loopback address is refused at start-up.
    let other = tempdir();
    let sock = other.path().join("sock");
    let out = run_agent(
        AgentImpl::SecretiveX,
        &[
            "-D".as_ref(),
            "-a".as_ref(),
            sock.as_os_str(),
            "--metrics-listen".as_ref(),
            "0.0.0.0:9100".as_ref(),
        ],
    );
    assert!(!out.success(), "{out}");
    assert!(out.stderr.contains("loopback"), "{out}");
}
