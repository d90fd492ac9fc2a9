//! The agent's command line as `ssh-agent` users know it: `-s`/`-c` daemon mode with `-k`,
//! `COMMAND [ARGS]` mode, `-d` debug logging, `--key FILE` at start-up.

mod common;

use std::path::Path;
use std::time::Duration;

use common::agent::{pid_running, run_agent};
use common::cmd::{poll, write_script};
use common::keys::gen_key_with_passphrase;
use common::{gen_key, run, tempdir, tool, wire, AgentBuilder, AgentImpl, KeyKind};

/// Kills a daemonized agent on drop, in case the test fails before `-k` does.
struct DaemonGuard(Option<u32>);

impl Drop for DaemonGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // Only signal the pid while it is still an agent (pids get reused).
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if !pid_running(pid) || !String::from_utf8_lossy(&cmdline).contains("agent") {
                return;
            }
            let pid = i32::try_from(pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw);
            if let Some(pid) = pid {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
        }
    }
}

/// `VAR=value;` (sh) or `setenv VAR value;` (csh) from the agent's export lines.
fn exported(output: &str, var: &str) -> Option<String> {
    for stmt in output.split([';', '\n']).map(str::trim) {
        if let Some(v) = stmt.strip_prefix(&format!("{var}=")) {
            return Some(v.to_string());
        }
        if let Some(v) = stmt.strip_prefix(&format!("setenv {var} ")) {
            return Some(v.trim().to_string());
        }
    }
    None
}

/// Waits (bounded) until nothing answers on `sock`.
fn socket_goes_away(sock: &Path) -> bool {
    poll(500, Duration::from_millis(20), || {
        wire::list_count(sock).is_err().then_some(())
    })
    .is_some()
}

fn daemon_start_then_kill(shell_flag: &str) {
    let imp = AgentImpl::selected();
    let dir = tempdir();
    let sock = dir.path().join("sock");
    let out = run_agent(imp, &[shell_flag.as_ref(), "-a".as_ref(), sock.as_os_str()]);
    let pid: Option<u32> = exported(&out.stdout, "SSH_AGENT_PID").and_then(|p| p.parse().ok());
    let _guard = DaemonGuard(pid);
    out.assert_ok();
    let pid = pid.unwrap_or_else(|| panic!("no SSH_AGENT_PID in {out}"));
    assert_eq!(
        exported(&out.stdout, "SSH_AUTH_SOCK").as_deref(),
        Some(sock.to_str().expect("utf-8 path")),
        "{out}"
    );
    if shell_flag == "-c" {
        assert!(out.stdout.contains("setenv SSH_AUTH_SOCK "), "{out}");
    } else {
        assert!(out.stdout.contains("export SSH_AUTH_SOCK;"), "{out}");
    }
    assert!(
        pid_running(pid),
        "daemon {pid} not running after -s returned"
    );
    assert_eq!(wire::list_count(&sock).expect("daemon answers"), 0);

    let key = gen_key(dir.path(), KeyKind::Ed25519, "id");
    let added = run(tool("ssh-add")
        .env("SSH_AUTH_SOCK", &sock)
        .arg(&key.private));
    added.assert_ok();
    assert_eq!(wire::list_count(&sock).expect("daemon answers"), 1);

    let killed = run(tool(&imp.program().to_string_lossy())
        .env("SSH_AGENT_PID", pid.to_string())
        .env("SSH_AUTH_SOCK", &sock)
        .arg(shell_flag)
        .arg("-k"));
    killed.assert_ok();
    assert!(
        killed.stdout.contains("SSH_AGENT_PID") && killed.stdout.contains("SSH_AUTH_SOCK"),
        "-k should print the unset lines: {killed}"
    );
    assert!(
        poll(500, Duration::from_millis(20), || (!pid_running(pid))
            .then_some(()))
        .is_some(),
        "agent {pid} still running after -k"
    );
    assert!(socket_goes_away(&sock), "socket still answers after -k");
}

#[test]
fn daemon_mode_sh_prints_exports_and_k_kills_it() {
    daemon_start_then_kill("-s");
}

#[test]
fn daemon_mode_csh_prints_setenv_and_k_kills_it() {
    daemon_start_then_kill("-c");
}

#[test]
fn k_without_agent_pid_fails() {
    let imp = AgentImpl::selected();
    let out = run(tool(&imp.program().to_string_lossy()).arg("-k"));
    out.assert_fail();
    assert!(!out.stderr.trim().is_empty(), "no message: {out}");
}

