//! Starting an agent under test in the foreground, waiting for it, and killing it on drop.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::cmd::{poll, require_tool, run, tool, CmdOutput};
use super::wire;

/// Which agent the interop tests talk to.
///
/// `SECRETIVEX_TEST_AGENT=openssh` runs the same tests against OpenSSH's `ssh-agent`: that
/// checks the tests themselves (where both agents must behave alike). The default is ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentImpl {
    SecretiveX,
    OpenSsh,
}

impl AgentImpl {
    /// The implementation selected by `SECRETIVEX_TEST_AGENT`.
    pub fn selected() -> Self {
        match std::env::var("SECRETIVEX_TEST_AGENT").as_deref() {
            Ok("openssh") => AgentImpl::OpenSsh,
            Ok("secretivex") | Ok("") | Err(_) => AgentImpl::SecretiveX,
            Ok(other) => panic!("SECRETIVEX_TEST_AGENT={other}: expected secretivex or openssh"),
        }
    }

    /// The agent executable.
    pub fn program(self) -> PathBuf {
        match self {
            AgentImpl::SecretiveX => PathBuf::from(env!("CARGO_BIN_EXE_secretivex-agent")),
            AgentImpl::OpenSsh => require_tool("ssh-agent"),
        }
    }
}

/// How many times, 20 ms apart, to probe a starting agent's socket (a bound of ~20 s that only
/// matters when the agent is broken; the machine is shared, so it is generous).
const READY_ATTEMPTS: u32 = 1000;

/// Configures and starts an agent with `-D -a SOCKET`.
pub struct AgentBuilder {
    imp: AgentImpl,
    sock: PathBuf,
    log_dir: PathBuf,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    wrapper: Vec<OsString>,
    debug: bool,
    /// Leave out `-a` so the agent picks its default socket (expected at `sock`).
    default_socket: bool,
}

/// The environment that makes OpenSSH tools ask `script` for passphrases and
/// confirmations: `SSH_ASKPASS=script`, `SSH_ASKPASS_REQUIRE=force` and a dummy `DISPLAY`.
fn askpass_env(script: &Path) -> [(&'static str, &OsStr); 3] {
    [
        ("SSH_ASKPASS", script.as_os_str()),
        ("SSH_ASKPASS_REQUIRE", OsStr::new("force")),
        ("DISPLAY", OsStr::new(":0")),
    ]
}

impl AgentBuilder {
    /// An agent of the selected implementation with its socket at `dir/sock`.
    pub fn new(dir: &Path) -> Self {
        Self::with_impl(AgentImpl::selected(), dir)
    }

    /// An agent of a given implementation (for tests of our own command line).
    pub fn with_impl(imp: AgentImpl, dir: &Path) -> Self {
        AgentBuilder {
            imp,
            sock: dir.join("sock"),
            log_dir: dir.to_path_buf(),
            args: Vec::new(),
            envs: Vec::new(),
            wrapper: Vec::new(),
            debug: false,
            default_socket: false,
        }
    }

    /// Overrides the socket path.
    pub fn socket(mut self, sock: impl Into<PathBuf>) -> Self {
        self.sock = sock.into();
        self
    }

    /// Adds command-line arguments (before `-D -a`).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Sets an environment variable for the agent (e.g. `SSH_ASKPASS` for confirmations).
    pub fn env(mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_os_string(), val.as_ref().to_os_string()));
        self
    }

    /// Sets up askpass for the agent: `SSH_ASKPASS=script`, `SSH_ASKPASS_REQUIRE=force` and a
    /// dummy `DISPLAY` (OpenSSH only uses askpass when a display is set or it is forced).
    pub fn askpass(self, script: &Path) -> Self {
        askpass_env(script)
            .into_iter()
            .fold(self, |builder, (key, val)| builder.env(key, val))
    }

    /// Runs the agent through an exec-ing wrapper such as `prlimit --core=… --` or `setpriv …`
    /// (the agent keeps the wrapper's pid because the wrapper execs it).
    pub fn wrapper<I, S>(mut self, argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.wrapper = argv
            .into_iter()
            .map(|a| a.as_ref().to_os_string())
            .collect();
        self
    }

    /// Starts without `-a`, with `XDG_RUNTIME_DIR=runtime_dir`: the agent must then listen on
    /// its documented default, `$XDG_RUNTIME_DIR/secretivex/agent.sock`.
    pub fn default_socket_under(mut self, runtime_dir: &Path) -> Self {
        self.default_socket = true;
        self.sock = runtime_dir.join("secretivex").join("agent.sock");
        self.env("XDG_RUNTIME_DIR", runtime_dir)
    }

    /// Uses `-d` (debug log) instead of `-D`.
    pub fn debug(mut self) -> Self {
        self.debug = true;
        self
    }

    /// The command that would be run (without spawning it).
    pub fn command(&self) -> Command {
        let program = self.imp.program();
        let mut cmd = match self.wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = tool(&first.to_string_lossy());
                c.args(rest).arg(&program);
                c
            }
            None => tool(&program.to_string_lossy()),
        };
        cmd.args(&self.args)
            .arg(if self.debug { "-d" } else { "-D" });
        if !self.default_socket {
            cmd.arg("-a").arg(&self.sock);
        }
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts the agent and waits until its socket answers a request-identities round trip.
    #[track_caller]
    pub fn start(self) -> Agent {
        let agent = self.spawn();
        agent.wait_ready();
        agent
    }

    /// Starts the agent without waiting (for tests that expect it to refuse to start).
    #[track_caller]
    pub fn spawn(self) -> Agent {
        let mut cmd = self.command();
        let stamp = self
            .sock
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let out_path = self.log_dir.join(format!("agent-{stamp}.stdout"));
        let log_path = self.log_dir.join(format!("agent-{stamp}.log"));
        let out = File::create(&out_path).expect("create agent stdout file");
        let log = File::create(&log_path).expect("create agent log file");
        cmd.stdout(Stdio::from(out)).stderr(Stdio::from(log));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", self.imp.program()));
        Agent {
            imp: self.imp,
            child,
            sock: self.sock,
            out_path,
            log_path,
        }
    }
}

