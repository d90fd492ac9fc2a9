//! Harness for the `secretivex` client's tests: real agents (OpenSSH's `ssh-agent`, and ours
//! from the same target directory), keys made by `ssh-keygen`, captured command output.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::Duration;

/// Finds a tool on PATH or panics: missing tools fail the suite, never skip it
/// (`scripts/install-test-deps` installs them).
#[track_caller]
pub fn require_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("required tool {name} not found; run scripts/install-test-deps"))
}

/// A command with no agent variables inherited and stdin closed.
pub fn tool(name: &str) -> Command {
    let mut c = Command::new(require_tool(name));
    for v in ["SSH_AUTH_SOCK", "SSH_AGENT_PID", "SSH_ASKPASS", "DISPLAY"] {
        c.env_remove(v);
    }
    c.stdin(Stdio::null());
    c
}

/// Captured result of a command.
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub what: String,
}

impl Out {
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, Some(0), "{self}");
        self
    }

    #[track_caller]
    pub fn code_is(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "{self}");
        self
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` -> {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.what, self.code, self.stdout, self.stderr
        )
    }
}

pub fn run(cmd: &mut Command) -> Out {
    let mut what = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        what.push(' ');
        what.push_str(&a.to_string_lossy());
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{what}`: {e}"));
    Out {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        what,
    }
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sxcli-")
        .tempdir()
        .expect("temp dir")
}

/// A key made by ssh-keygen: `dir/name` and `dir/name.pub`.
pub struct Key {
    pub private: PathBuf,
    pub public: PathBuf,
    pub cert: Option<PathBuf>,
}

impl Key {
    pub fn public_line(&self) -> String {
        std::fs::read_to_string(&self.public)
            .expect("read .pub")
            .trim()
            .to_string()
    }

    /// `ssh-keygen -lf KEY.pub`'s fingerprint.
    pub fn fingerprint(&self) -> String {
        let out = run(tool("ssh-keygen").arg("-lf").arg(&self.public));
        out.ok();
        out.stdout
            .split_whitespace()
            .nth(1)
            .expect("fingerprint")
            .to_string()
    }
}

/// `ssh-keygen -t TYPE -b BITS`.
#[track_caller]
pub fn keygen(dir: &Path, name: &str, key_type: &str, bits: &str) -> Key {
    let private = dir.join(name);
    run(tool("ssh-keygen")
        .args(["-q", "-t", key_type, "-b", bits, "-N", "", "-C"])
        .arg(format!("{name}@cli-test"))
        .arg("-f")
        .arg(&private))
    .ok();
    let mut public = private.clone().into_os_string();
    public.push(".pub");
    Key {
        private,
        public: public.into(),
        cert: None,
    }
}

/// An Ed25519 key with a user certificate from a fresh CA.
#[track_caller]
pub fn certified_key(dir: &Path, name: &str) -> Key {
    let ca = keygen(dir, &format!("{name}_ca"), "ed25519", "256");
    let mut key = keygen(dir, name, "ed25519", "256");
    run(tool("ssh-keygen")
        .args(["-q", "-s"])
        .arg(&ca.private)
        .args(["-I", "cli-test", "-n", "someone"])
        .arg(&key.public))
    .ok();
    let mut cert = key.private.clone().into_os_string();
    cert.push("-cert.pub");
    key.cert = Some(cert.into());
    key
}

/// Which agent program to run.
pub enum AgentProgram {
    OpenSsh,
    SecretiveX,
}

/// A foreground agent (`-D -a SOCK`), killed on drop.
pub struct Agent {
    child: Child,
    pub sock: PathBuf,
}

impl Agent {
    #[track_caller]
    pub fn start(program: AgentProgram, dir: &Path) -> Agent {
        Self::start_with_env(program, dir, &[])
    }

    /// Starts an agent with extra environment variables (e.g. `SSH_ASKPASS` for `-c` keys).
    #[track_caller]
    pub fn start_with_env(program: AgentProgram, dir: &Path, envs: &[(&str, &OsStr)]) -> Agent {
        let sock = dir.join("agent.sock");
        let exe = match program {
            AgentProgram::OpenSsh => require_tool("ssh-agent"),
            AgentProgram::SecretiveX => our_agent(),
        };
        let child = Command::new(exe)
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .args(["-D", "-a"])
            .arg(&sock)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start agent");
        let agent = Agent { child, sock };
        assert!(
            wait_for_socket(&agent.sock),
            "agent socket {} never appeared",
            agent.sock.display()
        );
        agent
    }

    /// `ssh-add ARGS` against this agent.
    pub fn ssh_add<S: AsRef<OsStr>>(&self, args: &[S]) -> Out {
        run(tool("ssh-add").env("SSH_AUTH_SOCK", &self.sock).args(args))
    }

    #[track_caller]
    pub fn add(&self, key: &Key) {
        self.ssh_add(&[&key.private]).ok();
    }

    /// `secretivex --socket SOCK ARGS`.
    pub fn cli<S: AsRef<OsStr>>(&self, args: &[S]) -> Out {
        run(Command::new(cli_bin())
            .env_remove("SSH_AUTH_SOCK")
            .arg("--socket")
            .arg(&self.sock)
            .args(args))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls (bounded, ~20 s) until something accepts connections on `sock`.
pub fn wait_for_socket(sock: &Path) -> bool {
    for _ in 0..1000 {
        if std::os::unix::net::UnixStream::connect(sock).is_ok() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The client under test.
pub fn cli_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_secretivex"))
}

/// Our agent, built into the same target directory (`cargo test --workspace` builds it).
/// Cargo only exposes binaries of the package under test, so it is found next to the test
/// executable: `target/<profile>/deps/<test>` → `target/<profile>/secretivex-agent`.
#[track_caller]
pub fn our_agent() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("secretivex-agent"))
        .expect("target dir");
    assert!(
        path.is_file(),
        "{} is not built; run `cargo build -p secretivex-agent` (or `cargo test --workspace`)",
        path.display()
    );
    path
}