#[test]
fn command_mode_runs_the_command_with_the_agent_and_exits_with_it() {
    let imp = AgentImpl::selected();
    let dir = tempdir();
    let sock = dir.path().join("sock");
    let out = run_agent(
        imp,
        &[
            "-a".as_ref(),
            sock.as_os_str(),
            "sh".as_ref(),
            "-c".as_ref(),
            "ssh-add -l; echo \"sock=$SSH_AUTH_SOCK\"; exit 3".as_ref(),
        ],
    );
    assert_eq!(out.status.code(), Some(3), "exit status of COMMAND: {out}");
    assert!(out.stdout.contains("The agent has no identities."), "{out}");
    assert!(
        out.stdout.contains(&format!("sock={}", sock.display())),
        "COMMAND did not get SSH_AUTH_SOCK: {out}"
    );
    assert!(
        socket_goes_away(&sock),
        "agent still answers after COMMAND exited"
    );
}

#[test]
fn debug_mode_logs_to_stderr_without_secrets() {
    let dir = tempdir();
    let key = gen_key(dir.path(), KeyKind::Ed25519, "id");
    let agent = AgentBuilder::new(dir.path()).debug().start();
    agent.add(&key.private);
    let askpass = dir.path().join("askpass");
    let passphrase = "very-secret-lock-passphrase-7f3a";
    write_script(&askpass, &format!("echo {passphrase}"));
    for flag in ["-x", "-X"] {
        agent.ssh_add_with_askpass(&askpass, &[flag]).assert_ok();
    }
    assert_eq!(agent.list().len(), 1);
    let log = agent.output();
    let log_part = log.split("--- agent log ---").nth(1).unwrap_or_default();
    assert!(
        log_part.lines().count() >= 3,
        "-d logged almost nothing:\n{log}"
    );
    assert!(
        !log.contains(passphrase),
        "lock passphrase in the debug log:\n{log}"
    );
}

#[test]
fn key_files_given_at_start_are_loaded_encrypted_ones_through_askpass() {
    let dir = tempdir();
    let plain = gen_key(dir.path(), KeyKind::Ecdsa384, "id_plain");
    let passphrase = "start-up passphrase";
    let encrypted = gen_key_with_passphrase(dir.path(), KeyKind::Ed25519, "id_enc", passphrase);
    let rsa = gen_key_with_passphrase(dir.path(), KeyKind::Rsa3072, "id_rsa_enc", passphrase);
    let askpass = dir.path().join("askpass");
    write_script(&askpass, &format!("echo '{passphrase}'"));

    let agent = AgentBuilder::with_impl(AgentImpl::SecretiveX, dir.path())
        .args(["--key".as_ref(), plain.private.as_os_str()])
        .args(["--key".as_ref(), encrypted.private.as_os_str()])
        .args(["--key".as_ref(), rsa.private.as_os_str()])
        .askpass(&askpass)
        .start();
    let listed = agent.list();
    assert_eq!(listed.len(), 3, "{listed:#?}\n{}", agent.output());
    for k in [&plain, &encrypted, &rsa] {
        assert!(
            listed.iter().any(|l| l.contains(&k.fingerprint())),
            "{listed:#?}"
        );
        agent
            .ssh_add(["-T".as_ref(), k.public.as_os_str()])
            .assert_ok();
    }
}

#[test]
fn encrypted_key_with_wrong_askpass_answer_is_not_loaded() {
    let dir = tempdir();
    let encrypted = gen_key_with_passphrase(dir.path(), KeyKind::Ed25519, "id_enc", "right one");
    let askpass = dir.path().join("askpass");
    write_script(&askpass, "echo 'wrong one'");
    let mut agent = AgentBuilder::with_impl(AgentImpl::SecretiveX, dir.path())
        .args(["--key".as_ref(), encrypted.private.as_os_str()])
        .askpass(&askpass)
        .spawn();
    // Either the agent refuses to start (a key the user asked for could not be loaded) or it
    // starts without that key; it must never list it.
    match agent.wait_exit_or_ready() {
        Some(code) => assert_ne!(code, 0, "agent exited 0\n{}", agent.output()),
        None => assert!(
            agent.list().is_empty(),
            "key loaded with a wrong passphrase"
        ),
    }
}
