//! Running external tools (OpenSSH's `ssh-add`, `ssh-keygen`, `ssh`, …) with captured output.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Safety net for a hung tool: far above any normal run, only there so a broken agent
/// makes the test fail instead of hanging the suite. Never an assertion about speed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// The captured result of one command.
#[derive(Debug)]
pub struct CmdOutput {
    pub what: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Panics with the whole output unless the command exited 0.
    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert!(self.success(), "expected success: {self}");
        self
    }

    /// Panics with the whole output if the command exited 0.
    #[track_caller]
    pub fn assert_fail(&self) -> &Self {
        assert!(!self.success(), "expected failure: {self}");
        self
    }

    /// stdout lines, trimmed, without empty ones.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect()
    }
}

impl std::fmt::Display for CmdOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` -> {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.what, self.status, self.stdout, self.stderr
        )
    }
}

/// Finds `name` (a bare tool name or an absolute path) or panics with a clear message.
///
/// Missing tools are always a failure, never a skip: the interop suite is only meaningful with
/// the real OpenSSH binaries, and `scripts/install-test-deps` installs them.
#[track_caller]
pub fn require_tool(name: &str) -> PathBuf {
    let candidate = Path::new(name);
    if candidate.is_absolute() {
        assert!(
            candidate.exists(),
            "required tool {name} is missing; run scripts/install-test-deps (CI={})",
            std::env::var("CI").unwrap_or_default()
        );
        return candidate.to_path_buf();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let full = dir.join(name);
        if full.is_file() {
            return full;
        }
    }
    panic!(
        "required tool {name} not found on PATH; run scripts/install-test-deps (CI={})",
        std::env::var("CI").unwrap_or_default()
    );
}

/// A `Command` for a required tool with a clean environment for agent tests: no inherited
/// agent, no askpass, stdin closed so nothing can wait on a terminal.
pub fn tool(name: &str) -> Command {
    let mut cmd = Command::new(require_tool(name));
    for var in [
        "SSH_AUTH_SOCK",
        "SSH_AGENT_PID",
        "SSH_ASKPASS",
        "SSH_ASKPASS_REQUIRE",
        "DISPLAY",
        "WAYLAND_DISPLAY",
    ] {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to completion, capturing stdout and stderr.
#[track_caller]
pub fn run(cmd: &mut Command) -> CmdOutput {
    let what = describe(cmd);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{what}`: {e}"));
    let out_reader = child.stdout.take().map(drain);
    let err_reader = child.stderr.take().map(drain);
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`{what}` still running after {COMMAND_TIMEOUT:?}; killed");
            }
            Err(e) => panic!("waiting for `{what}`: {e}"),
        }
    };
    CmdOutput {
        what,
        status,
        stdout: out_reader.map(Drained::finish).unwrap_or_default(),
        stderr: err_reader.map(Drained::finish).unwrap_or_default(),
    }
}

/// Output collected by a reader thread. Kept behind a mutex rather than returned from the
/// thread because a daemonizing child may leave the pipe open in its grandchild: then the
/// reader never sees EOF and we take what arrived instead of waiting forever.
struct Drained {
    buf: Arc<Mutex<Vec<u8>>>,
    handle: thread::JoinHandle<()>,
}

impl Drained {
    fn finish(self) -> String {
        let _ = poll(500, Duration::from_millis(10), || {
            self.handle.is_finished().then_some(())
        });
        let bytes = self.buf.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

fn drain<R: Read + Send + 'static>(mut r: R) -> Drained {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&buf);
    let handle = thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            if let (Ok(mut b), Some(bytes)) = (sink.lock(), chunk.get(..n)) {
                b.extend_from_slice(bytes);
            }
        }
    });
    Drained { buf, handle }
}

/// A readable rendering of a command line for failure messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// The current user's name (`id -un`), used as the login name for sshd and certificates.
pub fn current_user() -> String {
    let out = run(tool("id").arg("-un"));
    out.assert_ok();
    out.stdout.trim().to_string()
}

/// Whether the tests run as root (needed for the other-uid peer test and `setpriv`).
pub fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Writes an executable shell script.
///
/// The file is written by a child process (`install`), never through a descriptor of the
/// test process: a test thread that forks while we hold the file open for writing would
/// carry that descriptor into its child until the child's exec, and exec of the script
/// would then fail with `ETXTBSY` ("Text file busy").
pub fn write_script(path: &Path, body: &str) {
    let source = path.with_extension("src");
    std::fs::write(&source, format!("#!/bin/sh\n{body}\n")).expect("write script source");
    let status = std::process::Command::new("install")
        .arg("-m")
        .arg("0755")
        .arg(&source)
        .arg(path)
        .status()
        .expect("run install");
    assert!(status.success(), "install {} failed", path.display());
}

/// Polls `check` until it returns `Some`, at most `attempts` times `interval` apart.
///
/// Used to wait for asynchronous effects (a socket appearing, a key expiring). The bound only
/// stops a broken run from hanging; what the tests assert is the observed state.
pub fn poll<T>(
    attempts: u32,
    interval: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    for i in 0..attempts {
        if let Some(v) = check() {
            return Some(v);
        }
        if i + 1 < attempts {
            thread::sleep(interval);
        }
    }
    None
}
