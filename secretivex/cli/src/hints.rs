//! `secretivex hints`: OpenSSH, pssh and Ansible settings for large fan-outs, worked out from
//! the agent's effective configuration (file, environment, profile) and this machine's
//! limits (`net.core.somaxconn`, `RLIMIT_NOFILE`).
//!
//! The advice rests on one fact: every new SSH connection costs the agent one signature,
//! and a fan-out opens them all at once. Connection sharing (`ControlMaster` +
//! `ControlPersist`) turns "one signature per task" into "one per host per persist window";
//! what cannot be shared must fit the agent's backlog and connection limit.

mod facts;
mod render;

use std::path::PathBuf;

use clap::Args;

use crate::Outcome;
pub use facts::Facts;

/// Options of `secretivex hints`.
#[derive(Debug, Args)]
pub struct HintsArgs {
    /// The agent's configuration file (default: as the agent finds it: $SECRETIVEX_CONFIG,
    /// then $XDG_CONFIG_HOME/secretivex/agent.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Connections you plan to open at once (pssh -p, Ansible forks).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub parallel: u32,
    /// Print the settings and the facts they come from as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Prints the settings. `socket` is the global `--socket`, which wins over the configuration.
pub fn run(args: HintsArgs, socket: Option<PathBuf>) -> anyhow::Result<Outcome> {
    let facts = Facts::gather(args.config.as_deref(), socket, args.parallel)?;
    let hints = render::Hints::new(&facts);
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &hints)?;
        std::io::Write::write_all(&mut out, b"\n")?;
    } else {
        hints.write_text(&mut out)?;
    }
    Ok(Outcome::Ok)
}
