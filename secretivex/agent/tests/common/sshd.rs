//! A throw-away OpenSSH server on a loopback high port, and `ssh` logins through an agent.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::agent::{pid_running, Agent};
use super::cmd::{current_user, poll, require_tool, run, tool, CmdOutput};
use super::keys::{gen_key, KeyFiles, KeyKind};

const SSHD: &str = "/usr/sbin/sshd";

/// What the server accepts.
#[derive(Default)]
pub struct SshdConfig<'a> {
    /// Public keys written to its `AuthorizedKeysFile`.
    pub authorized: Vec<&'a KeyFiles>,
    /// CA whose user certificates it trusts (`TrustedUserCAKeys`).
    pub trusted_ca: Option<&'a KeyFiles>,
}

/// A running `sshd -D -e`; killed on drop.
pub struct Sshd {
    child: Child,
    /// The name under which clients know this server (`HostKeyAlias`) and its directory name.
    pub name: String,
    pub port: u16,
    pub user: String,
    /// A known_hosts file naming this server both as `[127.0.0.1]:PORT` and as `name`.
    pub known_hosts: PathBuf,
    pub host_key: KeyFiles,
    log: PathBuf,
}

impl Sshd {
    /// Generates a host key and config under `dir/name`, starts sshd and waits for its banner.
    #[track_caller]
    pub fn start(dir: &Path, name: &str, config: &SshdConfig) -> Sshd {
        require_tool(SSHD);
        ensure_privsep_dir();
        let home = dir.join(name);
        std::fs::create_dir_all(&home).expect("sshd dir");
        let host_key = gen_key(&home, KeyKind::Ed25519, "ssh_host_ed25519_key");
        let user = current_user();

        let authorized = home.join("authorized_keys");
        let lines: String = config
            .authorized
            .iter()
            .map(|k| format!("{}\n", k.public_line()))
            .collect();
        std::fs::write(&authorized, lines).expect("authorized_keys");

        // The port is picked by binding port 0 first; another process could grab it before
        // sshd binds, so a start that fails is retried with a new port a few times.
        for _attempt in 0..5 {
            let port = free_port();
            let cfg = home.join("sshd_config");
            let mut text = String::new();
            let _ = writeln!(text, "ListenAddress 127.0.0.1:{port}");
            let _ = writeln!(text, "HostKey {}", host_key.private.display());
            let _ = writeln!(text, "PidFile {}", home.join("sshd.pid").display());
            let _ = writeln!(text, "AuthorizedKeysFile {}", authorized.display());
            if let Some(ca) = config.trusted_ca {
                let _ = writeln!(text, "TrustedUserCAKeys {}", ca.public.display());
            }
            text.push_str(
                "StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n\
                 PubkeyAuthentication yes\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nLogLevel VERBOSE\n",
            );
            std::fs::write(&cfg, text).expect("sshd_config");

            let log = home.join(format!("sshd-{port}.log"));
            let child = tool(SSHD)
                .args(["-D", "-e", "-f"])
                .arg(&cfg)
                .stdout(Stdio::null())
                .stderr(Stdio::from(File::create(&log).expect("sshd log")))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start sshd: {e}"));
            let pid = child.id();
            let up = poll(1000, Duration::from_millis(20), || {
                if banner_ok(port) {
                    return Some(true);
                }
                (!pid_running(pid)).then_some(false)
            });
            let known_hosts = home.join("known_hosts");
            let key = host_key.public_line();
            let mut fields = key.split_whitespace();
            let (kt, kb) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
            std::fs::write(
                &known_hosts,
                format!("[127.0.0.1]:{port} {kt} {kb}\n{name} {kt} {kb}\n"),
            )
            .expect("known_hosts");
            let server = Sshd {
                child,
                name: name.to_string(),
                port,
                user: user.clone(),
                known_hosts,
                host_key: host_key.clone(),
                log,
            };
            match up {
                Some(true) => return server,
                // Dropping kills and reaps the failed process before retrying.
                _ => eprintln!("sshd on port {port} did not come up:\n{}", server.log()),
            }
        }
        panic!("sshd would not start after 5 attempts (see logs above)");
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `ssh … USER@127.0.0.1 true` through `agent`, offering only `key` (and its certificate
    /// file, if it has one, as `CertificateFile`), verifying the host key strictly against this
    /// server's known_hosts.
    pub fn login(&self, agent: &Agent, key: &KeyFiles) -> CmdOutput {
        self.login_running(agent, key, &[], "true")
    }

    /// [`Sshd::login`] with extra `ssh` arguments (e.g. `-A`) running `remote_command`.
    pub fn login_running(
        &self,
        agent: &Agent,
        key: &KeyFiles,
        extra: &[&str],
        remote_command: &str,
    ) -> CmdOutput {
        let mut c = self.ssh(agent);
        c.args(["-o", "IdentitiesOnly=yes"])
            .arg("-o")
            .arg(format!("IdentityFile={}", key.public.display()));
        if let Some(cert) = &key.cert {
            c.arg("-o")
                .arg(format!("CertificateFile={}", cert.display()));
        }
        c.args(extra);
        self.finish_login(c, remote_command)
    }

    /// Like [`Sshd::login`] but offering whatever the agent lists, with no key or certificate
    /// files: the only credentials are the agent's (used to prove it serves certificates).
    pub fn login_with_agent_identities(&self, agent: &Agent) -> CmdOutput {
        let c = self.ssh(agent);
        self.finish_login(c, "true")
    }

    fn ssh(&self, agent: &Agent) -> Command {
        let mut c = tool("ssh");
        c.args(["-F", "/dev/null"])
            .arg("-o")
            .arg(format!("IdentityAgent={}", agent.sock().display()));
        c
    }

    fn finish_login(&self, mut c: Command, remote_command: &str) -> CmdOutput {
        c.args(["-o", "StrictHostKeyChecking=yes"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args(["-o", "GlobalKnownHostsFile=/dev/null"])
            .arg("-o")
            .arg(format!("HostKeyAlias={}", self.name))
            .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=30"])
            .args(["-p", &self.port.to_string()])
            .arg(format!("{}@127.0.0.1", self.user))
            .arg(remote_command);
        run(&mut c)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Whether something on `port` speaks SSH (sends an `SSH-2.0-` banner).
fn banner_ok(port: u16) -> bool {
    let Ok(s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).is_ok() && line.starts_with("SSH-2.0-")
}

/// sshd refuses to start without its privilege-separation directory.
fn ensure_privsep_dir() {
    let dir = Path::new("/run/sshd");
    if !dir.exists() {
        // Another test may create it at the same moment; only the end state matters.
        let _ = std::fs::create_dir_all(dir);
    }
    assert!(
        dir.is_dir(),
        "sshd needs {} (privilege separation directory) and it cannot be created",
        dir.display()
    );
}
