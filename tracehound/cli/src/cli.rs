//! Command-line syntax.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tracehound_core::types::ThreatCategory;

/// Tracehound's command line: v1-compatible canonical JSON, signatures and audit-chain
/// checks offline, and a client of a running `tracehoundd` (status, stats, inspect,
/// verify-chain, snapshot, and the live `watch` dashboard).
#[derive(Debug, Parser)]
#[command(name = "tracehound", version, about)]
pub struct Cli {
    /// tracehoundd's Unix socket [default, as the daemon's:
    /// $XDG_RUNTIME_DIR/tracehound/tracehoundd.sock, else /run/tracehound/tracehoundd.sock
    /// for root, else /tmp/tracehound-UID/tracehoundd.sock].
    #[arg(long, global = true, env = "TRACEHOUND_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Reach the daemon at this target instead of `--socket`: `http://127.0.0.1:PORT`
    /// (its loopback TCP listener) or `unix:PATH`. Wins over `--socket`.
    #[arg(
        long,
        global = true,
        env = "TRACEHOUND_ENDPOINT",
        value_name = "TARGET"
    )]
    pub endpoint: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the canonical JSON of a payload (v1 `encodePayload`), one line.
    Canonical {
        /// JSON file to read; `-` or nothing reads standard input.
        file: Option<PathBuf>,
        /// Reject payloads whose canonical UTF-8 exceeds this many bytes.
        #[arg(long)]
        max_size: Option<usize>,
    },
    /// Print the threat signature `{category}:{sha256}` of a payload.
    Signature {
        /// Threat category: injection, ddos, flood, spam, malware or unknown.
        #[arg(long, short, value_parser = parse_category)]
        category: ThreatCategory,
        /// JSON file to read; `-` or nothing reads standard input.
        file: Option<PathBuf>,
        /// Payload limit in canonical UTF-8 bytes (v1's default: 1000000).
        #[arg(long, default_value_t = tracehound_core::hash::DEFAULT_MAX_PAYLOAD_SIZE)]
        max_size: usize,
    },
    /// Verify an audit chain and name the first bad record; exit 1 when it is broken.
    ///
    /// With FILE: an exported chain (v1's JSON array of records), checked offline.
    /// Without: the running daemon recomputes its own chain.
    VerifyChain {
        /// The exported chain (`-` reads standard input); omit to ask the daemon.
        file: Option<PathBuf>,
        /// Print one JSON object instead of a line of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the SHA-256 (lowercase hex) of the input bytes exactly as read (v1 `hashBuffer`).
    Hash {
        /// File to read; `-` or nothing reads standard input.
        file: Option<PathBuf>,
    },
    /// Check a signature's form (v1 `validateSignature`): prints `valid` (exit 0) or
    /// `invalid` (exit 1).
    ValidateSignature {
        /// The signature, e.g. `injection:<64 lowercase hex>`.
        signature: String,
    },
    /// Run a built-in scenario through the core and print every result, the statistics and
    /// the audit-chain verification.
    Demo,
    /// Is the daemon up? One line: uptime, config generation, audit chain length and head.
    /// Exit 1 when it cannot be reached.
    Status {
        /// Print one JSON object (`reachable: false` and exit 1 when it is down).
        #[arg(long)]
        json: bool,
    },
    /// The daemon's counters, quarantine fill, audit head, top sources and recent threats.
    Stats {
        /// Print the daemon's StatsReply as JSON (the proto's field names).
        #[arg(long)]
        json: bool,
        /// How many top sources and recent threats to ask for.
        #[arg(long, default_value_t = 10)]
        top: u32,
    },
    /// Metadata of one piece of quarantined evidence (never its bytes); exit 1 when the
    /// daemon holds no evidence under that signature.
    Inspect {
        /// The evidence signature, `category:sha256hex`.
        signature: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Fetch the daemon's security-state snapshot (JSON) and check its SHA-256.
    /// `snapshot export` / `snapshot verify`: the deterministic forensic export.
    #[command(args_conflicts_with_subcommands = true)]
    Snapshot {
        #[command(subcommand)]
        command: Option<SnapshotCommand>,
        /// Write the snapshot JSON to this file instead of standard output.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Print `{sha256, taken_at_ms, snapshot}` instead of the bare snapshot.
        #[arg(long)]
        json: bool,
    },
    /// A live terminal dashboard of the daemon; `q`, Esc or Ctrl-C quits.
    Watch {
        /// How often to poll the daemon: `500ms`, `2s`, or seconds as a bare number.
        #[arg(long, short = 'n', default_value = "1s", value_parser = parse_interval)]
        interval: Duration,
        /// How many top sources and recent threats to show.
        #[arg(long, default_value_t = 10)]
        top: u32,
    },
    /// Run Tracehound as a reverse proxy in front of an upstream service.
    Proxy(tracehound_proxy::ProxyArgs),
    /// The daemon's durable audit ledger: inclusion proofs and signed checkpoints, and
    /// their offline verification.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Incident records: payload-less, signed descriptors of quarantined evidence that
    /// a third party verifies offline.
    Incident {
        #[command(subcommand)]
        command: IncidentCommand,
    },
    /// The daemon's cold storage: verified metadata of a stored object, evacuation.
    Cold {
        #[command(subcommand)]
        command: crate::cold::ColdCommand,
    },
    /// Erasure (GDPR): remove every copy of what a source, a signature or a scent id names
    /// (quarantine, cold storage and its keys, pending notifications); the audit chain
    /// gets one `erasure-…` record per signature and still verifies.
    Erase(crate::erase::EraseArgs),
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Ask the daemon for the deterministic export of its forensic state (evidence
    /// metadata, audit head, ledger head and checkpoint, configuration digest): canonical
    /// JSON whose SHA-256 is the same for the same state. Prints the hash.
    Export {
        /// Write the exact bytes to FILE (else they go to standard output and the hash
        /// to standard error).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Print `{format, sha256, bytes, file | snapshot}` as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check an export offline: canonical form, format, configuration digest, every
    /// entry and total recomputed, ledger checkpoint against the ledger head; with
    /// `--sha256` the hash, with `--key` the checkpoint's signature. Exit 0: consistent
    /// and anchored; 1: does not verify or an anchor fails; 3: internally consistent but
    /// unanchored (neither `--sha256` nor `--key` given).
    Verify {
        /// The export (`-` reads standard input).
        file: PathBuf,
        /// The SHA-256 it must have (lowercase hex), as `snapshot export` printed it.
        #[arg(long, value_name = "HEX")]
        sha256: Option<String>,
        /// The ledger's checkpoint verifier key, `NAME+KEYID+BASE64`: the export's
        /// checkpoint note must carry its valid signature and name the export's size and
        /// root.
        #[arg(long, value_name = "VKEY", conflicts_with = "key_file")]
        key: Option<String>,
        /// A file holding the verifier key.
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// Record an incident for quarantined evidence: the daemon chains an `incident`
    /// audit record, makes it durable under a signed checkpoint and returns a
    /// payload-less descriptor (canonical JSON) to keep or hand over.
    Record {
        /// The evidence signature, `category:sha256hex`.
        signature: String,
        /// Write the record to FILE instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Check an incident record offline: evidence fields bound by the audit record, its
    /// chain hash, the inclusion path to the checkpoint root, and the checkpoint
    /// signature by the key. Prints `OK: …` or exits 1 with the reason.
    Verify {
        /// The record file (`-` reads standard input).
        file: PathBuf,
        /// The checkpoint verifier key, `NAME+KEYID+BASE64`.
        #[arg(long, value_name = "VKEY", conflicts_with = "key_file")]
        key: Option<String>,
        /// A file holding the verifier key.
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Ask the daemon for the inclusion proof of ledger entry INDEX (0-based) with a
    /// checkpoint signed at the same size. `--json` prints the proof bundle to keep and
    /// check later with `verify-proof`.
    Prove {
        /// The entry index.
        index: u64,
        /// Print the proof bundle (JSON) instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Check a proof bundle offline: the entry is a well-formed v1 audit record, its
    /// inclusion path leads to the root, and the checkpoint is signed by the key and names
    /// that root. (A consistency bundle is checked too; it carries no signature.) Exit 1
    /// when anything does not verify.
    VerifyProof {
        /// The bundle file (`-` reads standard input).
        file: PathBuf,
        /// The checkpoint verifier key, `NAME+KEYID+BASE64` (`tracehound audit checkpoint`
        /// prints it; tracehoundd logs it at start).
        #[arg(long, value_name = "VKEY", conflicts_with = "key_file")]
        key: Option<String>,
        /// A file holding the verifier key.
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
    },
    /// The daemon's latest signed checkpoint: origin, tree size, root and signature.
    Checkpoint {
        /// Print one JSON object (with the verifier key) instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn parse_category(s: &str) -> Result<ThreatCategory, String> {
    s.parse::<ThreatCategory>().map_err(|e| {
        let known: Vec<&str> = ThreatCategory::ALL.iter().map(|c| c.as_str()).collect();
        format!("{e}; expected one of: {}", known.join(", "))
    })
}

/// The shortest and longest poll intervals `watch` accepts: faster would only load the
/// daemon, slower would not be "live".
const MIN_INTERVAL: Duration = Duration::from_millis(50);
const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// Parses `250ms`, `2s`, `1.5s` or a bare number of seconds.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, scale_ms) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (s, 1000.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 500ms, 2s or 1.5"))?;
    let ms = value * scale_ms;
    // Checked as a float first: `Duration::from_secs_f64` panics on huge or NaN input.
    let in_range = ms >= MIN_INTERVAL.as_millis() as f64 && ms <= MAX_INTERVAL.as_millis() as f64;
    if !in_range {
        return Err(format!(
            "interval must be between {}ms and {}s",
            MIN_INTERVAL.as_millis(),
            MAX_INTERVAL.as_secs()
        ));
    }
    Ok(Duration::from_secs_f64(ms / 1000.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_with_units_and_bounds() {
        assert_eq!(parse_interval("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_interval("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_interval("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_interval("10ms").is_err());
        assert!(parse_interval("-1").is_err());
        assert!(parse_interval("NaN").is_err());
        assert!(parse_interval("2h").is_err());
        assert!(parse_interval("").is_err());
        assert!(parse_interval("99999").is_err());
        assert!(parse_interval("1e300").is_err());
        assert!(parse_interval("inf").is_err());
    }

    #[test]
    fn syntax_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
