//! Hardening that can be observed from outside the process: socket and directory modes,
//! refusal of unsafe directories, stale versus live sockets, no core dumps, not dumpable,
//! raised file-descriptor limit. These are properties of our agent, so they always run it.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::Path;

use common::cmd::{require_tool, running_as_root};
use common::{gen_key, run, tempdir, tool, wire, Agent, AgentBuilder, AgentImpl, KeyKind};

fn ours(dir: &Path) -> AgentBuilder {
    AgentBuilder::with_impl(AgentImpl::SecretiveX, dir)
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("stat {}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn socket_is_0600_in_a_directory_created_0700() {
    let dir = tempdir();
    // The agent creates the last component (as for `$XDG_RUNTIME_DIR/secretivex`).
    let run_dir = dir.path().join("secretivex");
    let sock = run_dir.join("agent.sock");
    let agent = ours(dir.path()).socket(&sock).start();
    let meta = std::fs::symlink_metadata(agent.sock()).expect("stat socket");
    assert!(meta.file_type().is_socket(), "not a socket");
    assert_eq!(mode(&sock), 0o600, "socket mode {:o}", mode(&sock));
    assert_eq!(mode(&run_dir), 0o700, "directory mode {:o}", mode(&run_dir));
}

#[test]
fn default_socket_is_under_xdg_runtime_dir() {
    let dir = tempdir();
    let runtime = dir.path().join("runtime");
    std::fs::create_dir(&runtime).expect("mkdir");
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let agent = ours(dir.path()).default_socket_under(&runtime).start();
    let expected = runtime.join("secretivex").join("agent.sock");
    assert_eq!(agent.sock(), expected);
    assert_eq!(mode(&expected), 0o600);
    assert_eq!(mode(&runtime.join("secretivex")), 0o700);
    assert!(
        agent
            .stdout()
            .contains(&format!("SSH_AUTH_SOCK={};", expected.display())),
        "export line: {}",
        agent.output()
    );
}

#[test]
fn group_or_world_writable_socket_directory_is_refused() {
    for bad_mode in [0o777, 0o770, 0o702] {
        let dir = tempdir();
        let run_dir = dir.path().join("shared");
        std::fs::create_dir(&run_dir).expect("mkdir");
        std::fs::set_permissions(&run_dir, std::fs::Permissions::from_mode(bad_mode))
            .expect("chmod");
        let mut agent = ours(dir.path()).socket(run_dir.join("sock")).spawn();
        let code = agent.wait_exit_or_ready();
        assert!(
            matches!(code, Some(c) if c != 0),
            "agent accepted a directory with mode {bad_mode:o}\n{}",
            agent.output()
        );
        assert!(
            !run_dir.join("sock").exists(),
            "socket created in an unsafe directory"
        );
        assert!(
            !agent
                .output()
                .split("--- agent log ---")
                .nth(1)
                .unwrap_or_default()
                .trim()
                .is_empty(),
            "refused without a message"
        );
    }
}

#[test]
fn socket_directory_owned_by_another_user_is_refused() {
    assert!(
        running_as_root(),
        "needs root to chown a directory to nobody"
    );
    let dir = tempdir();
    let run_dir = dir.path().join("theirs");
    std::fs::create_dir(&run_dir).expect("mkdir");
    std::fs::set_permissions(&run_dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let out = run(tool("id").args(["-u", "nobody"]));
    out.assert_ok();
    let nobody: u32 = out.stdout.trim().parse().expect("uid");
    std::os::unix::fs::chown(&run_dir, Some(nobody), None).expect("chown");
    let mut agent = ours(dir.path()).socket(run_dir.join("sock")).spawn();
    let code = agent.wait_exit_or_ready();
    assert!(
        matches!(code, Some(c) if c != 0),
        "agent accepted a directory owned by uid {nobody}\n{}",
        agent.output()
    );
    assert!(!run_dir.join("sock").exists());
}

#[test]
fn stale_socket_is_replaced() {
    let dir = tempdir();
    let sock = dir.path().join("sock");
    // A socket file nobody listens on any more, as a crashed agent leaves behind.
    drop(UnixListener::bind(&sock).expect("bind"));
    assert!(sock.exists());
    assert!(wire::list_count(&sock).is_err(), "stale socket answered");
    let agent = ours(dir.path()).socket(&sock).start();
    assert_eq!(wire::list_count(agent.sock()).expect("agent answers"), 0);
}

#[test]
fn live_agent_socket_is_not_replaced() {
    let dir = tempdir();
    let key = gen_key(dir.path(), KeyKind::Ed25519, "id");
    let first = Agent::start(dir.path());
    first.add(&key.private);

    let second_dir = dir.path().join("second-logs");
    std::fs::create_dir(&second_dir).expect("mkdir");
    let mut second = ours(&second_dir).socket(first.sock()).spawn();
    let code = second.wait_exit();
    assert!(
        matches!(code, Some(c) if c != 0),
        "second agent did not refuse a live socket (exit {code:?})\n{}",
        second.output()
    );
    let msg = second.output();
    assert!(
        msg.contains(&first.sock().display().to_string()) || msg.contains("in use"),
        "refusal should name the socket or say it is in use:\n{msg}"
    );
    // The first agent still owns the path.
    let listed = first.list();
    assert_eq!(listed.len(), 1, "{listed:#?}");
}

#[test]
fn regular_file_at_socket_path_is_not_replaced() {
    let dir = tempdir();
    let path = dir.path().join("sock");
    std::fs::write(&path, b"precious").expect("write");
    let mut agent = ours(dir.path()).socket(&path).spawn();
    let code = agent.wait_exit_or_ready();
    assert!(
        matches!(code, Some(c) if c != 0),
        "exit {code:?}\n{}",
        agent.output()
    );
    assert_eq!(std::fs::read(&path).expect("file kept"), b"precious");
}

/// A field of `/proc/PID/limits` as (soft, hard).
fn limit(pid: u32, name: &str) -> (String, String) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("read limits");
    let line = text
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} in {text}"));
    let mut fields = line[name.len()..].split_whitespace();
    (
        fields.next().unwrap_or_default().to_string(),
        fields.next().unwrap_or_default().to_string(),
    )
}

