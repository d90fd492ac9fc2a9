//! Command line of `secretivex-bench`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Load generator for SSH agent sockets (any agent: SecretiveX, OpenSSH's ssh-agent, …).
///
/// Without a subcommand it drives the agent at --socket (default $SSH_AUTH_SOCK) and prints
/// throughput, failures and latency percentiles. `ceiling` measures the in-process signing
/// cost with SecretiveX's own crypto backend.
#[derive(Debug, Parser)]
#[command(
    name = "secretivex-bench",
    version,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to run; without one, a load run against an agent socket.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Options of the load run.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Measure in-process signing throughput per core and on all cores (the physical ceiling).
    Ceiling(CeilingArgs),
    /// Measure the agent's resident memory with many idle connections open.
    Idle(IdleArgs),
}

/// What each request asks the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// SIGN_REQUEST with the chosen key.
    Sign,
    /// REQUEST_IDENTITIES.
    List,
    /// Each client alternates list and sign (list first), like an SSH login does.
    Mixed,
}

/// How clients use connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectMode {
    /// A new connection for every request, as pssh/Ansible fan-out does.
    PerRequest,
    /// One connection per client, reused (reopened only after an error).
    Persistent,
}

/// Hash for RSA signatures (OpenSSH sign flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RsaHash {
    /// `rsa-sha2-256` (flag 2).
    Sha256,
    /// `rsa-sha2-512` (flag 4).
    Sha512,
}

/// Options of a load run.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Agent socket (default: $SSH_AUTH_SOCK).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Request type.
    #[arg(long, value_enum, default_value_t = Mode::Sign)]
    pub mode: Mode,

    /// Connection use.
    #[arg(long, value_enum, default_value_t = ConnectMode::Persistent)]
    pub connect: ConnectMode,

    /// Concurrent clients (one task each).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=200_000))]
    pub clients: u32,

    /// Run for this many seconds (default 5 unless --requests is given).
    #[arg(long, value_name = "SECS", conflicts_with = "requests", value_parser = parse_secs)]
    pub duration: Option<f64>,

    /// Run this many requests in total, shared by all clients.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: Option<u64>,

    /// Key to sign with, as `ssh-add -l` prints it (`SHA256:…`, prefix optional);
    /// default: the first identity listed.
    #[arg(long, value_name = "FINGERPRINT")]
    pub key: Option<String>,

    /// Size of the data to sign.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(8..=65_536))]
    pub payload_bytes: u32,

    /// Give up a connect (including waiting on a full backlog) after this long.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub connect_timeout_ms: u64,

    /// Give up waiting for a reply after this long.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_ms: u64,

    /// Spread client starts evenly over this many milliseconds.
    #[arg(long, default_value_t = 0)]
    pub ramp_ms: u64,

    /// Verify sampled signatures against the listed public key (and, in list mode, that the
    /// key is listed); a signature that does not verify counts as a failure.
    #[arg(long)]
    pub verify: bool,

    /// With --verify, check each client's first signature and then every Nth.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub verify_every: u64,

    /// PID of the agent, to report its CPU time per operation and its RSS from /proc.
    #[arg(long, value_name = "PID")]
    pub agent_pid: Option<u32>,

    /// Write the results as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Write the results as CSV (header and one row) to FILE.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,

    /// Free-form label copied into the reports (e.g. the agent's name).
    #[arg(long)]
    pub label: Option<String>,

    /// Generator threads: 1 = tokio current-thread runtime (default), leaving the other
    /// core(s) to the agent under test.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,

    /// Hash for RSA keys.
    #[arg(long, value_enum, default_value_t = RsaHash::Sha256)]
    pub rsa_hash: RsaHash,
}

/// Key types `ceiling` can generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyType {
    /// Ed25519.
    Ed25519,
    /// ECDSA on NIST P-256.
    EcdsaP256,
    /// RSA, 3072-bit modulus, rsa-sha2-256.
    #[value(name = "rsa-3072")]
    #[serde(rename = "rsa-3072")]
    Rsa3072,
}

