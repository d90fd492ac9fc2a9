//! `secretivex-agent`: the SecretiveX SSH agent daemon. See `app` for the flow.

mod app;
mod cli;
mod daemon;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    match app::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("secretivex-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}
