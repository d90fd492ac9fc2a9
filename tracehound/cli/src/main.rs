//! `tracehound`: command-line tools over tracehound-core, and a client of `tracehoundd`.

mod audit;
mod cli;
mod cold;
mod commands;
mod daemon;
mod demo;
mod erase;
mod incident;
mod input;
mod model;
mod remote;
mod snapshot_cmd;
mod text;
mod watch;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match commands::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tracehound: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
