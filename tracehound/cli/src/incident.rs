//! `tracehound incident record` (daemon) and `tracehound incident verify` (offline, over
//! `tracehound-ledger`'s incident API; any input gives a verdict or an error, never a
//! panic).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use tracehound_core::hash::validate_signature;
use tracehound_ledger::incident::MAX_INCIDENT_BYTES;
use tracehound_ledger::{verify_incident_record, CheckpointVerifier};
use tracehound_rpc::pb;

use crate::cli::IncidentCommand;
use crate::daemon::{self, CALL_TIMEOUT};
use crate::snapshot_cmd::write_atomic;

/// Runs one `incident` subcommand.
pub fn run(command: IncidentCommand, target: &dyn Fn() -> String) -> Result<ExitCode> {
    match command {
        IncidentCommand::Record { signature, out } => record(&target(), &signature, out.as_deref()),
        IncidentCommand::Verify {
            file,
            key,
            key_file,
        } => verify(&file, key.as_deref(), key_file.as_deref()),
    }
}

fn record(target: &str, signature: &str, out: Option<&Path>) -> Result<ExitCode> {
    if !validate_signature(signature) {
        bail!("{signature:?} is not a signature (expected category:<64 lowercase hex>)");
    }
    let rt = daemon::runtime()?;
    let reply = rt.block_on(async {
        let mut client = daemon::connect(target, CALL_TIMEOUT).await?;
        let request = pb::IncidentRecordRequest {
            signature: signature.to_owned(),
        };
        daemon::call(target, CALL_TIMEOUT, client.incident_record(request)).await
    })?;
    // Checked against the key the daemon names: this proves the record is well formed,
    // not that the key is the one to trust (that is what `verify --key` is for).
    let verifier = CheckpointVerifier::from_verifier_key(&reply.verifier_key)
        .context("the daemon sent an unusable verifier key")?;
    verify_incident_record(&reply.record, &verifier)
        .context("the daemon's incident record does not verify")?;
    let text = format!("{}\n", reply.record);
    match out {
        Some(path) => {
            write_atomic(path, text.as_bytes())?;
            println!(
                "incident recorded: audit entry {} of {}, written to {}\nverifier key {}\n\
                 (check it with `tracehound incident verify {} --key VKEY`)",
                reply.index,
                reply.tree_size,
                path.display(),
                reply.verifier_key,
                path.display()
            );
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .context("writing to standard output")?;
            eprintln!(
                "incident recorded: audit entry {} of {}; verifier key {}",
                reply.index, reply.tree_size, reply.verifier_key
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The verifier key from `--key` or `--key-file`, if either was given.
pub fn load_verifier(
    key: Option<&str>,
    key_file: Option<&Path>,
) -> Result<Option<CheckpointVerifier>> {
    let key_text = match (key, key_file) {
        (Some(k), _) => k.to_owned(),
        (None, Some(path)) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        (None, None) => return Ok(None),
    };
    CheckpointVerifier::from_verifier_key(key_text.trim())
        .map(Some)
        .context("the verifier key")
}

fn verify(file: &Path, key: Option<&str>, key_file: Option<&Path>) -> Result<ExitCode> {
    let name = file.display();
    let Some(verifier) = load_verifier(key, key_file)? else {
        bail!("give the log's verifier key with --key or --key-file");
    };
    let text = crate::input::read_capped_text(file, MAX_INCIDENT_BYTES, "incident record")?;
    let v = verify_incident_record(&text, &verifier)
        .with_context(|| format!("{name}: the incident record does not verify"))?;
    let e = &v.evidence;
    println!(
        "OK: incident for {} ({} {}, {} bytes, captured {}) recorded at {}\n\
         audit entry {} (record hash {}) is in the log of {} entries (root {}), \
         checkpoint signed by {}",
        e.signature,
        e.severity,
        e.category,
        e.size,
        e.captured_ms,
        v.recorded_ms,
        v.inclusion.index,
        v.record_hash.to_hex(),
        v.inclusion.tree_size,
        hex::encode(v.inclusion.root),
        verifier.name()
    );
    Ok(ExitCode::SUCCESS)
}
