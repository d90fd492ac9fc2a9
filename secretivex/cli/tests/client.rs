//! `secretivex` against real agents: OpenSSH's `ssh-agent` (the client must work with any
//! agent) and SecretiveX's own.

mod common;

use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

use common::{certified_key, cli_bin, keygen, run, tempdir, tool, Agent, AgentProgram, Key, Out};

/// An agent holding Ed25519, ECDSA P-384, RSA-3072 keys and an Ed25519 certificate.
fn loaded_agent(program: AgentProgram, dir: &Path) -> (Agent, Vec<Key>) {
    let keys = vec![
        keygen(dir, "id_ed25519", "ed25519", "256"),
        keygen(dir, "id_ecdsa", "ecdsa", "384"),
        keygen(dir, "id_rsa", "rsa", "3072"),
        certified_key(dir, "id_cert"),
    ];
    let agent = Agent::start(program, dir);
    for k in &keys {
        agent.add(k);
    }
    (agent, keys)
}

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

fn list_matches_ssh_add(agent: &Agent) {
    let ours = agent.cli(&["list"]);
    ours.ok();
    let theirs = agent.ssh_add(&["-l"]);
    theirs.ok();
    assert_eq!(
        sorted_lines(&ours.stdout),
        sorted_lines(&theirs.stdout),
        "{ours}\n{theirs}"
    );
    assert_eq!(ours.stdout.lines().count(), 5, "{ours}");
}

#[test]
fn list_prints_what_ssh_add_l_prints() {
    let dir = tempdir();
    let (agent, _keys) = loaded_agent(AgentProgram::OpenSsh, dir.path());
    list_matches_ssh_add(&agent);
}

#[test]
fn list_json_has_fingerprint_type_bits_comment_and_blob() {
    let dir = tempdir();
    let (agent, keys) = loaded_agent(AgentProgram::OpenSsh, dir.path());
    let out = agent.cli(&["list", "--json"]);
    out.ok();
    let items: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).expect("JSON array");
    assert_eq!(items.len(), 5, "{out}");
    let expected = [
        ("ssh-ed25519", 256),
        ("ecdsa-sha2-nistp384", 384),
        ("ssh-rsa", 3072),
        ("ssh-ed25519", 256),
    ];
    for (k, (key_type, bits)) in keys.iter().zip(expected) {
        let line = k.public_line();
        let blob = line.split_whitespace().nth(1).expect("blob");
        let item = items
            .iter()
            .find(|i| i["public_key"] == blob)
            .unwrap_or_else(|| panic!("{} not in {out}", k.public.display()));
        assert_eq!(item["fingerprint"], k.fingerprint().as_str());
        assert_eq!(item["type"], key_type);
        assert_eq!(item["bits"], bits);
        assert_eq!(item["certificate"], false);
        let comment = line.split_whitespace().nth(2).expect("comment");
        assert_eq!(item["comment"], comment);
    }
    let cert_line = std::fs::read_to_string(keys[3].cert.as_ref().expect("cert")).expect("cert");
    let cert_blob = cert_line.split_whitespace().nth(1).expect("cert blob");
    let cert = items
        .iter()
        .find(|i| i["public_key"] == cert_blob)
        .unwrap_or_else(|| panic!("certificate not in {out}"));
    assert_eq!(cert["type"], "ssh-ed25519-cert-v01@openssh.com");
    assert_eq!(cert["certificate"], true);
    assert_eq!(cert["fingerprint"], keys[3].fingerprint().as_str());
}

#[test]
fn empty_agent_lists_nothing() {
    let dir = tempdir();
    let agent = Agent::start(AgentProgram::OpenSsh, dir.path());
    let out = agent.cli(&["list"]);
    out.code_is(1);
    assert_eq!(out.stdout.trim(), "The agent has no identities.");
    // The socket can also come from SSH_AUTH_SOCK.
    let via_env = run(Command::new(cli_bin())
        .env("SSH_AUTH_SOCK", &agent.sock)
        .arg("list"));
    via_env.code_is(1);
    assert_eq!(via_env.stdout.trim(), "The agent has no identities.");
    let json = agent.cli(&["list", "--json"]);
    json.ok();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&json.stdout).expect("json"),
        serde_json::json!([])
    );
}

