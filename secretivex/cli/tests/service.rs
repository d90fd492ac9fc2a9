//! `secretivex service install|uninstall` into a temporary `$XDG_CONFIG_HOME`, with the real
//! `systemd-analyze verify` judging the units and the real `systemctl` (which has no user
//! manager to talk to here, and must be reported clearly), plus a stand-in `systemctl` that
//! records its arguments for the order of the steps (the real one cannot enable anything
//! without a user manager).
//!
//! Needs `systemd-analyze` and `systemctl` (Debian package `systemd`, installed by
//! `scripts/install-test-deps`).

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{cli_bin, our_agent, require_tool, run, tempdir, Out};

/// A user's directories under one temporary directory.
struct Home {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Home {
    fn new() -> Self {
        let dir = tempdir();
        let root = dir.path().to_path_buf();
        for sub in ["home", "config", "runtime"] {
            std::fs::create_dir(root.join(sub)).expect("mkdir");
        }
        std::fs::set_permissions(root.join("runtime"), std::fs::Permissions::from_mode(0o700))
            .expect("chmod runtime dir");
        Home { _dir: dir, root }
    }

    fn config_home(&self) -> PathBuf {
        self.root.join("config")
    }

    fn runtime_dir(&self) -> PathBuf {
        self.root.join("runtime")
    }

    fn unit_dir(&self) -> PathBuf {
        self.config_home().join("systemd").join("user")
    }

    fn socket_unit(&self) -> PathBuf {
        self.unit_dir().join("secretivex-agent.socket")
    }

    fn service_unit(&self) -> PathBuf {
        self.unit_dir().join("secretivex-agent.service")
    }

    fn agent_config(&self) -> PathBuf {
        self.config_home().join("secretivex").join("agent.toml")
    }

    /// The environment of a user session without a user manager: no session bus, so the
    /// real `systemctl --user` cannot reach a developer's own manager either.
    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.env("HOME", self.root.join("home"))
            .env("XDG_CONFIG_HOME", self.config_home())
            .env("XDG_RUNTIME_DIR", self.runtime_dir())
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("SECRETIVEX_SYSTEMCTL");
        c
    }

    /// `secretivex service ARGS`, with `systemctl` as given (None: the real one).
    fn service(&self, systemctl: Option<&Path>, args: &[&str]) -> Out {
        let mut c = self.command(&cli_bin());
        c.arg("service").args(args);
        if let Some(s) = systemctl {
            c.env("SECRETIVEX_SYSTEMCTL", s);
        }
        run(&mut c)
    }

    /// A stand-in `systemctl` that appends its arguments to `systemctl.log` and exits `code`.
    fn recording_systemctl(&self, code: i32) -> PathBuf {
        let script = self.root.join("systemctl");
        let log = self.root.join("systemctl.log");
        let source = self.root.join("systemctl.src");
        std::fs::write(
            &source,
            format!(
                "#!/bin/sh\necho \"$*\" >> '{}'\n[ {code} -eq 0 ] || echo 'Failed to connect to bus: No medium found' >&2\nexit {code}\n",
                log.display()
            ),
        )
        .expect("write script source");
        // Through install(1): a test process holding the script open for writing while
        // another test forks would make the exec fail with ETXTBSY.
        let status = Command::new("install")
            .args(["-m", "0755"])
            .arg(&source)
            .arg(&script)
            .status()
            .expect("run install");
        assert!(status.success());
        script
    }

