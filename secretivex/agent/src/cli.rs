//! Command line, modelled on `ssh-agent(1)`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use secretivex_config::{AgentSection, HumanDuration, ListenAddr, Profile, Signers};

/// SecretiveX SSH agent: a drop-in replacement for ssh-agent.
///
/// Without -D or -d the agent forks into the background and prints shell commands that
/// set SSH_AUTH_SOCK and SSH_AGENT_PID. With COMMAND, it runs COMMAND with those variables
/// set and exits when COMMAND's process is gone.
#[derive(Debug, Parser)]
#[command(name = "secretivex-agent", version)]
pub struct Args {
    /// Bind the agent to this Unix socket path (default:
    /// $XDG_RUNTIME_DIR/secretivex/agent.sock, or ${TMPDIR:-/tmp}/secretivex-UID/agent.sock).
    #[arg(short = 'a', value_name = "SOCKET")]
    pub socket: Option<PathBuf>,

    /// Stay in the foreground.
    #[arg(short = 'D', conflicts_with = "debug")]
    pub foreground: bool,

    /// Stay in the foreground and log debug messages to stderr.
    #[arg(short = 'd')]
    pub debug: bool,

    /// Print Bourne shell commands (default unless $SHELL looks like csh).
    #[arg(short = 's', conflicts_with = "csh")]
    pub sh: bool,

    /// Print C shell commands.
    #[arg(short = 'c')]
    pub csh: bool,

    /// Kill the agent named by $SSH_AGENT_PID and print commands that unset the variables.
    #[arg(short = 'k', conflicts_with_all = ["foreground", "debug", "command", "keys"])]
    pub kill: bool,

    /// Default lifetime of added keys: seconds, or a time like 1h30m.
    #[arg(short = 't', value_name = "LIFE", value_parser = parse_life)]
    pub lifetime: Option<Duration>,

    /// Load this private key at start-up (repeatable). Encrypted keys are unlocked with
    /// a passphrase read through $SSH_ASKPASS.
    #[arg(long = "key", value_name = "FILE")]
    pub keys: Vec<PathBuf>,

    /// Listen backlog of the socket (default: 4096, or the profile's).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub backlog: Option<u32>,

    /// Configuration file (default: $SECRETIVEX_CONFIG, else
    /// $XDG_CONFIG_HOME/secretivex/agent.toml when it exists).
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Profile of defaults: balanced, fanout, pssh or low-memory (overrides the file's).
    #[arg(long, value_name = "NAME", value_parser = parse_profile)]
    pub profile: Option<Profile>,

    /// Validate the configuration (and the key files it names) and exit: 0 when valid,
    /// else 1 with the problem as FILE:LINE:COLUMN: FIELD: message.
    #[arg(long, conflicts_with_all = ["print_config", "kill", "command"])]
    pub check_config: bool,

    /// Print the effective configuration (all layers merged) as TOML and exit.
    #[arg(long, conflicts_with_all = ["kill", "command"])]
    pub print_config: bool,

    /// Signatures made at once (default: one per core). `--signers` is an alias.
    #[arg(long = "max-signers", visible_alias = "signers", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub signers: Option<u32>,

    /// Longest wait of a sign request for a free signer, in milliseconds; past it the
    /// request is answered FAILURE (default: no limit).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub sign_timeout: Option<u64>,

    /// Client connections served at once; beyond it new connections are closed at once
    /// (default: no limit but the file descriptor limit).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,

    /// Close a connection that sends nothing for this many seconds (default: never).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout: Option<u64>,

    /// Serve Prometheus metrics on 127.0.0.1:PORT (or another loopback address) or on
    /// unix:PATH. Off by default.
    #[arg(long, value_name = "ADDR", value_parser = parse_metrics_listen)]
    pub metrics_listen: Option<String>,

    /// PKCS#11 module paths `ssh-add -s` may load: comma-separated patterns (`*`, `?`),
    /// matched after resolving links, as ssh-agent's -P (default: /usr/lib*/*,/usr/local/lib*/*).
    #[arg(short = 'P', long = "pkcs11-allow", value_name = "PATTERNS",
          value_parser = parse_pkcs11_allow)]
    pub pkcs11_allow: Option<String>,

    /// Accept `ssh-add -s` over forwarded connections (ssh-agent's -O allow-remote-pkcs11).
    #[arg(long)]
    pub pkcs11_allow_remote: bool,

    /// The PKCS#11 helper executable (default: secretivex-pkcs11-helper next to the agent).
    #[arg(long, value_name = "FILE")]
    pub pkcs11_helper: Option<PathBuf>,

    /// Sessions (signing threads) per PKCS#11 module (default: 4).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub pkcs11_sessions: Option<u32>,

    /// Token presence poll interval of PKCS#11 modules, in milliseconds (default: 1000).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub pkcs11_poll_ms: Option<u64>,

    /// Run this command with SSH_AUTH_SOCK and SSH_AGENT_PID set.
    #[arg(value_name = "COMMAND", trailing_var_arg = true,
          conflicts_with_all = ["foreground", "debug", "sh", "csh"])]
    pub command: Vec<OsString>,
}

