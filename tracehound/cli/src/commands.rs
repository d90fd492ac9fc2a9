//! The subcommands.

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use tracehound_core::audit::{AuditChain, ChainFault, ImportError};
use tracehound_core::canonical::{encode_payload, parse_json, JsValue};
use tracehound_core::error::TracehoundError;
use tracehound_core::hash::{sha256_hex, signature_of_canonical, validate_signature};

use crate::cli::{Cli, Command};
use crate::model::ChainView;

/// Runs one command; `Ok` carries the exit code for outcomes that are not errors of the
/// tool itself (a chain that does not verify).
pub fn run(cli: Cli) -> Result<ExitCode> {
    let target = || crate::daemon::target(cli.socket.as_deref(), cli.endpoint.as_deref());
    match cli.command {
        Command::Canonical { file, max_size } => {
            let value = read_payload(file.as_deref())?;
            let encoded =
                encode_payload(&value, max_size.unwrap_or(usize::MAX)).map_err(v1_error)?;
            print_line(encoded.canonical())?;
        }
        Command::Signature {
            category,
            file,
            max_size,
        } => {
            let value = read_payload(file.as_deref())?;
            let encoded = encode_payload(&value, max_size).map_err(v1_error)?;
            print_line(&signature_of_canonical(category, encoded.bytes()))?;
        }
        Command::VerifyChain {
            file: Some(file),
            json,
        } => return verify_chain(&file, json),
        Command::VerifyChain { file: None, json } => {
            return crate::remote::verify_chain(&target(), json)
        }
        Command::Hash { file } => print_line(&sha256_hex(&read_input(file.as_deref())?))?,
        Command::ValidateSignature { signature } => {
            let valid = validate_signature(&signature);
            print_line(if valid { "valid" } else { "invalid" })?;
            if !valid {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Demo => crate::demo::run(&mut std::io::stdout().lock())?,
        Command::Status { json } => return crate::remote::status(&target(), json),
        Command::Stats { json, top } => return crate::remote::stats(&target(), json, top),
        Command::Inspect { signature, json } => {
            return crate::remote::inspect(&target(), &signature, json)
        }
        Command::Snapshot {
            command: Some(command),
            ..
        } => return crate::snapshot_cmd::run(command, &target),
        Command::Incident { command } => return crate::incident::run(command, &target),
        Command::Snapshot {
            output,
            json,
            command: None,
        } => return crate::remote::snapshot(&target(), output.as_deref(), json),
        Command::Watch { interval, top } => return crate::watch::run(&target(), interval, top),
        Command::Proxy(args) => tracehound_proxy::run(args)?,
        Command::Audit { command } => return crate::audit::run(command, &target),
        Command::Cold { command } => return crate::cold::run(command, &target()),
        Command::Erase(args) => return crate::erase::run(args, &target()),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_line(s: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{s}").context("writing to standard output")?;
    Ok(())
}

/// v1's error as `CODE: message`.
fn v1_error(e: TracehoundError) -> anyhow::Error {
    anyhow!("{}: {}", e.code(), e.message())
}

fn read_input(file: Option<&Path>) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    match file {
        None => std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading standard input")?,
        Some(p) if p == Path::new("-") => std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading standard input")?,
        Some(p) => {
            buf = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            buf.len()
        }
    };
    Ok(buf)
}

fn input_name(file: Option<&Path>) -> String {
    match file {
        Some(p) if p != Path::new("-") => p.display().to_string(),
        _ => "standard input".to_owned(),
    }
}

/// Reads JSON text with `JSON.parse` semantics (what v1 was fed).
fn read_payload(file: Option<&Path>) -> Result<JsValue> {
    let text = read_input(file)?;
    parse_json(&text).with_context(|| format!("{} is not a JSON payload", input_name(file)))
}

fn verify_chain(file: &Path, json: bool) -> Result<ExitCode> {
    let bytes = read_input(Some(file))?;
    let name = input_name(Some(file));
    let text = std::str::from_utf8(&bytes).with_context(|| format!("{name} is not UTF-8 text"))?;
    let chain = match AuditChain::import_json(text) {
        Ok(chain) => chain,
        Err(ImportError::Record { index, reason }) => {
            let id = record_id(text, index);
            bail!("{name}: record {index}{id} is malformed: {reason}");
        }
        Err(e) => bail!("{name}: {e}"),
    };
    if json {
        let verified = chain.verify();
        let view = ChainView {
            ok: verified.is_ok(),
            length: chain.len() as u64,
            head_hash: chain.last_hash().to_hex(),
            first_bad_index: verified.as_ref().err().map(|e| e.index as u64),
            error: verified
                .as_ref()
                .err()
                .map(|e| fault_text(&e.fault).to_owned()),
            ledger: None,
        };
        return crate::remote::print_chain(&view, &name, true);
    }
    let mut out = std::io::stdout().lock();
    match chain.verify() {
        Ok(()) => {
            let last = chain.last_hash().to_hex();
            writeln!(
                out,
                "ok: {} records verified, last hash {last}",
                chain.len()
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let id = chain
                .get(e.index)
                .map(|r| r.id.to_owned())
                .unwrap_or_default();
            let why = fault_text(&e.fault);
            writeln!(out, "BROKEN: record {} (id {id:?}): {why}", e.index)?;
            eprintln!(
                "tracehound: audit chain in {name} does not verify (first bad record: {})",
                e.index
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

fn fault_text(fault: &ChainFault) -> &'static str {
    match fault {
        ChainFault::PreviousHashMismatch => "previousHash does not link to the previous record",
        ChainFault::HashMismatch => "hash does not match the record's contents",
    }
}

/// ` (id "…")` for record `index` of an export, when it has a string id.
fn record_id(text: &str, index: usize) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(text).ok();
    parsed
        .as_ref()
        .and_then(|v| v.get(index))
        .and_then(|r| r.get("id"))
        .and_then(|id| id.as_str())
        .map(|id| format!(" (id {id:?})"))
        .unwrap_or_default()
}
