//! Deterministic snapshot export: the forensic state as canonical JSON bytes and their
//! SHA-256, so two exports of the same state are byte-identical and a third party can
//! recompute the hash offline.
//!
//! "State" here is what Tracehound holds as evidence and what its audit trail commits
//! to, nothing that moves with traffic or the clock:
//!
//! * the quarantine's evidence metadata (signature, hash, category, severity, stored size,
//!   capture time, compression), sorted by signature, never the payload bytes;
//! * the in-memory audit chain's length and head hash;
//! * with a durable ledger, its acknowledged tree size and root and the latest signed
//!   checkpoint (size, root, note text: Ed25519 signatures are deterministic, so the same
//!   checkpoint has the same note);
//! * the effective configuration that shapes that state, as a JSON object given by the
//!   caller, and its SHA-256.
//!
//! Counters, rate-limit windows, uptime and "exported at" times are deliberately left out
//! (they are in the daemon's `Stats` and `Snapshot` answers): clean traffic and reads
//! must not change the export.
//!
//! The bytes are v1's canonical JSON ([`crate::canonical`]): keys sorted by UTF-16 code
//! units, no whitespace, ECMAScript number formatting (integers print without a decimal
//! point; counts above 2^53 would lose precision and cannot occur in practice). Evidence
//! order depends only on the evidence itself, never on insertion order or hash-map
//! iteration.
//!
//! ```
//! use tracehound_core::audit::ChainHash;
//! use tracehound_core::snapshot_export::{export, verify, AuditFacts, SnapshotState};
//!
//! let state = SnapshotState {
//!     evidence: Vec::new(),
//!     audit: AuditFacts { length: 0, head: ChainHash::GENESIS },
//!     ledger: None,
//!     settings: serde_json::json!({"quarantine": {"max_count": 10}}),
//! };
//! let a = export(&state)?;
//! assert_eq!(a.bytes, export(&state)?.bytes);
//! assert_eq!(verify(&a.bytes)?.sha256, a.sha256);
//! # Ok::<(), tracehound_core::snapshot_export::SnapshotError>(())
//! ```

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::audit::ChainHash;
use crate::canonical::canonical_json;
use crate::evidence::EvidenceHandle;
use crate::quarantine::Quarantine;
use crate::types::Severity;

mod verify;
pub use verify::verify;

/// `format` of a snapshot export.
pub const SNAPSHOT_FORMAT: &str = "tracehound-snapshot-v1";
/// Largest export: it must fit in one `ExportSnapshot` reply, whose gRPC message limit is
/// 64 MiB on both the daemon and the client (4 KiB are left for the hash and framing).
/// At roughly 300 bytes per entry that is over 200,000 entries; a full default
/// quarantine (10,000) is far smaller. [`verify`] refuses anything larger.
pub const MAX_SNAPSHOT_BYTES: usize = (64 << 20) - 4096;

/// Metadata of one held piece of evidence; never its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct EvidenceFacts {
    /// `"{category}:{sha256hex}"`.
    pub signature: String,
    /// Lowercase hex SHA-256 of the canonical payload.
    pub hash: String,
    /// Severity given by the detector.
    pub severity: Severity,
    /// Stored size in bytes.
    pub size: u64,
    /// Capture time, ms since the epoch (non-finite values export as `null`).
    pub captured_ms: f64,
    /// Whether the stored bytes are compressed.
    pub compressed: bool,
}

impl EvidenceFacts {
    /// The metadata of a handle.
    pub fn from_handle(h: &EvidenceHandle) -> EvidenceFacts {
        EvidenceFacts {
            signature: h.signature().to_owned(),
            hash: h.hash().to_owned(),
            severity: h.severity(),
            size: h.size() as u64,
            captured_ms: h.captured(),
            compressed: h.compressed(),
        }
    }

    /// The category part of the signature (empty if the signature has no `:`).
    pub fn category(&self) -> &str {
        self.signature.split_once(':').map_or("", |(c, _)| c)
    }

    fn to_json(&self) -> Value {
        json!({
            "signature": self.signature,
            "hash": self.hash,
            "category": self.category(),
            "severity": self.severity.as_str(),
            "size": self.size,
            // serde_json has no NaN: a non-finite time becomes null, deterministically.
            "captured_ms": self.captured_ms,
            "compressed": self.compressed,
        })
    }
}

/// The in-memory audit chain's length and head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditFacts {
    /// Records in the chain.
    pub length: u64,
    /// Hash of the last record (genesis when empty).
    pub head: ChainHash,
}

/// A signed checkpoint of the durable ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointFacts {
    /// Tree size it covers.
    pub size: u64,
    /// Root hash at that size.
    pub root: [u8; 32],
    /// The signed note text.
    pub note: String,
}