/// Checks the PKCS#11 allow-list patterns (so a bad one is a usage error).
fn parse_pkcs11_allow(s: &str) -> Result<String, String> {
    secretivex_agent::pkcs11_store::parse_allow_list(s)?;
    Ok(s.to_string())
}

/// Checks the address (so a bad one is a usage error) and keeps the text, which the
/// configuration merges like any other layer.
fn parse_metrics_listen(s: &str) -> Result<String, String> {
    s.parse::<secretivex_agent::metrics_http::MetricsListen>()
        .map_err(|e| e.to_string())?;
    Ok(s.to_string())
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    s.parse()
}

fn parse_life(s: &str) -> Result<Duration, String> {
    secretivex_agent::lifetime::parse_lifetime(s).map_err(|e| e.to_string())
}

/// Which shell syntax to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    Sh,
    Csh,
}

impl Args {
    /// The requested shell syntax, else guessed from `$SHELL` as ssh-agent does.
    pub fn shell(&self) -> Shell {
        if self.csh {
            return Shell::Csh;
        }
        if self.sh {
            return Shell::Sh;
        }
        match std::env::var("SHELL") {
            Ok(s) if s.ends_with("csh") => Shell::Csh,
            _ => Shell::Sh,
        }
    }

    /// The `[agent]` fields given on the command line: the top layer of the configuration.
    pub fn agent_overrides(&self) -> AgentSection {
        AgentSection {
            socket: self.socket.clone(),
            backlog: self.backlog.and_then(std::num::NonZeroU32::new),
            max_signers: self.signers.and_then(|n| Signers::try_from(n).ok()),
            sign_timeout: self
                .sign_timeout
                .map(|ms| HumanDuration::new(Duration::from_millis(ms))),
            max_connections: self.max_connections.and_then(std::num::NonZeroU64::new),
            idle_timeout: self
                .idle_timeout
                .map(|s| HumanDuration::new(Duration::from_secs(s))),
            default_lifetime: self.lifetime.map(HumanDuration::new),
            metrics_listen: self
                .metrics_listen
                .clone()
                .and_then(|s| ListenAddr::try_from(s).ok()),
            watch: None,
        }
    }

