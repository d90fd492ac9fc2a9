//! `tracehound`: command-line tools over tracehound-core.

mod cli;
mod commands;
mod demo;

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