/// The durable ledger's committed state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerFacts {
    /// Acknowledged (durable) entries.
    pub size: u64,
    /// RFC 6962 root at `size`.
    pub root: [u8; 32],
    /// The latest signed checkpoint, if one was signed.
    pub checkpoint: Option<CheckpointFacts>,
}

/// Everything an export covers.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotState {
    /// Held evidence, in any order (the export sorts it).
    pub evidence: Vec<EvidenceFacts>,
    /// The in-memory audit chain.
    pub audit: AuditFacts,
    /// The durable ledger, when there is one.
    pub ledger: Option<LedgerFacts>,
    /// The effective configuration that shapes the state (a JSON object; no secrets).
    pub settings: Value,
}

/// Canonical bytes and their SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotExport {
    /// Canonical JSON, UTF-8.
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes`.
    pub sha256: [u8; 32],
}

impl SnapshotExport {
    /// `sha256` as lowercase hex.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

/// What [`verify`] established about an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSnapshot {
    /// SHA-256 of the bytes.
    pub sha256: [u8; 32],
    /// Pieces of evidence listed.
    pub evidence: u64,
    /// The audit chain length recorded.
    pub audit_length: u64,
    /// The ledger's acknowledged size, if the export has a ledger.
    pub ledger_size: Option<u64>,
    /// The ledger facts as recorded (size, root, checkpoint note) — the part a verifier
    /// key can anchor, see [`verify`].
    pub ledger: Option<LedgerFacts>,
}

/// Why an export could not be produced or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The state or the text cannot be canonicalized (not JSON, too deep, ...).
    #[error("not canonical JSON: {0}")]
    Canonical(String),
    /// The text is JSON but not in canonical form (so its hash is not the export's).
    #[error("the bytes are not in canonical form")]
    NotCanonical,
    /// Larger than [`MAX_SNAPSHOT_BYTES`].
    #[error("larger than any snapshot export")]
    TooLarge,
    /// `format` is missing or not [`SNAPSHOT_FORMAT`].
    #[error("not a {SNAPSHOT_FORMAT} export")]
    Format,
    /// A member is missing or has the wrong type.
    #[error("malformed snapshot: {0}")]
    Shape(&'static str),
    /// `config.sha256` is not the hash of `config.settings`.
    #[error("config.sha256 is not the SHA-256 of config.settings")]
    ConfigDigest,
    /// Evidence is not sorted by signature.
    #[error("evidence list is not sorted by signature")]
    Order,
    /// Two evidence entries have the same signature (a quarantine holds each once).
    #[error("evidence list holds signature {0} twice")]
    Duplicate(String),
    /// An evidence entry is malformed or disagrees with itself (signature is not
    /// `category:hash`, hash is not 64 lowercase hex digits, unknown severity, ...).
    #[error("evidence[{index}]: {reason}")]
    Entry {
        /// Position in the list.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// `quarantine.count`, `.bytes` or `.by_severity` is not what the entries add up to.
    #[error("quarantine.{0} disagrees with the evidence list")]
    Summary(&'static str),
    /// The ledger's checkpoint is past its acknowledged size, or names another root at
    /// the same size.
    #[error("ledger checkpoint is inconsistent with the ledger head: {0}")]
    Checkpoint(&'static str),
    /// The document carries members an export never has (re-exporting its content does
    /// not give the same bytes).
    #[error("the document is not what exporting its own content gives")]
    Inconsistent,
}

fn canonical(value: &Value) -> Result<String, SnapshotError> {
    canonical_json(value).map_err(|e| SnapshotError::Canonical(e.message().to_owned()))
}

/// The quarantine's evidence and audit facts, read under one lock so they agree.
///
/// Only `Arc` clones of the handles and the chain's head are taken under the lock
/// (O(n) pointer copies, no allocation per entry beyond the vector); the strings are
/// copied and sorted after it is released, so intercepts wait for as little as possible.
pub fn quarantine_state(q: &Quarantine) -> (Vec<EvidenceFacts>, AuditFacts) {
    let (handles, audit) = q.with_store(|s| {
        let audit = AuditFacts {
            length: s.audit().len() as u64,
            head: s.audit().last_hash(),
        };
        (s.eviction_order(), audit)
    });
    let evidence = handles.iter().map(EvidenceFacts::from_handle).collect();
    (evidence, audit)
}

/// The canonical export of `state`. Pure: same state, same bytes.
pub fn export(state: &SnapshotState) -> Result<SnapshotExport, SnapshotError> {
    // Sort by signature, ties (impossible in one quarantine) by the entry's own canonical
    // text, so the order is a function of the set of entries alone.
    let mut entries: Vec<(&str, String, Value)> = state
        .evidence
        .iter()
        .map(|e| {
            let v = e.to_json();
            canonical(&v).map(|text| (e.signature.as_str(), text, v))
        })
        .collect::<Result<_, _>>()?;
    entries.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let mut by_severity = Map::new();
    for sev in Severity::ALL {
        let n = state.evidence.iter().filter(|e| e.severity == sev).count();
        by_severity.insert(sev.as_str().to_owned(), json!(n));
    }
    let bytes: u64 = state.evidence.iter().map(|e| e.size).sum();
    let settings_text = canonical(&state.settings)?;
    let ledger = state.ledger.as_ref().map_or(Value::Null, |l| {
        json!({
            "size": l.size,
            "root": hex::encode(l.root),
            "checkpoint": l.checkpoint.as_ref().map_or(Value::Null, |c| json!({
                "size": c.size,
                "root": hex::encode(c.root),
                "note": c.note,
            })),
        })
    });
    let doc = json!({
        "format": SNAPSHOT_FORMAT,
        "evidence": entries.into_iter().map(|(_, _, v)| v).collect::<Vec<_>>(),
        "quarantine": {
            "count": state.evidence.len(),
            "bytes": bytes,
            "by_severity": by_severity,
        },
        "audit": {"length": state.audit.length, "head": state.audit.head.to_hex()},
        "ledger": ledger,
        "config": {
            "settings": state.settings,
            "sha256": hex::encode(Sha256::digest(settings_text.as_bytes())),
        },
    });
    let bytes = canonical(&doc)?.into_bytes();
    let sha256 = Sha256::digest(&bytes).into();
    Ok(SnapshotExport { bytes, sha256 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(sig_hex: char, severity: Severity, captured: f64) -> EvidenceFacts {
        let hash: String = std::iter::repeat_n(sig_hex, 64).collect();
        EvidenceFacts {
            signature: format!("injection:{hash}"),
            hash,
            severity,
            size: 10,
            captured_ms: captured,
            compressed: false,
        }
    }

    fn state(evidence: Vec<EvidenceFacts>) -> SnapshotState {
        SnapshotState {
            evidence,
            audit: AuditFacts {
                length: 3,
                head: ChainHash([7; 32]),
            },
            ledger: Some(LedgerFacts {
                size: 3,
                root: [1; 32],
                checkpoint: Some(CheckpointFacts {
                    size: 3,
                    root: [1; 32],
                    note: "o\n3\nAQ==\n\n\u{2014} k x\n".to_owned(),
                }),
            }),
            settings: json!({"quarantine": {"max_count": 5, "max_bytes": 100}}),
        }
    }

    #[test]
    fn export_is_canonical_sorted_and_verifies() {
        let s = state(vec![
            facts('b', Severity::High, 2.0),
            facts('a', Severity::Low, 1e12),
        ]);
        let e = export(&s).unwrap();
        let text = String::from_utf8(e.bytes.clone()).unwrap();
        assert!(text.starts_with("{\"audit\":{\"head\":\"0707"), "{text}");
        assert!(text.find(&"a".repeat(64)) < text.find(&"b".repeat(64)));
        assert!(text.contains("\"captured_ms\":1000000000000,"), "{text}");
        let v = verify(&e.bytes).unwrap();
        assert_eq!((v.sha256, v.evidence, v.audit_length), (e.sha256, 2, 3));
        assert_eq!(v.ledger_size, Some(3));
    }

    #[test]
    fn any_change_of_state_changes_the_hash() {
        let base = export(&state(vec![facts('a', Severity::Low, 1.0)])).unwrap();
        let mut changed = Vec::new();
        let mut s = state(vec![facts('a', Severity::High, 1.0)]);
        changed.push(s.clone());
        s.evidence[0].severity = Severity::Low;
        s.audit.length = 4;
        changed.push(s.clone());
        s.audit.length = 3;
        s.ledger = None;
        changed.push(s.clone());
        let mut s = state(vec![facts('a', Severity::Low, 1.0)]);
        s.settings = json!({"quarantine": {"max_count": 6, "max_bytes": 100}});
        changed.push(s);
        changed.push(state(vec![facts('a', Severity::Low, 1.5)]));
        changed.push(state(vec![]));
        for c in changed {
            assert_ne!(export(&c).unwrap().sha256, base.sha256, "{c:?}");
        }
    }

    #[test]
    fn altered_or_reformatted_exports_are_rejected() {
        let e = export(&state(vec![facts('a', Severity::Low, 1.0)])).unwrap();
        let text = String::from_utf8(e.bytes).unwrap();
        let spaced = text.replacen(':', ": ", 1);
        assert_eq!(verify(spaced.as_bytes()), Err(SnapshotError::NotCanonical));
        let digest = text.replace("\"max_count\":5", "\"max_count\":7");
        assert_eq!(verify(digest.as_bytes()), Err(SnapshotError::ConfigDigest));
        let format = text.replace(SNAPSHOT_FORMAT, "tracehound-snapshot-v0");
        assert_eq!(verify(format.as_bytes()), Err(SnapshotError::Format));
        assert!(verify(b"").is_err());
        assert!(verify(b"[1,2]").is_err());
        assert!(verify(&[0xff, 0xfe]).is_err());
    }
}
