//! Command-line definition.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Talk to an SSH agent (SecretiveX's, OpenSSH's, any) over its Unix socket.
///
/// Exit status: 0 on success; 1 when the answer is negative (no identities, health
/// problems, wait-ready timed out, extension unsupported); 2 on errors.
#[derive(Debug, Parser)]
#[command(name = "secretivex", version)]
pub struct Cli {
    /// Agent socket (default: $SSH_AUTH_SOCK).
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the agent's keys like `ssh-add -l`: bits, fingerprint, comment, (type).
    List {
        /// Print a JSON array of {fingerprint, type, bits, comment, certificate, public_key}.
        #[arg(long)]
        json: bool,
    },
    /// Sign FILE with an agent key; writes FILE.sig in the format of `ssh-keygen -Y sign`.
    Sign {
        /// Fingerprint of the key (`SHA256:…`, as `list` prints it; the prefix is optional).
        #[arg(long, value_name = "FINGERPRINT")]
        key: String,
        /// Signature namespace (`ssh-keygen -Y verify -n`).
        #[arg(short = 'n', long, default_value = "file")]
        namespace: String,
        /// File to sign.
        file: PathBuf,
    },
    /// Wait until the agent answers a list request.
    WaitReady {
        /// Give up after this many seconds (fractions allowed).
        #[arg(long, default_value = "10")]
        timeout: f64,
    },
    /// Print the extensions the agent supports (the `query` extension).
    Query,
    /// Scrape a SecretiveX agent's metrics listener (`secretivex-agent --metrics-listen`)
    /// and print a summary. Give `--url http://127.0.0.1:PORT`, or the global `--socket`
    /// naming the listener's Unix socket (`--metrics-listen unix:PATH`).
    Metrics {
        /// `http://HOST:PORT[/PATH]` of the listener (path defaults to /metrics).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Print the raw Prometheus text instead of the summary.
        #[arg(long)]
        raw: bool,
    },
    /// Explain which policy rule decides a request (reads the agent's configuration).
    #[command(subcommand)]
    Policy(crate::policy_cmd::PolicyCmd),
    /// Work with the agent's audit trail.
    #[command(subcommand)]
    Audit(crate::audit_cmd::AuditCmd),
    /// Install or remove the systemd user units of the agent.
    #[command(subcommand)]
    Service(crate::service::ServiceCmd),
    /// Print OpenSSH, pssh and Ansible settings for large fan-outs, worked out from the
    /// agent's configuration and this machine's limits.
    Hints(crate::hints::HintsArgs),
    /// Report unsupported or weak keys and duplicates; exit 1 if there are any.
    Health {
        /// Also sign a test message with each key (RSA with SHA-512) and check the result.
        /// Keys added with confirmation (`ssh-add -c`) will prompt.
        #[arg(long)]
        probe: bool,
    },
}
