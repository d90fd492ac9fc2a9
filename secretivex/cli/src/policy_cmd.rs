//! `secretivex policy explain`: which rule of the agent's `[policy]` decides a request,
//! and why each rule matches or not.
//!
//! The file is read and parsed with `secretivex-config` (so errors carry file, line and
//! field, as `secretivex-agent --check-config` prints them); only its `[policy]` table is
//! used. Facts not given on the command line are unknown, and count as the agent counts
//! them (see the policy crate's evaluation order).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use secretivex_config::{Env, FileChoice};
use secretivex_policy::{Fingerprint, Outcome as Decided, Policy, Request};

use crate::Outcome;

/// Subcommands of `secretivex policy`.
#[derive(Debug, Subcommand)]
pub enum PolicyCmd {
    /// Show which rule decides a request and why (exit 1 when it is denied).
    Explain(ExplainArgs),
}

/// The facts of the request to explain.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The agent's configuration file (default: $SECRETIVEX_CONFIG, then
    /// $XDG_CONFIG_HOME/secretivex/agent.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The key's fingerprint, `SHA256:…` as `ssh-keygen -l` prints it.
    #[arg(long, value_name = "FINGERPRINT")]
    key: String,
    /// The key's comment.
    #[arg(long, value_name = "COMMENT")]
    comment: Option<String>,
    /// The requesting program's executable path.
    #[arg(long, value_name = "PATH")]
    exe: Option<String>,
    /// The requesting program's process name (`comm`).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// The requesting program's uid.
    #[arg(long, value_name = "UID")]
    uid: Option<u32>,
    /// The destination host key's fingerprint.
    #[arg(long = "host-key", alias = "host", value_name = "FINGERPRINT")]
    host_key: Option<String>,
    /// The user name being authenticated at the destination.
    #[arg(long, value_name = "USER")]
    user: Option<String>,
    /// The agent is used through forwarding (default: local use).
    #[arg(long)]
    forwarded: bool,
    /// Print the explanation as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the subcommand.
pub fn run(cmd: PolicyCmd) -> anyhow::Result<Outcome> {
    match cmd {
        PolicyCmd::Explain(args) => explain(&args, &mut std::io::stdout().lock()),
    }
}

fn explain(args: &ExplainArgs, out: &mut impl std::io::Write) -> anyhow::Result<Outcome> {
    let policy = read_policy(args.config.as_deref())?;
    let key: Fingerprint = args.key.parse().context("--key")?;
    let host_key: Option<Fingerprint> = args
        .host_key
        .as_deref()
        .map(str::parse)
        .transpose()
        .context("--host-key")?;
    let request = Request {
        key_digest: Some(key.digest()),
        key_comment: args.comment.as_deref(),
        peer_uid: args.uid,
        peer_exe: args.exe.as_deref(),
        peer_name: args.name.as_deref(),
        dest_host_key: host_key.as_ref().map(Fingerprint::digest),
        dest_user: args.user.as_deref(),
        forwarded: Some(args.forwarded),
    };
    let explanation = policy.explain(&request);
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &explanation)?;
        writeln!(out)?;
    } else {
        write!(out, "{explanation}")?;
    }
    Ok(match explanation.decision.outcome {
        Decided::Deny => Outcome::Negative,
        Decided::Allow | Decided::Confirm { .. } => Outcome::Ok,
    })
}

/// The compiled `[policy]` of the configuration file (allow-all without one).
fn read_policy(flag: Option<&std::path::Path>) -> anyhow::Result<Policy> {
    let path = match FileChoice::choose(flag, &Env::from_process()) {
        FileChoice::Flag(p) | FileChoice::Env(p) | FileChoice::Default(p) => p,
        FileChoice::None => anyhow::bail!("no configuration file (give --config FILE)"),
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let (file, _) = secretivex_config::parse_str(&path, &text)?;
    let spec = file.policy.unwrap_or_default();
    Policy::compile(&spec).with_context(|| format!("{}: policy", path.display()))
}
