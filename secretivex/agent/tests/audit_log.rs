//! The audit trail end to end: our agent started with `--config FILE` holding `[audit]`, real
//! `ssh-add -T` and `ssh-keygen -Y sign` signing through it, then `secretivex audit verify` on
//! the log it wrote, and a search of the log's bytes for the signed data.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use aws_lc_rs::digest::{digest, SHA256, SHA512};
use base64::Engine;

use common::config::write_file;
use common::sshsig::sign_via_agent;
use common::{gen_key, poll, run, tempdir, Agent, AgentBuilder, AgentImpl, CmdOutput, KeyKind};

/// The `secretivex` client, built into the same target directory (`cargo test --workspace`
/// builds it). Cargo only exposes binaries of the package under test, so it is found next to
/// the test executable: `target/<profile>/deps/<test>` → `target/<profile>/secretivex`.
#[track_caller]
fn our_cli() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("secretivex"))
        .expect("target dir");
    assert!(
        path.is_file(),
        "{} is not built; run `cargo build -p secretivex-cli` (or `cargo test --workspace`)",
        path.display()
    );
    path
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `secretivex audit verify [--json] PATH`.
fn verify(path: &Path, json: bool) -> CmdOutput {
    let mut cmd = Command::new(our_cli());
    cmd.args(["audit", "verify"]);
    if json {
        cmd.arg("--json");
    }
    run(cmd.arg(path))
}

