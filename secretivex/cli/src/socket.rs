//! Which agent socket to use.

use std::path::PathBuf;

use anyhow::{bail, Result};

/// `--socket` if given, else `$SSH_AUTH_SOCK`.
pub fn resolve(explicit: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p);
    }
    match std::env::var_os("SSH_AUTH_SOCK") {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => bail!("no agent socket: pass --socket PATH or set SSH_AUTH_SOCK"),
    }
}
