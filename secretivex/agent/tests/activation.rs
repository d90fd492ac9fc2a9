//! systemd integration with the real tools: `systemd-socket-activate` binds the socket and
//! starts the agent on the first connection with it as descriptor 3 (`LISTEN_FDS`), exactly
//! as the user manager does with `secretivex-agent.socket`; a datagram socket stands in for
//! the manager's `NOTIFY_SOCKET` and receives the readiness and reload notifications.
//!
//! Needs `systemd-socket-activate` (Debian package `systemd`, installed by
//! `scripts/install-test-deps`) and OpenSSH's `ssh-add`, `ssh-keygen`.

mod common;

use std::fs::File;
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::agent::pid_running;
use common::cmd::write_script;
use common::{gen_key, poll, run, tempdir, tool, AgentBuilder, AgentImpl, KeyKind};

/// Bound on waiting for one notification; only a broken agent ever reaches it.
const NOTIFY_WAIT: Duration = Duration::from_secs(60);

/// The service manager's end of `NOTIFY_SOCKET`.
struct NotifyListener {
    socket: UnixDatagram,
    path: PathBuf,
    seen: Vec<String>,
}

impl NotifyListener {
    fn bind(path: PathBuf) -> Self {
        let socket = UnixDatagram::bind(&path).expect("bind notify socket");
        socket
            .set_read_timeout(Some(NOTIFY_WAIT))
            .expect("read timeout");
        NotifyListener {
            socket,
            path,
            seen: Vec::new(),
        }
    }

    /// Receives datagrams until one satisfies `want`; panics (with everything received) if
    /// none arrives within the bound.
    #[track_caller]
    fn wait_for(&mut self, what: &str, want: impl Fn(&str) -> bool, agent: &Activated) -> String {
        let mut buf = [0u8; 4096];
        loop {
            match self.socket.recv(&mut buf) {
                Ok(n) => {
                    let msg =
                        String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into_owned();
                    self.seen.push(msg.clone());
                    if want(&msg) {
                        return msg;
                    }
                }
                Err(e) => panic!(
                    "no {what} notification ({e}); received {:?}\n{}",
                    self.seen,
                    agent.output()
                ),
            }
        }
    }
}

/// An agent started by `systemd-socket-activate`; killed on drop.
struct Activated {
    child: Child,
    sock: PathBuf,
    out: PathBuf,
    err: PathBuf,
}