/// `ssh-keygen -Y verify` of FILE.sig for `key` in `namespace`.
fn verify(key: &Key, namespace: &str, file: &Path) -> Out {
    let allowed = file.with_extension("allowed");
    std::fs::write(
        &allowed,
        format!("signer@example.com {}\n", key.public_line()),
    )
    .expect("allowed");
    let mut sig = file.as_os_str().to_os_string();
    sig.push(".sig");
    run(tool("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(&allowed)
        .args(["-I", "signer@example.com", "-n", namespace, "-s"])
        .arg(sig)
        .stdin(std::fs::File::open(file).expect("open")))
}

fn sign_and_verify_every_key(agent: &Agent, keys: &[Key], dir: &Path) {
    for (i, k) in keys.iter().enumerate() {
        let file = dir.join(format!("doc{i}.txt"));
        std::fs::write(&file, format!("document {i}\n").repeat(1000)).expect("doc");
        let fp = k.fingerprint();
        agent
            .cli(&[
                std::ffi::OsStr::new("sign"),
                "--key".as_ref(),
                fp.as_ref(),
                file.as_os_str(),
            ])
            .ok();
        let ok = verify(k, "file", &file);
        assert_eq!(
            ok.code,
            Some(0),
            "{} did not verify: {ok}",
            k.public.display()
        );
        assert!(ok.stdout.contains("Good \"file\" signature"), "{ok}");
        // Controls: other data or another namespace must not verify.
        verify(k, "git", &file).code_is(255);
        std::fs::write(&file, "changed\n").expect("doc");
        verify(k, "file", &file).code_is(255);
    }
    // A custom namespace.
    let file = dir.join("commit");
    std::fs::write(&file, "tree 1234\n").expect("doc");
    let fp = keys[0].fingerprint();
    let bare = fp.trim_start_matches("SHA256:");
    agent
        .cli(&[
            std::ffi::OsStr::new("sign"),
            "--key".as_ref(),
            bare.as_ref(),
            "-n".as_ref(),
            "git".as_ref(),
            file.as_os_str(),
        ])
        .ok();
    verify(&keys[0], "git", &file).ok();
}

#[test]
fn sign_writes_signatures_ssh_keygen_verifies() {
    let dir = tempdir();
    let (agent, keys) = loaded_agent(AgentProgram::OpenSsh, dir.path());
    sign_and_verify_every_key(&agent, &keys, dir.path());
}

#[test]
fn sign_with_unknown_fingerprint_fails() {
    let dir = tempdir();
    let (agent, _keys) = loaded_agent(AgentProgram::OpenSsh, dir.path());
    let file = dir.path().join("f");
    std::fs::write(&file, "x").expect("f");
    let out = agent.cli(&[
        std::ffi::OsStr::new("sign"),
        "--key".as_ref(),
        "SHA256:AAAA".as_ref(),
        file.as_os_str(),
    ]);
    out.code_is(2);
    assert!(out.stderr.contains("no key with fingerprint"), "{out}");
    assert!(!dir.path().join("f.sig").exists());
}

#[test]
fn wait_ready_times_out_without_agent_and_succeeds_when_it_comes_up() {
    let dir = tempdir();
    let sock = dir.path().join("agent.sock");
    let cli = |timeout: &str| {
        run(Command::new(cli_bin()).arg("--socket").arg(&sock).args([
            "wait-ready",
            "--timeout",
            timeout,
        ]))
    };
    let out = cli("0.3");
    out.code_is(1);
    assert!(out.stderr.contains("not ready"), "{out}");

    // Start an agent a little later; wait-ready must see it.
    let sock2 = sock.clone();
    let starter = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        Command::new(common::require_tool("ssh-agent"))
            .args(["-D", "-a"])
            .arg(&sock2)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start ssh-agent")
    });
    let out = cli("30");
    let mut agent = starter.join().expect("starter");
    let _ = agent.kill();
    let _ = agent.wait();
    out.ok();
    assert!(out.stdout.contains("ready"), "{out}");
}

#[test]
fn query_reports_an_agent_without_the_extension() {
    // OpenSSH added `query` in 10.3; older agents answer FAILURE.
    let dir = tempdir();
    let agent = Agent::start(AgentProgram::OpenSsh, dir.path());
    let version = run(tool("ssh").arg("-V"));
    let out = agent.cli(&["query"]);
    if version.stderr.contains("OpenSSH_9.") || version.stderr.contains("OpenSSH_8.") {
        out.code_is(1);
        assert!(
            out.stderr.contains("does not support the query extension"),
            "{out}"
        );
    } else {
        out.ok();
        assert!(
            out.stdout.lines().any(|l| l == "session-bind@openssh.com"),
            "{out}"
        );
    }
}

