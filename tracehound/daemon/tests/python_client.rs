//! Another runtime drives the daemon: Python's grpcio, with stubs generated from the
//! published proto, gets the same answers as the Rust client for the same calls.
//!
//! Needs `python3 -m pip install grpcio grpcio-tools`. Without them the test is skipped
//! locally but fails under CI=true.

mod common;

use std::path::Path;
use std::process::Command;

use common::{req, start};
use serde_json::{json, Value};
use tracehound_daemon::DaemonConfig;
use tracehound_rpc::pb;

const PAYLOAD: &str = "{\"q\":\"' OR 1=1\"}";

fn python_ready() -> bool {
    Command::new("python3")
        .args(["-c", "import grpc, grpc_tools"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn reply(r: &pb::InterceptReply) -> Value {
    json!({"sequence": r.sequence, "status": r.status, "retry_after_ms": r.retry_after_ms,
           "limit": r.limit, "signature": r.signature, "hash": r.hash, "size": r.size,
           "severity": r.severity, "captured_ms": r.captured_ms, "error_code": r.error_code})
}

fn stats(s: &pb::StatsReply) -> Value {
    let q = s.quarantine.clone().unwrap_or_default();
    let mut sev: Vec<(String, u64)> = q.count_by_severity.into_iter().collect();
    sev.sort();
    let audit = s.audit.clone().unwrap_or_default();
    json!({
        "counters": [s.total_intercepts, s.clean, s.rate_limited, s.payload_too_large,
                     s.ignored, s.quarantined, s.errors, s.panics_caught],
        "quarantine": [q.count, q.bytes, q.max_count, q.max_bytes, q.pressure, sev],
        "audit": [audit.length, audit.head_hash],
        "top_sources": s.top_sources.iter()
            .map(|t| json!([t.source, t.intercepts, t.threats, t.blocked])).collect::<Vec<_>>(),
        "recent_threats": s.recent_threats.iter()
            .map(|t| json!([t.signature, t.category, t.severity, t.size])).collect::<Vec<_>>(),
        "config": [s.config_generation, s.reload_failures],
        "rate_limit": [s.rate_limited_sources_active, s.rate_limited_sources_blocked],
    })
}

fn inspect(i: &pb::InspectReply) -> Value {
    json!([
        i.found,
        i.signature,
        i.category,
        i.severity,
        i.size,
        i.stored_bytes,
        i.hash,
        i.captured_ms,
        i.disposed
    ])
}

async fn rust_side(socket: &Path) -> Value {
    let mut c = tracehound_rpc::connect(socket.to_str().unwrap())
        .await
        .unwrap();
    let mut intercepts = Vec::new();
    intercepts.push(reply(
        &c.intercept(req("a", "{\"x\":1}", None, 1))
            .await
            .unwrap()
            .into_inner(),
    ));
    let threat = c
        .intercept(req("b", PAYLOAD, Some(("injection", "high")), 2))
        .await
        .unwrap()
        .into_inner();
    intercepts.push(reply(&threat));
    intercepts.push(reply(
        &c.intercept(req("c", PAYLOAD, Some(("injection", "high")), 3))
            .await
            .unwrap()
            .into_inner(),
    ));
    intercepts.push(reply(
        &c.intercept(req("d", "{nope", None, 4))
            .await
            .unwrap()
            .into_inner(),
    ));
    let s = c
        .stats(pb::StatsRequest { top: 5 })
        .await
        .unwrap()
        .into_inner();
    let found = c
        .inspect(pb::InspectRequest {
            signature: threat.signature.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let missing = c
        .inspect(pb::InspectRequest {
            signature: "spam:00".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let chain = c
        .verify_chain(pb::VerifyChainRequest {})
        .await
        .unwrap()
        .into_inner();
    json!({
        "intercepts": intercepts,
        "stats": stats(&s),
        "inspect": inspect(&found),
        "missing": inspect(&missing),
        "chain": [chain.ok, chain.length, chain.head_hash],
    })
}

#[tokio::test]
async fn python_client_gets_the_rust_clients_answers() {
    if !python_ready() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(
            !ci,
            "grpcio/grpcio-tools missing: run `python3 -m pip install grpcio grpcio-tools`"
        );
        eprintln!("SKIPPED: python3 with grpcio and grpcio-tools is not installed");
        return;
    }
    let stubs = tempfile::tempdir().unwrap();
    let proto_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rpc/proto");
    let gen = Command::new("python3")
        .args(["-m", "grpc_tools.protoc"])
        .arg(format!("-I{}", proto_dir.display()))
        .arg(format!("--python_out={}", stubs.path().display()))
        .arg(format!("--grpc_python_out={}", stubs.path().display()))
        .arg(proto_dir.join("tracehound.proto"))
        .output()
        .unwrap();
    assert!(
        gen.status.success(),
        "protoc: {}",
        String::from_utf8_lossy(&gen.stderr)
    );

    let py_daemon = start(DaemonConfig::default()).await;
    let rust_daemon = start(DaemonConfig::default()).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/client.py");
    let socket = py_daemon.socket();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .arg(socket)
            .env("PYTHONPATH", stubs.path())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_python: Value = serde_json::from_slice(&out.stdout).unwrap();
    let from_rust = rust_side(&rust_daemon.socket()).await;

    // The answers are meaningful, not two empty documents.
    let statuses: Vec<_> = from_rust["intercepts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_i64().unwrap())
        .collect();
    let want = [
        pb::Status::Clean,
        pb::Status::Quarantined,
        pb::Status::Ignored,
        pb::Status::Error,
    ];
    assert_eq!(statuses, want.map(|s| s as i64));
    assert_eq!(from_rust["inspect"][0], true);
    assert_eq!(from_python, from_rust);
    py_daemon.daemon.shutdown().await;
    rust_daemon.daemon.shutdown().await;
}
