//! `tracehound audit`: proofs and checkpoints from the daemon's ledger, and their
//! offline verification (`tracehound-ledger`'s bundle API).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use tracehound_ledger::bundle::{CONSISTENCY_FORMAT, INCLUSION_FORMAT, MAX_BUNDLE_BYTES};
use tracehound_ledger::{verify_consistency_bundle, verify_inclusion_bundle, CheckpointVerifier};
use tracehound_rpc::pb;

use crate::cli::AuditCommand;
use crate::daemon::{self, CALL_TIMEOUT};

/// Runs one `audit` subcommand.
pub fn run(command: AuditCommand, target: &dyn Fn() -> String) -> Result<ExitCode> {
    match command {
        AuditCommand::Prove { index, json } => prove(&target(), index, json),
        AuditCommand::VerifyProof {
            file,
            key,
            key_file,
        } => verify_proof(&file, key.as_deref(), key_file.as_deref()),
        AuditCommand::Checkpoint { json } => checkpoint(&target(), json),
    }
}

fn prove(target: &str, index: u64, json: bool) -> Result<ExitCode> {
    let rt = daemon::runtime()?;
    let reply = rt.block_on(async {
        let mut client = daemon::connect(target, CALL_TIMEOUT).await?;
        let request = pb::AuditProveRequest {
            index,
            ..Default::default()
        };
        daemon::call(target, CALL_TIMEOUT, client.audit_prove(request)).await
    })?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", reply.inclusion_bundle).context("writing to standard output")?;
        return Ok(ExitCode::SUCCESS);
    }
    // A summary of what the daemon sent, checked against the key it named: this proves
    // the bundle is well formed, not that the key is the one to trust.
    let verifier = CheckpointVerifier::from_verifier_key(&reply.verifier_key)
        .context("the daemon sent an unusable verifier key")?;
    let v = verify_inclusion_bundle(&reply.inclusion_bundle, Some(&verifier))
        .context("the daemon's proof does not verify")?;
    writeln!(
        out,
        "entry {} of {} ({} {} for {}, at {})\nroot {}\ncheckpoint signed by {}\n\
         verifier key {}\n(--json prints the bundle; check it with `tracehound audit \
         verify-proof FILE --key VKEY`)",
        v.index,
        v.tree_size,
        v.record.kind.as_str(),
        v.record.id,
        v.record.signature,
        v.record.timestamp,
        hex::encode(v.root),
        verifier.name(),
        reply.verifier_key
    )
    .context("writing to standard output")?;
    Ok(ExitCode::SUCCESS)
}

/// Which bundle a file holds (other members are ignored here).
#[derive(serde::Deserialize)]
struct FormatOnly {
    format: String,
}

fn verify_proof(file: &Path, key: Option<&str>, key_file: Option<&Path>) -> Result<ExitCode> {
    let name = file.display();
    let text = crate::input::read_capped_text(file, MAX_BUNDLE_BYTES, "proof bundle")?;
    // Only the `format` member is read here; the verifiers parse the bundle strictly.
    let format = serde_json::from_str::<FormatOnly>(&text)
        .ok()
        .map(|f| f.format);
    match format.as_deref() {
        Some(INCLUSION_FORMAT) => {
            let key_text = match (key, key_file) {
                (Some(k), _) => k.to_owned(),
                (None, Some(path)) => std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
                (None, None) => bail!(
                    "{name}: an inclusion proof is only as good as its checkpoint's signature; \
                     give --key or --key-file"
                ),
            };
            let verifier =
                CheckpointVerifier::from_verifier_key(&key_text).context("the verifier key")?;
            let v = verify_inclusion_bundle(&text, Some(&verifier))
                .with_context(|| format!("{name}: the proof does not verify"))?;
            println!(
                "OK: entry {} is in the log of {} entries (root {}), checkpoint signed by {}\n\
                 record: {} id {} signature {} timestamp {} hash {}",
                v.index,
                v.tree_size,
                hex::encode(v.root),
                verifier.name(),
                v.record.kind.as_str(),
                v.record.id,
                v.record.signature,
                v.record.timestamp,
                v.record.hash.to_hex()
            );
        }
        Some(CONSISTENCY_FORMAT) => {
            let b = verify_consistency_bundle(&text)
                .with_context(|| format!("{name}: the proof does not verify"))?;
            println!(
                "OK: the log of {} entries (root {}) is a prefix of the log of {} entries \
                 (root {}); compare both roots with checkpoints you trust",
                b.first_size, b.first_root, b.second_size, b.second_root
            );
        }
        _ => bail!("{name}: not a tracehound proof bundle (no known `format`)"),
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct CheckpointView<'a> {
    origin: &'a str,
    size: u64,
    root_hash: &'a str,
    verifier_key: &'a str,
    signed_at_ms: f64,
    checkpoint: &'a str,
}

fn checkpoint(target: &str, json: bool) -> Result<ExitCode> {
    let rt = daemon::runtime()?;
    let c = rt.block_on(async {
        let mut client = daemon::connect(target, CALL_TIMEOUT).await?;
        daemon::call(
            target,
            CALL_TIMEOUT,
            client.audit_checkpoint(pb::AuditCheckpointRequest {}),
        )
        .await
    })?;
    let mut out = std::io::stdout().lock();
    if json {
        let view = CheckpointView {
            origin: &c.origin,
            size: c.size,
            root_hash: &c.root_hash,
            verifier_key: &c.verifier_key,
            signed_at_ms: c.signed_at_ms,
            checkpoint: &c.checkpoint,
        };
        serde_json::to_writer_pretty(&mut out, &view).context("encoding JSON")?;
        writeln!(out).context("writing to standard output")?;
    } else {
        write!(
            out,
            "{} entries, root {}\nverifier key {}\n\n{}",
            c.size, c.root_hash, c.verifier_key, c.checkpoint
        )
        .context("writing to standard output")?;
    }
    Ok(ExitCode::SUCCESS)
}
