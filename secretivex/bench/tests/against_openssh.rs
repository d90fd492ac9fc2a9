//! The bench against OpenSSH's real `ssh-agent` with loaded keys: every mode and connect
//! style completes its requests with zero failures and verified replies, and the JSON
//! and CSV reports carry the required fields.

mod common;

use std::path::Path;

use common::{assert_report_shape, keygen, run_bench, Agent};

struct Fixture {
    dir: tempfile::TempDir,
    agent: Agent,
    ed25519: std::path::PathBuf,
    rsa: std::path::PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let ed25519 = keygen(dir.path(), "ed", &["-t", "ed25519"]);
    let rsa = keygen(dir.path(), "rsa", &["-t", "rsa", "-b", "2048"]);
    let agent = Agent::start(Path::new("ssh-agent"), dir.path().join("agent.sock"));
    agent.add(&ed25519);
    agent.add(&rsa);
    Fixture {
        dir,
        agent,
        ed25519,
        rsa,
    }
}

/// Runs `requests` requests and checks the outcome; returns the report.
fn clean_run(f: &Fixture, tag: &str, extra: &[&str], requests: u64) -> common::BenchRun {
    let sock = f.agent.sock.to_str().unwrap().to_owned();
    let pid = f.agent.pid().to_string();
    let n = requests.to_string();
    let mut args = vec![
        "--socket",
        &sock,
        "--requests",
        &n,
        "--verify",
        "--verify-every",
        "7",
        "--agent-pid",
        &pid,
    ];
    args.extend_from_slice(extra);
    let run = run_bench(f.dir.path(), tag, &args);
    assert!(run.output.status.success(), "{}", run.describe());
    assert_report_shape(&run);
    assert_eq!(run.count("ops"), requests, "{}", run.describe());
    assert_eq!(run.count("failures"), 0, "{}", run.describe());
    assert_eq!(run.count("timeouts"), 0);
    assert_eq!(run.count("verify_failures"), 0);
    assert!(run.count("verified") > 0, "{}", run.describe());
    assert!(run.json["agent_cpu_us_per_op"].is_f64(), "{}", run.json);
    run
}

#[test]
fn sign_persistent_and_per_request() {
    let f = fixture();
    let run = clean_run(&f, "sign-p", &["--clients", "4"], 120);
    assert_eq!(run.count("sign_ops"), 120);
    // One connection per client, kept for every request.
    assert_eq!(run.count("connects"), 4);
    assert_eq!(run.json["key"]["type"], "ssh-ed25519");
    assert_eq!(
        run.json["key"]["fingerprint"],
        common::fingerprint(&f.ed25519)
    );

    let run = clean_run(
        &f,
        "sign-r",
        &["--clients", "8", "--connect", "per-request"],
        120,
    );
    assert_eq!(run.count("connects"), 120);
    assert_eq!(run.json["params"]["connect"], "per-request");
    assert_eq!(run.json["latency_us"]["count"], 120);
}

#[test]
fn list_and_mixed() {
    let f = fixture();
    // Also exercises the multi-threaded generator runtime.
    let run = clean_run(
        &f,
        "list",
        &["--mode", "list", "--clients", "3", "--threads", "2"],
        60,
    );
    assert_eq!(run.json["params"]["threads"], 2);
    assert_eq!(run.count("list_ops"), 60);
    assert_eq!(run.count("sign_ops"), 0);

    let run = clean_run(
        &f,
        "mixed",
        &[
            "--mode",
            "mixed",
            "--clients",
            "1",
            "--connect",
            "per-request",
        ],
        40,
    );
    // One client alternates list and sign.
    assert_eq!(run.count("list_ops"), 20);
    assert_eq!(run.count("sign_ops"), 20);
}

#[test]
fn rsa_key_chosen_by_fingerprint_signs_with_sha2() {
    let f = fixture();
    let fp = common::fingerprint(&f.rsa);
    let run = clean_run(&f, "rsa", &["--key", &fp, "--clients", "2"], 30);
    assert_eq!(run.json["key"]["type"], "ssh-rsa");
    assert_eq!(run.json["key"]["fingerprint"], fp.as_str());

    let sock = f.agent.sock.to_str().unwrap();
    let out = std::process::Command::new(common::bench_bin())
        .args(["--socket", sock, "--requests", "1", "--key", "SHA256:nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no identity with fingerprint"));
}

#[test]
fn duration_bound_run_with_ramp() {
    let f = fixture();
    let sock = f.agent.sock.to_str().unwrap();
    let run = run_bench(
        f.dir.path(),
        "dur",
        &[
            "--socket",
            sock,
            "--duration",
            "1",
            "--clients",
            "16",
            "--ramp-ms",
            "200",
            "--connect",
            "per-request",
            "--verify",
        ],
    );
    assert!(run.output.status.success(), "{}", run.describe());
    assert_report_shape(&run);
    assert!(run.count("ops") > 0);
    assert_eq!(run.count("failures"), 0, "{}", run.describe());
    // Each client's first signature is verified.
    assert!(run.count("verified") >= 16, "{}", run.describe());
    assert!(run.json["agent_cpu_us_per_op"].is_null());
    assert_eq!(run.json["params"]["duration_s"], 1.0);
}