#[test]
fn core_dumps_off_and_fd_limit_raised() {
    require_tool("prlimit");
    let dir = tempdir();
    // Start with cores allowed and a low soft fd limit, so the agent's own changes show.
    let hard_nofile = {
        let out = run(tool("sh").args(["-c", "ulimit -Hn"]));
        out.assert_ok();
        out.stdout.trim().to_string()
    };
    let agent = ours(dir.path())
        .wrapper([
            "prlimit".to_string(),
            "--core=unlimited:unlimited".to_string(),
            format!("--nofile=256:{hard_nofile}"),
            "--".to_string(),
        ])
        .start();
    let (core_soft, _core_hard) = limit(agent.pid(), "Max core file size");
    assert_eq!(core_soft, "0", "RLIMIT_CORE soft limit not 0");
    let (nofile_soft, nofile_hard) = limit(agent.pid(), "Max open files");
    assert_eq!(nofile_hard, hard_nofile);
    assert_eq!(
        nofile_soft, nofile_hard,
        "soft RLIMIT_NOFILE not raised to the hard limit"
    );
}

/// The owner uid of `/proc/PID/environ`.
fn proc_owner(pid: u32) -> u32 {
    std::fs::metadata(format!("/proc/{pid}/environ"))
        .expect("stat /proc/PID/environ")
        .uid()
}

#[test]
fn agent_is_not_dumpable() {
    // PR_SET_DUMPABLE has no /proc/PID/status field. The documented observable (proc(5)): the
    // files of /proc/PID of a process whose dumpable attribute is not 1 are owned by root
    // instead of the process's uid. That only tells something for a non-root process, so the
    // agent runs as `nobody` here, with a control process (`sleep`) showing the other case.
    assert!(
        running_as_root(),
        "agent_is_not_dumpable must run as root (it drops to nobody)"
    );
    require_tool("setpriv");
    let dir = tempdir();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let home = dir.path().join("nobody");
    std::fs::create_dir(&home).expect("mkdir");
    let nobody_uid: u32 = {
        let out = run(tool("id").args(["-u", "nobody"]));
        out.assert_ok();
        out.stdout.trim().parse().expect("uid")
    };
    let nobody_gid: u32 = {
        let out = run(tool("id").args(["-g", "nobody"]));
        out.assert_ok();
        out.stdout.trim().parse().expect("gid")
    };
    std::os::unix::fs::chown(&home, Some(nobody_uid), Some(nobody_gid)).expect("chown");
    let drop_to_nobody = [
        "setpriv".to_string(),
        format!("--reuid={nobody_uid}"),
        format!("--regid={nobody_gid}"),
        "--clear-groups".to_string(),
        "--".to_string(),
    ];

    let agent = ours(dir.path())
        .socket(home.join("sock"))
        .wrapper(drop_to_nobody.clone())
        .start();
    let status = std::fs::read_to_string(format!("/proc/{}/status", agent.pid())).expect("status");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains(&nobody_uid.to_string())),
        "agent is not running as nobody:\n{status}"
    );

    let mut control = tool(&drop_to_nobody[0])
        .args(&drop_to_nobody[1..])
        .args(["sleep", "60"])
        .spawn()
        .expect("spawn control");
    let control_owner = common::poll(500, std::time::Duration::from_millis(10), || {
        let owner = proc_owner(control.id());
        (owner == nobody_uid).then_some(owner)
    });
    let _ = control.kill();
    let _ = control.wait();
    assert_eq!(
        control_owner,
        Some(nobody_uid),
        "control: a dumpable nobody process"
    );

    assert_eq!(
        proc_owner(agent.pid()),
        0,
        "/proc/PID of the agent is owned by its uid: it is dumpable"
    );
}