/// Every line of every file of the log, oldest first, parsed.
fn log_lines(dir: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .expect("read log dir")
        .map(|e| e.expect("dir entry").path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_owned();
            match name.strip_prefix("audit.jsonl") {
                Some("") => Some((u64::MAX, p)),
                Some(rest) => rest.strip_prefix('.')?.parse().ok().map(|n| (n, p)),
                None => None,
            }
        })
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|(_, p)| {
            std::fs::read_to_string(p)
                .expect("read log file")
                .lines()
                .map(|l| serde_json::from_str(l).expect("each line is JSON"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// All bytes of the log directory's files.
fn log_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read log dir") {
        all.extend(std::fs::read(entry.expect("dir entry").path()).expect("read log file"));
    }
    all
}

fn sign_lines(lines: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    lines.iter().filter(|l| l["event"] == "sign").collect()
}

/// Waits until the log holds at least `n` sign decisions (the writer is asynchronous).
#[track_caller]
fn wait_for_signs(agent: &Agent, dir: &Path, n: usize) -> Vec<serde_json::Value> {
    let seen = poll(1000, Duration::from_millis(20), || {
        let lines = if dir.join("audit.jsonl").exists() {
            log_lines(dir)
        } else {
            Vec::new()
        };
        (sign_lines(&lines).len() >= n).then_some(lines)
    });
    seen.unwrap_or_else(|| panic!("the log never held {n} sign decisions\n{}", agent.output()))
}

fn start_agent(dir: &Path, config: &Path) -> Agent {
    AgentBuilder::with_impl(AgentImpl::SecretiveX, dir)
        .args(["--config".as_ref(), config.as_os_str()])
        .start()
}

/// What `ssh-keygen -Y sign` asks the agent to sign (PROTOCOL.sshsig): the preamble,
/// namespace, reserved string, hash algorithm and the SHA-512 of the message.
fn sshsig_signed_data(namespace: &str, message: &[u8]) -> Vec<u8> {
    let mut out = b"SSHSIG".to_vec();
    let hash = digest(&SHA512, message);
    for field in [namespace.as_bytes(), b"", b"sha512", hash.as_ref()] {
        out.extend_from_slice(&(field.len() as u32).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

#[test]
fn signatures_are_audited_in_a_verifiable_chain_without_the_signed_data() {
    let dir = tempdir();
    let key = gen_key(dir.path(), KeyKind::Ed25519, "id_ed25519");
    let log_dir = dir.path().join("audit");
    let config = write_file(
        dir.path(),
        "agent.toml",
        &format!(
            "[audit]\npath = \"{}\"\nmax_bytes = 4096\nkeep = 100\n",
            log_dir.join("audit.jsonl").display()
        ),
    );
    let agent = start_agent(dir.path(), &config);
    agent.add(&key.private);

    // Enough signatures to rotate the log several times (4 KiB files).
    const TESTS: usize = 30;
    for _ in 0..TESTS {
        agent
            .ssh_add(["-T".as_ref(), key.public.as_os_str()])
            .assert_ok();
    }
    // A distinctive random payload, signed with ssh-keygen -Y sign through the agent.
    let canary: [u8; 32] = rand::random();
    let payload = format!("secretivex-audit-canary-{}\n", hex(&canary));
    let payload_path = write_file(dir.path(), "payload.txt", &payload);
    sign_via_agent(&agent, &key, "file", &payload_path).assert_ok();

    let lines = wait_for_signs(&agent, &log_dir, TESTS + 1);
    let signs = sign_lines(&lines);
    let fingerprint = key.fingerprint();
    for line in &signs {
        assert_eq!(line["decision"], "allow", "{line}");
        assert_eq!(line["key_fingerprint"], fingerprint.as_str(), "{line}");
        assert_eq!(line["peer_uid"], 0, "the tests run as root: {line}");
        assert!(line["peer_pid"].as_u64().is_some(), "{line}");
        assert!(line["latency_us"].as_u64().is_some(), "{line}");
        assert!(
            line["time"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{line}"
        );
    }
    let exe_of = |l: &&serde_json::Value| l["peer_exe"].as_str().unwrap_or("").to_owned();
    assert!(
        signs.iter().any(|l| exe_of(l).ends_with("/ssh-add")),
        "{signs:?}"
    );
    let keygen = signs
        .iter()
        .find(|l| exe_of(l).ends_with("/ssh-keygen"))
        .unwrap_or_else(|| panic!("no ssh-keygen sign line: {signs:?}"));
    // The line carries the SHA-256 of what was signed, and only that.
    let signed = sshsig_signed_data("file", payload.as_bytes());
    assert_eq!(
        keygen["data_sha256"],
        hex(digest(&SHA256, &signed).as_ref()).as_str(),
        "{keygen}"
    );

    let files = std::fs::read_dir(&log_dir).expect("log dir").count();
    assert!(files > 3, "expected rotated files, found {files}");
    let out = verify(&log_dir, false);
    out.assert_ok();
    assert!(out.stdout.starts_with("intact: "), "{out}");

    // The signed data never reaches the log, in any encoding.
    let bytes = log_bytes(&log_dir);
    let text = String::from_utf8_lossy(&bytes);
    let b64 = base64::engine::general_purpose::STANDARD;
    for needle in [
        payload.trim_end().to_owned(),
        hex(&canary),
        hex(&signed),
        b64.encode(&signed),
        b64.encode(payload.as_bytes()),
        hex(digest(&SHA512, payload.as_bytes()).as_ref()),
    ] {
        assert!(!text.contains(&needle), "{needle} found in the log");
    }
    assert!(
        !bytes.windows(signed.len()).any(|w| w == signed.as_slice()),
        "raw signed data found in the log"
    );

    // Removing a line from the middle is caught, and the line is named.
    let victim = std::fs::read_dir(&log_dir)
        .expect("log dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.to_string_lossy().ends_with("audit.jsonl.2"))
        .expect("a second rotated file");
    let original = std::fs::read_to_string(&victim).expect("read");
    let kept: Vec<&str> = original
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, l)| l)
        .collect();
    std::fs::write(&victim, format!("{}\n", kept.join("\n"))).expect("write");
    let out = verify(&log_dir, false);
    out.assert_fail();
    let want = format!("{}:2: missing", victim.display());
    assert!(out.stdout.starts_with(&want), "want {want}\n{out}");
}

#[test]
fn a_restarted_agent_continues_the_chain() {
    let dir = tempdir();
    let key = gen_key(dir.path(), KeyKind::Ed25519, "id_ed25519");
    let log_dir = dir.path().join("audit");
    let config = write_file(
        dir.path(),
        "agent.toml",
        &format!(
            "[audit]\npath = \"{}\"\n",
            log_dir.join("audit.jsonl").display()
        ),
    );
    for round in 1..=2 {
        let agent = start_agent(dir.path(), &config);
        agent.add(&key.private);
        for _ in 0..3 {
            agent
                .ssh_add(["-T".as_ref(), key.public.as_os_str()])
                .assert_ok();
        }
        wait_for_signs(&agent, &log_dir, 3 * round);
        // Dropping the agent kills it; its lines are already written.
    }
    let out = verify(&log_dir, true);
    out.assert_ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v["ok"], true, "{out}");
    assert_eq!(v["first_seq"], 1, "{out}");
    let lines = log_lines(&log_dir);
    assert_eq!(sign_lines(&lines).len(), 6);
    assert_eq!(v["last_seq"], lines.len(), "{out}");
}
