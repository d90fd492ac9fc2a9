//! Command-line syntax.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tracehound_core::types::ThreatCategory;

/// Tracehound v1-compatible canonical JSON, signatures and audit-chain checks.
#[derive(Debug, Parser)]
#[command(name = "tracehound", version, about)]
pub struct Cli {
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
    /// Verify an exported audit chain (v1's JSON array of records); names the first bad record.
    VerifyChain {
        /// The exported chain (`-` reads standard input).
        file: PathBuf,
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
}

fn parse_category(s: &str) -> Result<ThreatCategory, String> {
    s.parse::<ThreatCategory>().map_err(|e| {
        let known: Vec<&str> = ThreatCategory::ALL.iter().map(|c| c.as_str()).collect();
        format!("{e}; expected one of: {}", known.join(", "))
    })
}
