//! `secretivex query`.

use std::path::Path;

use anyhow::{Context, Result};

use crate::client::AgentClient;
use crate::Outcome;

/// Prints the extensions the agent reports, one per line; `Negative` if it has no `query`.
pub fn run(socket: &Path) -> Result<Outcome> {
    let mut client = AgentClient::connect(socket, None)?;
    match client.query().context("query extension")? {
        Some(names) => {
            for n in names {
                println!("{n}");
            }
            Ok(Outcome::Ok)
        }
        None => {
            eprintln!(
                "secretivex: the agent at {} does not support the query extension \
                 (RFC 9987 §5.8.1; OpenSSH added it in 10.3)",
                socket.display()
            );
            Ok(Outcome::Negative)
        }
    }
}
