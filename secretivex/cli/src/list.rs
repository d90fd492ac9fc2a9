//! `secretivex list`.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::client::AgentClient;
use crate::keyinfo::{list_keys, KeyInfo};
use crate::Outcome;

#[derive(Serialize)]
struct JsonKey<'a> {
    fingerprint: &'a str,
    #[serde(rename = "type")]
    key_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    bits: Option<u32>,
    comment: &'a str,
    certificate: bool,
    /// The key blob in base64.
    public_key: String,
}

/// One `ssh-add -l` style line.
pub fn line(k: &KeyInfo) -> String {
    format!(
        "{} {} {} ({})",
        k.bits.unwrap_or(0),
        k.fingerprint,
        k.comment,
        k.label()
    )
}

/// Lists the agent's keys to `out`, as text or JSON.
pub fn run(socket: &Path, json: bool, out: &mut dyn Write) -> Result<Outcome> {
    let keys = list_keys(&mut AgentClient::connect(socket, None)?)?;
    if json {
        let items: Vec<JsonKey> = keys
            .iter()
            .map(|k| JsonKey {
                fingerprint: &k.fingerprint,
                key_type: &k.key_type,
                bits: k.bits,
                comment: &k.comment,
                certificate: k.certificate,
                public_key: k.blob_base64(),
            })
            .collect();
        serde_json::to_writer_pretty(&mut *out, &items)?;
        writeln!(out)?;
        return Ok(Outcome::Ok);
    }
    if keys.is_empty() {
        // Same wording and status as `ssh-add -l`.
        writeln!(out, "The agent has no identities.")?;
        return Ok(Outcome::Negative);
    }
    for k in &keys {
        writeln!(out, "{}", line(k))?;
    }
    Ok(Outcome::Ok)
}
