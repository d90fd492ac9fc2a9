//! `secretivex`: a client for any SSH agent socket. See `secretivex --help`.

mod audit_cmd;
mod cli;
mod client;
mod health;
mod hints;
mod keyinfo;
mod list;
mod metrics;
mod policy_cmd;
mod query;
mod service;
mod sign;
mod socket;
mod wait_ready;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

/// How a command ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Ok,
    /// Exit 1: a negative answer (no keys, problems found, timeout, unsupported).
    Negative,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Negative) => ExitCode::from(1),
        Err(e) => {
            eprintln!("secretivex: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let Cli { socket, command } = cli;
    // Resolved per command: `metrics` talks to the metrics listener, not the agent.
    let agent_socket = || socket::resolve(socket.clone());
    match command {
        Command::List { json } => list::run(&agent_socket()?, json, &mut std::io::stdout().lock()),
        Command::Sign {
            key,
            namespace,
            file,
        } => sign::run(&agent_socket()?, &key, &namespace, &file),
        Command::WaitReady { timeout } => wait_ready::run(&agent_socket()?, timeout),
        Command::Query => query::run(&agent_socket()?),
        Command::Policy(cmd) => policy_cmd::run(cmd),
        Command::Audit(cmd) => audit_cmd::run(cmd),
        Command::Service(cmd) => service::run(cmd),
        Command::Hints(args) => hints::run(args, socket.clone()),
        Command::Health { probe } => health::run(&agent_socket()?, probe),
        Command::Metrics { url, raw } => {
            // No $SSH_AUTH_SOCK fallback: the agent socket does not serve metrics.
            let target = match (&url, &socket) {
                (Some(url), None) => metrics::Target::Url(url),
                (None, Some(path)) => metrics::Target::Unix(path),
                _ => anyhow::bail!("metrics needs exactly one of --url URL or --socket PATH"),
            };
            metrics::run(target, raw)
        }
    }
}
