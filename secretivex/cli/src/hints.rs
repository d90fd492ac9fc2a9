//! `secretivex hints`. (Skeleton: filled in by issue 6.)

use crate::Outcome;

/// Prints the settings.
pub fn run() -> anyhow::Result<Outcome> {
    Ok(Outcome::Ok)
}