/// Options of `ceiling`.
#[derive(Debug, Clone, Args)]
pub struct CeilingArgs {
    /// Key type to generate (with ssh-keygen, in a temporary directory).
    #[arg(long, value_enum)]
    pub key_type: KeyType,

    /// Seconds per measurement (one thread, then all threads).
    #[arg(long, default_value = "3", value_parser = parse_secs)]
    pub seconds: f64,

    /// Threads for the all-cores figure (default: the number of cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,

    /// Size of the data to sign.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(8..=65_536))]
    pub payload_bytes: u32,

    /// Write the results as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Options of `idle`.
#[derive(Debug, Clone, Args)]
pub struct IdleArgs {
    /// Agent socket (default: $SSH_AUTH_SOCK).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// PID of the agent, whose RSS is read from /proc.
    #[arg(long, value_name = "PID")]
    pub agent_pid: u32,

    /// Connections to open and hold.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=200_000))]
    pub clients: u32,

    /// Seconds to hold the connections idle.
    #[arg(long, default_value = "3", value_parser = parse_secs)]
    pub hold_secs: f64,

    /// Give up a connect (including waiting on a full backlog) after this long.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub connect_timeout_ms: u64,

    /// Give up waiting for a listing reply after this long.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_ms: u64,

    /// Free-form label copied into the report.
    #[arg(long)]
    pub label: Option<String>,

    /// Write the results as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// The command-line spelling of a value (`per-request`, `rsa-3072`, …).
pub fn value_name<T: ValueEnum>(v: &T) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_owned())
        .unwrap_or_default()
}

/// Seconds as a positive, finite number of at most a day.
fn parse_secs(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("not a number: {e}"))?;
    if v.is_finite() && v > 0.0 && v <= 86_400.0 {
        Ok(v)
    } else {
        Err("must be > 0 and at most 86400".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_conflicts() {
        let cli = Cli::try_parse_from(["b", "--socket", "/s"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.run.mode, Mode::Sign);
        assert_eq!(cli.run.connect, ConnectMode::Persistent);
        assert_eq!(cli.run.clients, 1);
        assert!(Cli::try_parse_from(["b", "--duration", "1", "--requests", "5"]).is_err());
        assert!(Cli::try_parse_from(["b", "--duration", "-1"]).is_err());
        assert!(Cli::try_parse_from(["b", "--clients", "0"]).is_err());
        let cli =
            Cli::try_parse_from(["b", "--connect", "per-request", "--mode", "mixed"]).unwrap();
        assert_eq!(cli.run.connect, ConnectMode::PerRequest);
        assert_eq!(cli.run.mode, Mode::Mixed);
    }

    #[test]
    fn ceiling_subcommand() {
        let cli = Cli::try_parse_from(["b", "ceiling", "--key-type", "ecdsa-p256"]).unwrap();
        match cli.command {
            Some(Command::Ceiling(c)) => assert_eq!(c.key_type, KeyType::EcdsaP256),
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["b", "ceiling", "--key-type", "dsa"]).is_err());
        let cli = Cli::try_parse_from(["b", "ceiling", "--key-type", "rsa-3072"]).unwrap();
        match cli.command {
            Some(Command::Ceiling(c)) => assert_eq!(value_name(&c.key_type), "rsa-3072"),
            other => panic!("{other:?}"),
        }
        assert_eq!(value_name(&ConnectMode::PerRequest), "per-request");
    }

    #[test]
    fn idle_subcommand() {
        let cli = Cli::try_parse_from(["b", "idle", "--agent-pid", "42"]).unwrap();
        match cli.command {
            Some(Command::Idle(i)) => {
                assert_eq!(i.agent_pid, 42);
                assert_eq!(i.clients, 1000);
                assert!((i.hold_secs - 3.0).abs() < f64::EPSILON);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            Cli::try_parse_from(["b", "idle"]).is_err(),
            "the PID is required"
        );
        assert!(Cli::try_parse_from(["b", "idle", "--agent-pid", "1", "--clients", "0"]).is_err());
    }
}
