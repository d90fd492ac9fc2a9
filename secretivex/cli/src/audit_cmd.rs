//! `secretivex audit`. (Skeleton: filled in by issue 6.)

use clap::Subcommand;

use crate::Outcome;

/// Subcommands of `secretivex audit`.
#[derive(Debug, Subcommand)]
pub enum AuditCmd {}

/// Runs the subcommand.
pub fn run(cmd: AuditCmd) -> anyhow::Result<Outcome> {
    match cmd {}
}
