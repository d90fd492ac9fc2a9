//! `tracehound snapshot export` (daemon) and `tracehound snapshot verify` (offline): the
//! deterministic, canonical export of the forensic state and its SHA-256
//! (`tracehound_core::snapshot_export`).
//!
//! `verify` only says `OK` (exit 0) when something outside the file vouches for it: the
//! SHA-256 the operator kept from `export` (`--sha256`), or the ledger checkpoint's
//! signature under the log's verifier key (`--key`). A file that is merely internally
//! consistent may be a consistent forgery; it gets exit [`UNANCHORED`] and says so.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use tracehound_core::hash::sha256_hex;
use tracehound_core::snapshot_export::{
    verify, VerifiedSnapshot, MAX_SNAPSHOT_BYTES, SNAPSHOT_FORMAT,
};
use tracehound_ledger::CheckpointVerifier;
use tracehound_rpc::pb;

use crate::cli::SnapshotCommand;
use crate::daemon::{self, CALL_TIMEOUT};
use crate::incident::load_verifier;

/// Exit code of `snapshot verify` for a file that is internally consistent but was
/// checked against no anchor (`--sha256` or `--key`): not a failure, not an `OK`.
pub const UNANCHORED: u8 = 3;

/// Runs one `snapshot` subcommand.
pub fn run(command: SnapshotCommand, target: &dyn Fn() -> String) -> Result<ExitCode> {
    match command {
        SnapshotCommand::Export { out, json } => export(&target(), out.as_deref(), json),
        SnapshotCommand::Verify {
            file,
            sha256,
            key,
            key_file,
            json,
        } => {
            let verifier = load_verifier(key.as_deref(), key_file.as_deref())?;
            verify_file(&file, sha256.as_deref(), verifier.as_ref(), json)
        }
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory, so a reader
/// never sees half an export.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("writing {}", path.display()))
}

fn export(target: &str, out: Option<&Path>, json: bool) -> Result<ExitCode> {
    let rt = daemon::runtime()?;
    let reply = rt.block_on(async {
        let mut client = daemon::connect(target, CALL_TIMEOUT).await?;
        daemon::call(
            target,
            CALL_TIMEOUT,
            client.export_snapshot(pb::ExportSnapshotRequest {}),
        )
        .await
    })?;
    let computed = sha256_hex(&reply.snapshot);
    if computed != reply.sha256 {
        bail!(
            "the export from {target} does not match its SHA-256 (sent {}, computed {computed})",
            reply.sha256
        );
    }
    verify(&reply.snapshot).context("the daemon's export does not verify")?;
    if let Some(path) = out {
        write_atomic(path, &reply.snapshot)?;
    }
    let mut stdout = std::io::stdout().lock();
    if json {
        let mut view = serde_json::json!({
            "format": SNAPSHOT_FORMAT,
            "sha256": reply.sha256,
            "bytes": reply.snapshot.len(),
        });
        match out {
            Some(path) => view["file"] = path.display().to_string().into(),
            None => {
                view["snapshot"] = serde_json::from_slice(&reply.snapshot)
                    .context("the daemon's export is not JSON")?;
            }
        }
        serde_json::to_writer_pretty(&mut stdout, &view).context("encoding JSON")?;
        writeln!(stdout).context("writing to standard output")?;
    } else if let Some(path) = out {
        writeln!(
            stdout,
            "sha256 {}\nwrote {} bytes to {}",
            reply.sha256,
            reply.snapshot.len(),
            path.display()
        )
        .context("writing to standard output")?;
    } else {
        // The exact bytes on stdout (no newline added: `> FILE` keeps the hash), the hash
        // on stderr.
        stdout
            .write_all(&reply.snapshot)
            .and_then(|()| stdout.flush())
            .context("writing to standard output")?;
        eprintln!("sha256 {}", reply.sha256);
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks the export's checkpoint note against `verifier`: a valid signature, and the
/// size and root the export states (and the origin its configuration names). Returns
/// what to print.
fn check_checkpoint(
    v: &VerifiedSnapshot,
    bytes: &[u8],
    verifier: &CheckpointVerifier,
) -> Result<String> {
    let Some(cp) = v.ledger.as_ref().and_then(|l| l.checkpoint.as_ref()) else {
        bail!("--key given, but the export has no signed ledger checkpoint to check");
    };
    let signed = verifier
        .verify(&cp.note)
        .context("the ledger checkpoint is not signed by this key")?;
    if signed.size != cp.size || signed.root != cp.root {
        bail!(
            "the signed checkpoint says size {} root {}, the export says size {} root {}",
            signed.size,
            hex::encode(signed.root),
            cp.size,
            hex::encode(cp.root)
        );
    }
    let doc: serde_json::Value = serde_json::from_slice(bytes).context("the export is not JSON")?;
    if let Some(origin) = doc
        .pointer("/config/settings/ledger/origin")
        .and_then(serde_json::Value::as_str)
    {
        if origin != signed.origin {
            bail!(
                "the checkpoint is for log {:?}, the export's configuration names {origin:?}",
                signed.origin
            );
        }
    }
    Ok(format!(
        "ledger checkpoint at size {} signed by {}",
        signed.size,
        verifier.name()
    ))
}

fn verify_file(
    file: &Path,
    expected: Option<&str>,
    verifier: Option<&CheckpointVerifier>,
    json: bool,
) -> Result<ExitCode> {
    let name = file.display();
    let bytes = crate::input::read_capped(file, MAX_SNAPSHOT_BYTES, "snapshot export")?;
    let v = verify(&bytes).with_context(|| format!("{name}: not a valid snapshot export"))?;
    let sha256 = hex::encode(v.sha256);
    let mut anchors = Vec::new();
    if let Some(want) = expected {
        if !want.trim().eq_ignore_ascii_case(&sha256) {
            bail!("{name}: SHA-256 is {sha256}, expected {}", want.trim());
        }
        anchors.push("sha256 matches".to_owned());
    }
    if let Some(verifier) = verifier {
        anchors.push(check_checkpoint(&v, &bytes, verifier).with_context(|| name.to_string())?);
    }
    let anchored = !anchors.is_empty();
    let mut out = std::io::stdout().lock();
    if json {
        let view = serde_json::json!({
            "ok": anchored,
            "consistent": true,
            "anchored": anchored,
            "anchors": anchors,
            "sha256": sha256,
            "bytes": bytes.len(),
            "evidence": v.evidence,
            "audit_length": v.audit_length,
            "ledger_size": v.ledger_size,
        });
        serde_json::to_writer_pretty(&mut out, &view).context("encoding JSON")?;
        writeln!(out).context("writing to standard output")?;
    } else {
        let ledger = v
            .ledger_size
            .map_or_else(|| "no ledger".to_owned(), |n| format!("ledger {n} entries"));
        let facts = format!(
            "sha256 {sha256} ({} bytes, canonical): {} evidence, audit chain {} records, \
             {ledger}",
            bytes.len(),
            v.evidence,
            v.audit_length
        );
        if anchored {
            // The key vouches for the ledger head only; evidence and configuration are
            // bound to the daemon by the SHA-256.
            let scope = if expected.is_none() {
                " (the key anchors the ledger head; compare the SHA-256 to anchor the \
                 evidence and configuration)"
            } else {
                ""
            };
            writeln!(out, "OK: {facts}; {}{scope}", anchors.join("; "))
        } else {
            writeln!(
                out,
                "CONSISTENT, NOT ANCHORED: {facts}\nthe file agrees with itself, but nothing \
                 ties it to a daemon: give --sha256 (from `snapshot export`) or --key (the \
                 ledger's verifier key)"
            )
        }
        .context("writing to standard output")?;
    }
    Ok(if anchored {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(UNANCHORED)
    })
}
