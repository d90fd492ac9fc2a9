//! `secretivex`: a client for any SSH agent socket. See `secretivex --help`.

mod cli;
mod client;
mod health;
mod keyinfo;
mod list;
mod query;
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
    let socket = socket::resolve(cli.socket)?;
    match cli.command {
        Command::List { json } => list::run(&socket, json, &mut std::io::stdout().lock()),
        Command::Sign {
            key,
            namespace,
            file,
        } => sign::run(&socket, &key, &namespace, &file),
        Command::WaitReady { timeout } => wait_ready::run(&socket, timeout),
        Command::Query => query::run(&socket),
        Command::Health { probe } => health::run(&socket, probe),
    }
}