/// A running agent; killed and reaped on drop.
pub struct Agent {
    pub imp: AgentImpl,
    child: Child,
    sock: PathBuf,
    out_path: PathBuf,
    log_path: PathBuf,
}

impl Agent {
    /// Starts the selected agent with default options in `dir`.
    #[track_caller]
    pub fn start(dir: &Path) -> Agent {
        AgentBuilder::new(dir).start()
    }

    pub fn sock(&self) -> &Path {
        &self.sock
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the agent wrote to stdout (the export lines) and stderr (its log).
    pub fn output(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!(
            "--- agent stdout ---\n{}--- agent log ---\n{}",
            read(&self.out_path),
            read(&self.log_path)
        )
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out_path).unwrap_or_default()
    }

    /// Whether the process is still running (not exited, not a zombie).
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits (bounded) for the process to exit by itself and returns its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        poll(READY_ATTEMPTS, Duration::from_millis(20), || {
            self.child.try_wait().ok().flatten()
        })
        .map(|s| s.code().unwrap_or(-1))
    }

    /// Waits (bounded) until the agent either answers on its socket (`None`) or exits
    /// (`Some(exit code)`); panics if neither happens.
    #[track_caller]
    pub fn wait_exit_or_ready(&mut self) -> Option<i32> {
        let outcome = poll(READY_ATTEMPTS, Duration::from_millis(20), || {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(Some(status.code().unwrap_or(-1)));
            }
            wire::list_count(&self.sock).is_ok().then_some(None)
        });
        match outcome {
            Some(o) => o,
            None => panic!("agent neither answered nor exited\n{}", self.output()),
        }
    }

    #[track_caller]
    fn wait_ready(&self) {
        // `try_wait` needs `&mut`; re-check liveness through /proc instead so `start` can stay
        // a by-value builder method.
        let pid = self.pid();
        let ready = poll(READY_ATTEMPTS, Duration::from_millis(20), || {
            if wire::list_count(&self.sock).is_ok() {
                return Some(true);
            }
            if !pid_running(pid) {
                return Some(false);
            }
            None
        });
        match ready {
            Some(true) => {}
            Some(false) => panic!(
                "agent exited before its socket {} answered\n{}",
                self.sock.display(),
                self.output()
            ),
            None => panic!(
                "agent socket {} never answered\n{}",
                self.sock.display(),
                self.output()
            ),
        }
    }

    /// A command for `program` with `SSH_AUTH_SOCK` pointing at this agent.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = tool(program);
        c.env("SSH_AUTH_SOCK", &self.sock);
        c
    }

    /// Runs `ssh-add ARGS` against this agent, with any passphrase read from the askpass
    /// `script`, as a user with a graphical askpass would (`SSH_ASKPASS_REQUIRE=force` makes
    /// ssh-add use it without a terminal).
    pub fn ssh_add_with_askpass(&self, script: &Path, args: &[&str]) -> CmdOutput {
        let mut cmd = self.cmd("ssh-add");
        for (key, val) in askpass_env(script) {
            cmd.env(key, val);
        }
        run(cmd.args(args))
    }

    /// Runs `ssh-add ARGS` against this agent.
    pub fn ssh_add<I, S>(&self, args: I) -> CmdOutput
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run(self.cmd("ssh-add").args(args))
    }

    /// `ssh-add -l` output lines (empty when the agent has no identities).
    #[track_caller]
    pub fn list(&self) -> Vec<String> {
        let out = self.ssh_add(["-l"]);
        if out.stdout.contains("has no identities") {
            return Vec::new();
        }
        out.assert_ok();
        out.lines().into_iter().map(str::to_string).collect()
    }

    /// `ssh-add -L` output lines.
    #[track_caller]
    pub fn list_public(&self) -> Vec<String> {
        let out = self.ssh_add(["-L"]);
        if out.stdout.contains("has no identities") {
            return Vec::new();
        }
        out.assert_ok();
        out.lines().into_iter().map(str::to_string).collect()
    }

    /// `ssh-add FILE`, asserting success.
    #[track_caller]
    pub fn add(&self, key: &Path) {
        let out = self.ssh_add([key]);
        assert!(
            out.success(),
            "ssh-add {} failed: {out}\n{}",
            key.display(),
            self.output()
        );
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `pid` names a live (non-zombie) process.
pub fn pid_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Runs a foreground agent command to completion (for `COMMAND` mode and refusals).
pub fn run_agent(imp: AgentImpl, args: &[&OsStr]) -> CmdOutput {
    run(tool(&imp.program().to_string_lossy()).args(args))
}
