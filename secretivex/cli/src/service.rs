//! `secretivex service`. (Skeleton: filled in by issue 6.)

use clap::Subcommand;

use crate::Outcome;

/// Subcommands of `secretivex service`.
#[derive(Debug, Subcommand)]
pub enum ServiceCmd {}

/// Runs the subcommand.
pub fn run(cmd: ServiceCmd) -> anyhow::Result<Outcome> {
    match cmd {}
}