    /// In the foreground (`-D` or `-d`).
    pub fn stays_in_foreground(&self) -> bool {
        self.foreground || self.debug
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("secretivex-agent").chain(args.iter().copied()))
    }

    #[test]
    fn foreground_with_socket_and_keys() {
        let a = parse(&[
            "-D",
            "-a",
            "/tmp/s.sock",
            "-t",
            "1h30m",
            "--key",
            "k1",
            "--key",
            "k2",
        ])
        .unwrap();
        assert!(a.foreground);
        assert_eq!(a.socket, Some(PathBuf::from("/tmp/s.sock")));
        assert_eq!(a.lifetime, Some(Duration::from_secs(5400)));
        assert_eq!(a.keys, vec![PathBuf::from("k1"), PathBuf::from("k2")]);
        assert_eq!(a.backlog, None);
        assert_eq!(a.agent_overrides().backlog, None);
        assert!(a.command.is_empty());
    }

    #[test]
    fn command_takes_the_rest_of_the_line() {
        let a = parse(&["-a", "s", "sh", "-c", "echo $SSH_AUTH_SOCK"]).unwrap();
        assert_eq!(a.command, vec!["sh", "-c", "echo $SSH_AUTH_SOCK"]);
        let a = parse(&["-t", "5", "ssh-add", "-l", "--", "-x"]).unwrap();
        assert_eq!(a.command, vec!["ssh-add", "-l", "--", "-x"]);
        assert_eq!(a.lifetime, Some(Duration::from_secs(5)));
    }

    #[test]
    fn conflicting_and_bad_flags_are_errors() {
        assert!(parse(&["-D", "-d"]).is_err());
        assert!(parse(&["-s", "-c"]).is_err());
        assert!(parse(&["-k", "-D"]).is_err());
        assert!(parse(&["-t", "soon"]).is_err());
        assert!(parse(&["--backlog", "0"]).is_err());
        assert!(parse(&["--backlog", "many"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["-D", "true"]).is_err());
    }

    #[test]
    fn limits_and_signers_alias() {
        let a = parse(&[
            "--max-signers",
            "3",
            "--sign-timeout",
            "250",
            "--max-connections",
            "100",
            "--idle-timeout",
            "30",
        ])
        .unwrap();
        assert_eq!(a.signers, Some(3));
        assert_eq!(a.sign_timeout, Some(250));
        assert_eq!(a.max_connections, Some(100));
        assert_eq!(a.idle_timeout, Some(30));
        assert_eq!(parse(&["--signers", "2"]).unwrap().signers, Some(2));
        assert!(parse(&["--max-signers", "0"]).is_err());
        assert!(parse(&["--sign-timeout", "0"]).is_err());
        assert!(parse(&["--max-connections", "0"]).is_err());
        assert!(parse(&["--metrics-listen", "0.0.0.0:9100"]).is_err());
        assert!(parse(&["--metrics-listen", "127.0.0.1:9100"]).is_ok());
        assert!(parse(&["--metrics-listen", "unix:/tmp/m.sock"]).is_ok());
    }

    #[test]
    fn config_flags_become_the_top_layer() {
        let a = parse(&[
            "--config",
            "/etc/a.toml",
            "--profile",
            "fanout",
            "--max-signers",
            "3",
            "--sign-timeout",
            "250",
            "--idle-timeout",
            "30",
            "-t",
            "1h",
            "--metrics-listen",
            "127.0.0.1:9100",
            "--backlog",
            "64",
        ])
        .unwrap();
        assert_eq!(a.config, Some(PathBuf::from("/etc/a.toml")));
        assert_eq!(a.profile, Some(Profile::Fanout));
        let o = a.agent_overrides();
        assert_eq!(o.max_signers.map(Signers::get), Some(3));
        assert_eq!(
            o.sign_timeout.map(|d| d.to_string()).as_deref(),
            Some("250ms")
        );
        assert_eq!(
            o.idle_timeout.map(|d| d.to_string()).as_deref(),
            Some("30s")
        );
        assert_eq!(
            o.default_lifetime.map(|d| d.to_string()).as_deref(),
            Some("1h")
        );
        assert_eq!(
            o.metrics_listen.as_ref().map(|m| m.as_str()),
            Some("127.0.0.1:9100")
        );
        assert_eq!(o.backlog.map(|b| b.get()), Some(64));
        assert!(parse(&["--profile", "turbo"]).is_err());
        assert!(parse(&["--check-config", "--print-config"]).is_err());
        assert!(
            parse(&["--check-config", "--config", "x"])
                .unwrap()
                .check_config
        );
    }

    #[test]
    fn shell_choice() {
        assert_eq!(parse(&["-c"]).unwrap().shell(), Shell::Csh);
        assert_eq!(parse(&["-s"]).unwrap().shell(), Shell::Sh);
    }
}
