//! `secretivex policy`. (Skeleton: filled in by issue 6.)

use clap::Subcommand;

use crate::Outcome;

/// Subcommands of `secretivex policy`.
#[derive(Debug, Subcommand)]
pub enum PolicyCmd {}

/// Runs the subcommand.
pub fn run(cmd: PolicyCmd) -> anyhow::Result<Outcome> {
    match cmd {}
}
