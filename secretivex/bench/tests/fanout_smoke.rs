//! Fan-out smoke run against OUR agent (issue 4): 500 clients, a new connection per
//! request, for about 3 seconds, with sampled signature verification. Asserts counts
//! only: zero failures, zero timeouts, verified signatures.
//!
//! Needs the `secretivex-agent` binary next to this test's target directory; `cargo test
//! --workspace` builds it, `cargo build -p secretivex-agent` does too.

mod common;

use std::path::PathBuf;

use common::{assert_report_shape, keygen, run_bench, Agent};

/// `target/<profile>/secretivex-agent`, found from this test executable
/// (`target/<profile>/deps/<test>`).
fn our_agent() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("secretivex-agent"))
        .expect("test executable has a target directory");
    assert!(
        path.is_file(),
        "{} is missing: build it with `cargo build -p secretivex-agent` \
         (or run `cargo test --workspace`)",
        path.display()
    );
    path
}

#[test]
fn five_hundred_per_request_clients_no_failures_verified() {
    let agent_bin = our_agent();
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "ed", &["-t", "ed25519"]);
    let agent = Agent::start(&agent_bin, dir.path().join("sx.sock"));
    agent.add(&key);

    let sock = agent.sock.to_str().unwrap().to_owned();
    let pid = agent.pid().to_string();
    let run = run_bench(
        dir.path(),
        "smoke",
        &[
            "--socket",
            &sock,
            "--connect",
            "per-request",
            "--clients",
            "500",
            "--duration",
            "3",
            "--verify",
            "--verify-every",
            "20",
            "--agent-pid",
            &pid,
        ],
    );
    assert!(run.output.status.success(), "{}", run.describe());
    assert_report_shape(&run);
    assert!(run.count("ops") > 0, "{}", run.describe());
    assert_eq!(run.count("failures"), 0, "{}", run.describe());
    assert_eq!(run.count("timeouts"), 0, "{}", run.describe());
    assert_eq!(run.count("verify_failures"), 0, "{}", run.describe());
    // At least each client's first signature was checked.
    assert!(run.count("verified") >= 500, "{}", run.describe());
    assert_eq!(run.count("connects"), run.count("ops"));
    assert_eq!(run.json["key"]["fingerprint"], common::fingerprint(&key));
}

/// `idle`: 300 connections held open are all still served afterwards, and the agent's
/// RSS grows by less than issue 4's budget (50 MiB per 1,000 idle connections, so 15 MiB
/// here). Counts and sizes only.
#[test]
fn idle_connections_are_held_served_and_cheap() {
    let agent_bin = our_agent();
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "ed", &["-t", "ed25519"]);
    let agent = Agent::start(&agent_bin, dir.path().join("sx.sock"));
    agent.add(&key);

    let json_path = dir.path().join("idle.json");
    let output = std::process::Command::new(common::bench_bin())
        .args(["idle", "--clients", "300", "--hold-secs", "0.5"])
        .arg("--socket")
        .arg(&agent.sock)
        .arg("--agent-pid")
        .arg(agent.pid().to_string())
        .arg("--json")
        .arg(&json_path)
        .output()
        .expect("bench runs");
    let describe = || {
        format!(
            "status {}\nstdout:\n{}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    };
    assert!(output.status.success(), "{}", describe());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let n = |f: &str| {
        json[f]
            .as_u64()
            .unwrap_or_else(|| panic!("no {f} in {json}"))
    };
    assert_eq!(n("connected"), 300, "{json}");
    assert_eq!(n("failed"), 0, "{json}");
    assert_eq!(n("served_after_hold"), 300, "{json}");
    assert!(n("agent_rss_before_kib") > 0, "{json}");
    assert!(n("agent_rss_peak_kib") >= n("agent_rss_held_kib"), "{json}");
    let grown = n("agent_rss_peak_kib").saturating_sub(n("agent_rss_before_kib"));
    assert!(
        grown < 15 * 1024,
        "300 idle connections cost {grown} KiB: {json}"
    );
}