    fn systemctl_log(&self) -> Vec<String> {
        std::fs::read_to_string(self.root.join("systemctl.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// `systemd-analyze verify --user` on the installed units.
    fn verify(&self, units: &[PathBuf]) -> Out {
        let mut c = self.command(&require_tool("systemd-analyze"));
        // --user builds a user manager in-process: it needs $XDG_RUNTIME_DIR to exist (it
        // fails with "Failed to lookup RuntimeDirectory path" without it, as in a container
        // without a login session), not a running manager.
        c.args(["verify", "--user"]).args(units);
        run(&mut c)
    }
}

fn agent_stand_in() -> PathBuf {
    // Any executable file does for the unit: `systemd-analyze verify` checks ExecStart=
    // names one. The client binary is always built for these tests.
    cli_bin()
}

#[test]
fn installed_units_pass_systemd_analyze_verify() {
    let home = Home::new();
    let agent = agent_stand_in();
    let out = home.service(
        None,
        &[
            "install",
            "--no-enable",
            "--agent-path",
            agent.to_str().unwrap(),
        ],
    );
    out.ok();
    assert!(out.stdout.contains("SSH_AUTH_SOCK"), "{out}");
    let service = std::fs::read_to_string(home.service_unit()).expect("service unit");
    let socket = std::fs::read_to_string(home.socket_unit()).expect("socket unit");
    let exec = format!(
        "\nExecStart={} -D --config {}\n",
        agent.display(),
        home.agent_config().display()
    );
    assert!(service.contains(&exec), "{service}");
    assert!(service.contains("\nType=notify\n"), "{service}");
    assert!(
        socket.contains("\nListenStream=%t/secretivex/agent.sock\n"),
        "{socket}"
    );

    let verified = home.verify(&[home.socket_unit(), home.service_unit()]);
    verified.ok();
    // Unknown keys and unparsable values are only warnings: any output is a finding.
    assert_eq!(verified.stderr.trim(), "", "{verified}");

    // The check can fail: the same units with one misspelt key and a missing agent.
    let broken = home.root.join("broken");
    std::fs::create_dir(&broken).unwrap();
    let bad_socket = broken.join("secretivex-agent.socket");
    let bad_service = broken.join("secretivex-agent.service");
    std::fs::write(&bad_socket, socket.replace("SocketMode=", "SocketMod=")).unwrap();
    std::fs::write(
        &bad_service,
        service.replace(agent.to_str().unwrap(), "/nonexistent/secretivex-agent"),
    )
    .unwrap();
    let refused = home.verify(&[bad_socket, bad_service]);
    assert!(refused.stderr.contains("SocketMod"), "{refused}");
    assert!(
        refused.stderr.contains("/nonexistent/secretivex-agent"),
        "{refused}"
    );
    assert_ne!(refused.code, Some(0), "{refused}");
}

#[test]
fn install_creates_a_private_empty_config_and_keeps_an_existing_one() {
    let home = Home::new();
    let agent = agent_stand_in();
    let args = [
        "install",
        "--no-enable",
        "--agent-path",
        agent.to_str().unwrap(),
    ];
    home.service(None, &args).ok();
    let config = home.agent_config();
    let text = std::fs::read_to_string(&config).expect("config created");
    assert!(
        text.lines()
            .all(|l| l.trim().is_empty() || l.starts_with('#')),
        "comments only: {text}"
    );
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // The real agent accepts it (the unit passes it with --config).
    let checked = run(Command::new(our_agent())
        .arg("--check-config")
        .arg("--config")
        .arg(&config));
    checked.ok();

    std::fs::write(&config, "profile = \"fanout\"\n").unwrap();
    let again = home.service(None, &args);
    again.ok();
    assert!(!again.stdout.contains("created"), "{again}");
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "profile = \"fanout\"\n"
    );
}

#[test]
fn install_without_a_user_manager_writes_units_and_says_what_to_run() {
    let home = Home::new();
    let agent = agent_stand_in();
    // The real systemctl: no session bus here, so it cannot connect.
    require_tool("systemctl");
    let out = home.service(None, &["install", "--agent-path", agent.to_str().unwrap()]);
    out.code_is(1);
    assert!(out.stdout.contains("daemon-reload` failed"), "{out}");
    assert!(out.stdout.contains("not enabled"), "{out}");
    assert!(
        out.stdout
            .contains("systemctl --user enable --now secretivex-agent.socket"),
        "{out}"
    );
    assert!(home.socket_unit().is_file() && home.service_unit().is_file());

    // No systemctl at all.
    let missing = home.root.join("no-such-systemctl");
    let out = home.service(
        Some(&missing),
        &["install", "--agent-path", agent.to_str().unwrap()],
    );
    out.code_is(1);
    assert!(out.stdout.contains("not found"), "{out}");
    assert!(out.stdout.contains("not enabled"), "{out}");
}

#[test]
fn install_and_uninstall_run_systemctl_steps_in_order() {
    let home = Home::new();
    let agent = agent_stand_in();
    let systemctl = home.recording_systemctl(0);
    home.service(
        Some(&systemctl),
        &["install", "--agent-path", agent.to_str().unwrap()],
    )
    .ok();
    assert_eq!(
        home.systemctl_log(),
        [
            "--user daemon-reload",
            "--user enable --now secretivex-agent.socket"
        ]
    );

    let out = home.service(Some(&systemctl), &["uninstall"]);
    out.ok();
    assert_eq!(
        home.systemctl_log()[2..],
        [
            "--user disable --now secretivex-agent.socket secretivex-agent.service",
            "--user daemon-reload"
        ]
    );
    assert!(!home.socket_unit().exists() && !home.service_unit().exists());
    assert!(home.agent_config().is_file(), "the configuration is kept");

    let again = home.service(Some(&systemctl), &["uninstall"]);
    again.ok();
    assert!(again.stdout.contains("nothing to remove"), "{again}");
}

#[test]
fn failing_systemctl_on_uninstall_still_removes_the_files() {
    let home = Home::new();
    let agent = agent_stand_in();
    home.service(
        None,
        &[
            "install",
            "--no-enable",
            "--agent-path",
            agent.to_str().unwrap(),
        ],
    )
    .ok();
    let systemctl = home.recording_systemctl(1);
    let out = home.service(Some(&systemctl), &["uninstall"]);
    out.code_is(1);
    assert!(out.stdout.contains("no user manager"), "{out}");
    assert!(!home.socket_unit().exists() && !home.service_unit().exists());
}

#[test]
fn units_in_another_directory_are_written_but_not_enabled() {
    let home = Home::new();
    let agent = agent_stand_in();
    let systemctl = home.recording_systemctl(0);
    let elsewhere = home.root.join("pkg").join("user");
    let out = home.service(
        Some(&systemctl),
        &[
            "install",
            "--unit-dir",
            elsewhere.to_str().unwrap(),
            "--agent-path",
            agent.to_str().unwrap(),
        ],
    );
    out.ok();
    assert!(out.stdout.contains("not enabled"), "{out}");
    assert!(elsewhere.join("secretivex-agent.socket").is_file());
    assert!(
        home.systemctl_log().is_empty(),
        "{:?}",
        home.systemctl_log()
    );
}

#[test]
fn uninstall_leaves_units_it_did_not_write_unless_forced() {
    let home = Home::new();
    std::fs::create_dir_all(home.unit_dir()).unwrap();
    std::fs::write(home.service_unit(), "[Service]\nExecStart=/bin/true\n").unwrap();
    let out = home.service(None, &["uninstall", "--no-disable"]);
    out.code_is(2);
    assert!(out.stderr.contains("--force"), "{out}");
    assert!(home.service_unit().exists());
    home.service(None, &["uninstall", "--no-disable", "--force"])
        .ok();
    assert!(!home.service_unit().exists());
}

#[test]
fn install_refuses_an_agent_that_is_not_executable() {
    let home = Home::new();
    let not_exec = home.root.join("agent.txt");
    std::fs::write(&not_exec, "not a program").unwrap();
    let out = home.service(
        None,
        &[
            "install",
            "--no-enable",
            "--agent-path",
            not_exec.to_str().unwrap(),
        ],
    );
    out.code_is(2);
    assert!(out.stderr.contains("not an executable"), "{out}");
    assert!(!home.service_unit().exists());
}