impl Activated {
    /// `systemd-socket-activate [--datagram] -l SOCK -E VAR=VALUE… ARGV`, where ARGV is the
    /// `ExecStart=` line of the shipped service unit with its placeholders filled in, and
    /// `XDG_RUNTIME_DIR` is the socket's runtime directory, as `%t` is for the user manager.
    /// The tool passes only the variables given with `-E`.
    fn start(dir: &Path, datagram: bool, env: &[(&str, &Path)]) -> Self {
        let run_dir = dir.join("run");
        let sock = run_dir.join("secretivex").join("agent.sock");
        std::fs::create_dir_all(sock.parent().expect("socket dir")).expect("runtime dir");
        for d in [&run_dir, &run_dir.join("secretivex")] {
            std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .expect("chmod runtime dir");
        }
        let config = dir.join("agent.toml");
        std::fs::write(&config, "# empty: built-in defaults\n").expect("write config");
        let out = dir.join("activate.out");
        let err = dir.join("activate.log");
        let mut cmd = tool("systemd-socket-activate");
        if datagram {
            cmd.arg("--datagram");
        }
        cmd.arg("-l").arg(&sock);
        cmd.arg("-E").arg(format!("HOME={}", dir.display()));
        cmd.arg("-E")
            .arg(format!("XDG_CONFIG_HOME={}", dir.join("config").display()));
        cmd.arg("-E")
            .arg(format!("XDG_RUNTIME_DIR={}", run_dir.display()));
        cmd.arg("-E").arg("RUST_LOG=secretivex_agent=info");
        for (k, v) in env {
            cmd.arg("-E").arg(format!("{k}={}", v.display()));
        }
        cmd.args(unit_exec_start(&config))
            .stdout(Stdio::from(File::create(&out).expect("stdout file")))
            .stderr(Stdio::from(File::create(&err).expect("log file")));
        let child = cmd.spawn().expect("start systemd-socket-activate");
        let activated = Activated {
            child,
            sock,
            out,
            err,
        };
        // The tool binds the socket before it waits for the first connection.
        let bound = poll(1000, Duration::from_millis(20), || {
            activated.sock.exists().then_some(())
        });
        assert!(
            bound.is_some(),
            "systemd-socket-activate never bound {}\n{}",
            activated.sock.display(),
            activated.output()
        );
        activated
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn output(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!(
            "--- stdout ---\n{}--- log ---\n{}",
            read(&self.out),
            read(&self.err)
        )
    }

    fn ssh_add(&self, args: &[&dyn AsRef<std::ffi::OsStr>]) -> common::CmdOutput {
        let mut c = tool("ssh-add");
        c.env("SSH_AUTH_SOCK", &self.sock);
        for a in args {
            c.arg(a);
        }
        run(&mut c)
    }

    fn signal(&self, name: &str) {
        run(tool("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string()))
        .assert_ok();
    }

    /// Waits (bounded) for the process to exit; its exit code.
    fn wait_exit(&mut self) -> Option<i32> {
        poll(1000, Duration::from_millis(20), || {
            self.child.try_wait().ok().flatten()
        })
        .map(|s| s.code().unwrap_or(-1))
    }
}

impl Drop for Activated {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `ExecStart=` command of `dist/systemd/secretivex-agent.service`, for this build's
/// agent and `config` (the placeholders `secretivex service install` fills in).
fn unit_exec_start(config: &Path) -> Vec<String> {
    let unit = include_str!("../dist/systemd/secretivex-agent.service");
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("the service unit has an ExecStart= line");
    let agent = AgentImpl::SecretiveX.program();
    line.split_whitespace()
        .map(|word| match word {
            "@AGENT@" => agent.display().to_string(),
            "@CONFIG@" => config.display().to_string(),
            other => other.to_string(),
        })
        .collect()
}

fn inode(path: &Path) -> u64 {
    std::fs::metadata(path).expect("stat socket").ino()
}

#[test]
fn socket_activated_agent_serves_the_passed_socket_and_notifies_readiness_and_reloads() {
    let dir = tempdir();
    let key = gen_key(dir.path(), KeyKind::Ed25519, "id_ed25519");
    // The confirmation prompt records the environment the agent gives its children.
    let prompt_env = dir.path().join("prompt.env");
    let askpass = dir.path().join("askpass");
    write_script(
        &askpass,
        &format!("env > '{}'\nexit 0", prompt_env.display()),
    );
    let mut notify = NotifyListener::bind(dir.path().join("notify"));
    let notify_path = notify.path.clone();
    let agent = Activated::start(
        dir.path(),
        false,
        &[("NOTIFY_SOCKET", &notify_path), ("SSH_ASKPASS", &askpass)],
    );
    let passed_socket = inode(&agent.sock);

    // The first connection makes the tool exec the agent, which must accept it on the
    // inherited socket.
    let listed = agent.ssh_add(&[&"-l"]);
    assert_eq!(
        listed.status.code(),
        Some(1),
        "{listed}\n{}",
        agent.output()
    );
    assert!(listed.stdout.contains("has no identities"), "{listed}");
    notify.wait_for("READY=1", |m| m.lines().any(|l| l == "READY=1"), &agent);
    // Its export line names the socket clients reach it on.
    let shown = std::fs::read_to_string(&agent.out).unwrap_or_default();
    assert!(
        shown.contains(&format!("SSH_AUTH_SOCK={}", agent.sock.display())),
        "{}",
        agent.output()
    );

    let added = agent.ssh_add(&[&"-c", &key.private]);
    assert!(added.success(), "{added}\n{}", agent.output());
    let listed = agent.ssh_add(&[&"-l"]);
    listed.assert_ok();
    assert!(
        listed.stdout.contains("id_ed25519@secretivex-test"),
        "{listed}"
    );
    let tested = agent.ssh_add(&[&"-T", &key.public]);
    assert!(tested.success(), "{tested}\n{}", agent.output());

    // The agent served on the socket it was given: it neither rebound nor replaced it.
    assert_eq!(inode(&agent.sock), passed_socket);

    // The prompt ran, and the activation variables were not passed on to it.
    let env = std::fs::read_to_string(&prompt_env).expect("the confirmation prompt ran");
    assert!(env.contains("SSH_ASKPASS_PROMPT=confirm"), "{env}");
    for var in ["LISTEN_PID=", "LISTEN_FDS=", "LISTEN_FDNAMES="] {
        assert!(
            !env.lines().any(|l| l.starts_with(var)),
            "{var} leaked to a child:\n{env}"
        );
    }

    // A reload is bracketed by RELOADING=1 (with the monotonic time) and READY=1.
    agent.signal("HUP");
    let reloading = notify.wait_for(
        "RELOADING=1",
        |m| m.lines().any(|l| l == "RELOADING=1"),
        &agent,
    );
    let usec = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {reloading:?}"));
    assert!(usec.parse::<u64>().is_ok_and(|n| n > 0), "{reloading:?}");
    notify.wait_for(
        "READY=1 after the reload",
        |m| m.lines().any(|l| l == "READY=1"),
        &agent,
    );
    agent.ssh_add(&[&"-l"]).assert_ok();

    // Stopping leaves the socket file alone: it belongs to the service manager.
    let mut agent = agent;
    agent.signal("TERM");
    let code = agent.wait_exit();
    assert!(code.is_some(), "agent did not stop\n{}", agent.output());
    assert!(!pid_running(agent.pid()));
    assert_eq!(
        inode(&agent.sock),
        passed_socket,
        "the agent removed or replaced the socket systemd passed it"
    );
}

#[test]
fn a_datagram_socket_is_refused_with_a_clear_error() {
    let dir = tempdir();
    let mut agent = Activated::start(dir.path(), true, &[]);
    // In datagram mode the tool starts the program on the first datagram.
    let client = UnixDatagram::unbound().expect("datagram socket");
    client
        .send_to(b"wake up", &agent.sock)
        .expect("send to the datagram socket");
    let code = agent.wait_exit();
    assert!(
        matches!(code, Some(c) if c != 0),
        "expected a refusal, got {code:?}\n{}",
        agent.output()
    );
    let log = agent.output();
    assert!(log.contains("descriptor 3"), "{log}");
    assert!(log.contains("stream socket"), "{log}");
    assert!(log.contains("datagram (SOCK_DGRAM)"), "{log}");
}

#[test]
fn activation_variables_meant_for_another_process_are_ignored() {
    let dir = tempdir();
    // LISTEN_PID names another process (as when inherited from a parent): the agent binds
    // its own socket and serves.
    let agent = AgentBuilder::with_impl(AgentImpl::SecretiveX, dir.path())
        .env("LISTEN_PID", "1")
        .env("LISTEN_FDS", "1")
        .start();
    assert_eq!(agent.list(), Vec::<String>::new());
    let key = gen_key(dir.path(), KeyKind::Ed25519, "id_other");
    agent.add(&key.private);
    assert_eq!(agent.list().len(), 1);
}