#[test]
fn health_flags_weak_unsupported_and_passes_good_keys() {
    let dir = tempdir();
    let agent = Agent::start(AgentProgram::OpenSsh, dir.path());
    let good = keygen(dir.path(), "id_good", "ed25519", "256");
    agent.add(&good);
    let out = agent.cli(&["health"]);
    out.ok();
    assert!(out.stdout.contains("1 keys, no problems"), "{out}");

    let weak = keygen(dir.path(), "id_weak", "rsa", "2048");
    let tiny = keygen(dir.path(), "id_tiny", "rsa", "1024");
    let mut flagged = vec![(weak, "weak: 2048 "), (tiny, "unsupported: 1024 ")];
    // OpenSSH 10 no longer makes or loads DSA keys; where it still does, they are flagged too
    // (the classification itself is unit-tested in health.rs).
    let dsa_made = run(tool("ssh-keygen")
        .args(["-q", "-t", "dsa", "-N", "", "-f"])
        .arg(dir.path().join("id_dsa")));
    if dsa_made.code == Some(0) {
        let dsa = Key {
            private: dir.path().join("id_dsa"),
            public: dir.path().join("id_dsa.pub"),
            cert: None,
        };
        if agent.ssh_add(&[&dsa.private]).code == Some(0) {
            flagged.push((dsa, "unsupported: 1024 "));
        }
    }
    for (k, _) in &flagged {
        agent.add(k);
    }
    let out = agent.cli(&["health"]);
    out.code_is(1);
    for (k, prefix) in &flagged {
        let fp = k.fingerprint();
        let line = out
            .stdout
            .lines()
            .find(|l| l.contains(&fp))
            .unwrap_or_else(|| panic!("{fp} not reported: {out}"));
        assert!(
            line.starts_with(prefix),
            "{line} should start with {prefix}: {out}"
        );
    }
    assert!(
        !out.stdout.contains(&good.fingerprint()),
        "good key reported: {out}"
    );
    let summary = format!("{} keys, {} problems", flagged.len() + 1, flagged.len());
    assert!(out.stdout.contains(&summary), "{out}");
}

#[test]
fn health_probe_reports_keys_the_agent_will_not_sign_with() {
    let dir = tempdir();
    let askpass = dir.path().join("deny");
    std::fs::write(&askpass, "#!/bin/sh\nexit 1\n").expect("askpass");
    run(tool("chmod").arg("755").arg(&askpass)).ok();
    let agent = Agent::start_with_env(
        AgentProgram::OpenSsh,
        dir.path(),
        &[
            ("SSH_ASKPASS", askpass.as_os_str()),
            ("SSH_ASKPASS_REQUIRE", "force".as_ref()),
            ("DISPLAY", ":0".as_ref()),
        ],
    );
    let fine = keygen(dir.path(), "id_fine", "rsa", "3072");
    let denied = keygen(dir.path(), "id_denied", "ed25519", "256");
    agent.add(&fine);
    agent
        .ssh_add(&["-c".as_ref(), denied.private.as_os_str()])
        .ok();

    // Without probing both keys look healthy.
    agent.cli(&["health"]).ok();
    let out = agent.cli(&["health", "--probe"]);
    out.code_is(1);
    let denied_fp = denied.fingerprint();
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains(&denied_fp))
        .unwrap_or_else(|| panic!("denied key not reported: {out}"));
    assert!(
        line.starts_with("unusable: ") && line.contains("refused"),
        "{out}"
    );
    assert!(
        !out.stdout.contains(&fine.fingerprint()),
        "RSA key reported: {out}"
    );
    assert!(out.stdout.contains("2 keys, 1 problems"), "{out}");
}

#[test]
fn missing_socket_is_a_clear_error() {
    let out = run(Command::new(cli_bin())
        .env_remove("SSH_AUTH_SOCK")
        .arg("list"));
    out.code_is(2);
    assert!(out.stderr.contains("SSH_AUTH_SOCK"), "{out}");
    let out = run(Command::new(cli_bin()).args(["--socket", "/nonexistent/agent.sock", "list"]));
    out.code_is(2);
    assert!(out.stderr.contains("cannot connect"), "{out}");
}

#[test]
fn works_against_secretivex_agent() {
    let dir = tempdir();
    let keys = vec![
        keygen(dir.path(), "id_ed25519", "ed25519", "256"),
        keygen(dir.path(), "id_ecdsa", "ecdsa", "256"),
        keygen(dir.path(), "id_rsa", "rsa", "3072"),
    ];
    let agent = Agent::start(AgentProgram::SecretiveX, dir.path());
    for k in &keys {
        agent.add(k);
    }
    let ours = agent.cli(&["list"]);
    ours.ok();
    let theirs = agent.ssh_add(&["-l"]);
    assert_eq!(
        sorted_lines(&ours.stdout),
        sorted_lines(&theirs.stdout),
        "{ours}\n{theirs}"
    );
    sign_and_verify_every_key(&agent, &keys, dir.path());

    let out = agent.cli(&["query"]);
    out.ok();
    let names: Vec<&str> = out.stdout.lines().collect();
    assert!(
        names.contains(&"query") && names.contains(&"session-bind@openssh.com"),
        "{out}"
    );

    agent.cli(&["health", "--probe"]).ok();
    agent.cli(&["wait-ready", "--timeout", "5"]).ok();
}
