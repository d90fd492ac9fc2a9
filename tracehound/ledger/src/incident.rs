//! Incident records: a payload-less, self-contained descriptor of one piece of evidence
//! that a third party verifies offline with only the log's verifier key.
//!
//! The daemon appends an audit record of type `incident` for the evidence (v1's chain
//! shape: the chain hash covers `id`, `signature`, `timestamp` and `previousHash`). The
//! record binds the descriptor:
//!
//! * `signature` is the evidence signature (`category:hash`);
//! * `timestamp` is `times.recorded_ms`;
//! * `id` is `inc-` + SHA-256 (hex) of the canonical JSON of the `evidence` object, so
//!   severity, size and capture time are covered by the chain hash too.
//!
//! The audit entry is proved included in the ledger's Merkle tree at `proof.tree_size`,
//! whose root a checkpoint signed by the log's key names. The descriptor itself is v1's
//! canonical JSON (sorted keys, no whitespace), pretty much like this:
//!
//! ```json
//! {"audit":{"index":4,"leaf_hash":"<hex>","record":"{\"id\":\"inc-…\",\"type\":\"incident\",…}"},
//!  "checkpoint":"tracehoundd/audit\n5\n<base64 root>\n\n— tracehoundd <base64>\n",
//!  "evidence":{"captured_ms":1700000000000,"category":"injection","hash":"<hex>",
//!              "severity":"high","signature":"injection:<hex>","size":17},
//!  "format":"tracehound-incident-v1",
//!  "proof":{"inclusion_path":["<hex>",…],"root_hash":"<hex>","tree_size":5},
//!  "times":{"captured_ms":1700000000000,"recorded_ms":1700000000123},
//!  "verifier":{"key":"tracehoundd+<id>+<base64>","key_id":"<8 hex>","name":"tracehoundd"}}
//! ```
//!
//! [`verify_incident_record`] checks, in order: the size, strict parsing, canonical form
//! (so no byte can change without changing what is verified), the format, that the named
//! verifier key is the one given, lowercase hex everywhere, the evidence fields'
//! consistency, then the audit entry, inclusion path and checkpoint signature through
//! [`verify_inclusion_bundle`], and finally that the entry is an `incident` record whose
//! signature, timestamp and id match the descriptor. It never panics on any input.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracehound_core::audit::{ChainHash, RecordKind};
use tracehound_core::canonical::canonical_json;
use tracehound_core::types::{Severity, ThreatCategory};

use crate::bundle::{
    verify_inclusion_bundle, BundleError, InclusionBundle, VerifiedInclusion, INCLUSION_FORMAT,
};
use crate::checkpoint::CheckpointVerifier;

/// `format` of an [`IncidentRecord`].
pub const INCIDENT_FORMAT: &str = "tracehound-incident-v1";
/// Largest descriptor accepted (a proof has at most 64 hashes; this is generous).
pub const MAX_INCIDENT_BYTES: usize = 1 << 20;
/// Prefix of an incident audit record's id.
pub const INCIDENT_ID_PREFIX: &str = "inc-";

/// The evidence an incident is about: metadata only, never payload bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentEvidence {
    /// `"{category}:{hash}"`.
    pub signature: String,
    /// Lowercase hex SHA-256 of the canonical payload.
    pub hash: String,
    /// v1 category name.
    pub category: String,
    /// v1 severity name.
    pub severity: String,
    /// Stored size in bytes.
    pub size: u64,
    /// Capture time, ms since the epoch.
    pub captured_ms: f64,
}

/// When things happened (ms since the epoch, the daemon's clock).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentTimes {
    /// The evidence's capture time (equal to `evidence.captured_ms`).
    pub captured_ms: f64,
    /// When the incident was recorded: the audit record's timestamp.
    pub recorded_ms: f64,
}

/// The audit entry that binds the descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentAudit {
    /// Ledger entry index (0-based).
    pub index: u64,
    /// The entry bytes: one audit record as JSON text (v1's export form).
    pub record: String,
    /// `SHA-256(0x00 ‖ record)`, lowercase hex.
    pub leaf_hash: String,
}

/// The RFC 6962 inclusion proof of the entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentProof {
    /// Tree size the proof is for (the checkpoint's size).
    pub tree_size: u64,
    /// Tree head at `tree_size`, lowercase hex.
    pub root_hash: String,
    /// Sibling hashes from the leaf up, lowercase hex.
    pub inclusion_path: Vec<String>,
}

/// The checkpoint key the descriptor claims; verification requires the caller's key to
/// be this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentVerifier {
    /// Key name.
    pub name: String,
    /// Key id, 8 lowercase hex digits.
    pub key_id: String,
    /// The verifier key, `<name>+<key id>+<base64(0x01 ‖ key)>`.
    pub key: String,
}

/// The whole descriptor (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentRecord {
    /// Always [`INCIDENT_FORMAT`].
    pub format: String,
    /// The evidence.
    pub evidence: IncidentEvidence,
    /// Times.
    pub times: IncidentTimes,
    /// The binding audit entry.
    pub audit: IncidentAudit,
    /// Its inclusion proof.
    pub proof: IncidentProof,
    /// The signed checkpoint (signed note) at `proof.tree_size`.
    pub checkpoint: String,
    /// The checkpoint key.
    pub verifier: IncidentVerifier,
}

/// Why an incident record was refused or could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IncidentError {
    /// Not JSON of the descriptor's shape, or too large.
    #[error("malformed incident record: {0}")]
    Malformed(String),
    /// Valid JSON but not in canonical form.
    #[error("the incident record is not in canonical form (it was altered or reformatted)")]
    NotCanonical,
    /// `format` is not [`INCIDENT_FORMAT`].
    #[error("unknown incident record format")]
    Format,
    /// The descriptor names another key than the one given, or its key fields disagree.
    #[error("the record names verifier key {0}, not the key given")]
    KeyMismatch(String),
    /// A hash field is not 64 lowercase hex digits.
    #[error("field {0} is not 64 lowercase hex digits")]
    Hash(&'static str),
    /// The evidence fields contradict each other (signature, category, hash, names).
    #[error("evidence fields are inconsistent: {0}")]
    Evidence(&'static str),
    /// The audit entry, proof or checkpoint does not verify.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The audit entry does not bind these evidence fields and times.
    #[error("the audit record does not bind this incident: {0}")]
    Binding(&'static str),
}

/// What a verified incident record established.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedIncident {
    /// The evidence, as bound by the audit record.
    pub evidence: IncidentEvidence,
    /// When the incident was recorded.
    pub recorded_ms: f64,
    /// Ledger entry index, tree size and root, record hash.
    pub inclusion: VerifiedInclusion,
    /// The audit record's chain hash.
    pub record_hash: ChainHash,
}

fn canonical<T: Serialize>(value: &T) -> Result<String, IncidentError> {
    let value = serde_json::to_value(value).map_err(|e| IncidentError::Malformed(e.to_string()))?;
    canonical_json(&value).map_err(|e| IncidentError::Malformed(e.message().to_owned()))
}

/// The audit record id that binds `evidence`: `inc-` + SHA-256 of its canonical JSON.
pub fn incident_id(evidence: &IncidentEvidence) -> Result<String, IncidentError> {
    if !evidence.captured_ms.is_finite() {
        return Err(IncidentError::Evidence("captured_ms is not finite"));
    }
    let text = canonical(evidence)?;
    Ok(format!(
        "{INCIDENT_ID_PREFIX}{}",
        hex::encode(Sha256::digest(text.as_bytes()))
    ))
}

fn key_id_of(key: &str) -> &str {
    key.split('+').nth(1).unwrap_or_default()
}

impl IncidentRecord {
    /// Assembles a descriptor from the evidence, the audit entry's inclusion bundle (with
    /// its checkpoint) and the log's verifier.
    pub fn new(
        evidence: IncidentEvidence,
        recorded_ms: f64,
        bundle: &InclusionBundle,
        verifier: &CheckpointVerifier,
    ) -> Result<IncidentRecord, IncidentError> {
        let checkpoint = bundle
            .checkpoint
            .clone()
            .ok_or(BundleError::MissingCheckpoint)?;
        let key = verifier.to_verifier_key();
        Ok(IncidentRecord {
            format: INCIDENT_FORMAT.to_owned(),
            times: IncidentTimes {
                captured_ms: evidence.captured_ms,
                recorded_ms,
            },
            evidence,
            audit: IncidentAudit {
                index: bundle.index,
                record: bundle.entry.clone(),
                leaf_hash: bundle.leaf_hash.clone(),
            },
            proof: IncidentProof {
                tree_size: bundle.tree_size,
                root_hash: bundle.root_hash.clone(),
                inclusion_path: bundle.inclusion_path.clone(),
            },
            checkpoint,
            verifier: IncidentVerifier {
                name: verifier.name().to_owned(),
                key_id: key_id_of(&key).to_owned(),
                key,
            },
        })
    }

    /// The canonical JSON text (what is kept, handed over and verified).
    pub fn to_canonical_json(&self) -> Result<String, IncidentError> {
        canonical(self)
    }

    /// The inclusion bundle inside the descriptor, for the ledger's own verifier.
    pub fn inclusion_bundle(&self) -> InclusionBundle {
        InclusionBundle {
            format: INCLUSION_FORMAT.to_owned(),
            index: self.audit.index,
            tree_size: self.proof.tree_size,
            entry: self.audit.record.clone(),
            leaf_hash: self.audit.leaf_hash.clone(),
            inclusion_path: self.proof.inclusion_path.clone(),
            root_hash: self.proof.root_hash.clone(),
            checkpoint: Some(self.checkpoint.clone()),
        }
    }
}

fn lower_hex(field: &'static str, text: &str, len: usize) -> Result<(), IncidentError> {
    let ok = text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if ok {
        Ok(())
    } else {
        Err(IncidentError::Hash(field))
    }
}

fn check_evidence(e: &IncidentEvidence, times: &IncidentTimes) -> Result<(), IncidentError> {
    e.category
        .parse::<ThreatCategory>()
        .map_err(|_| IncidentError::Evidence("unknown category"))?;
    e.severity
        .parse::<Severity>()
        .map_err(|_| IncidentError::Evidence("unknown severity"))?;
    if e.signature != format!("{}:{}", e.category, e.hash) {
        return Err(IncidentError::Evidence("signature is not category:hash"));
    }
    if !e.captured_ms.is_finite() || !times.recorded_ms.is_finite() {
        return Err(IncidentError::Evidence("a time is not finite"));
    }
    if times.captured_ms.to_bits() != e.captured_ms.to_bits() {
        return Err(IncidentError::Evidence(
            "times.captured_ms differs from evidence.captured_ms",
        ));
    }
    Ok(())
}

/// Verifies a descriptor (JSON text) against the log's verifier key; see the module
/// docs for what is checked. One trailing newline is allowed.
pub fn verify_incident_record(
    text: &str,
    verifier: &CheckpointVerifier,
) -> Result<VerifiedIncident, IncidentError> {
    if text.len() > MAX_INCIDENT_BYTES {
        return Err(IncidentError::Malformed(
            "larger than any incident record".to_owned(),
        ));
    }
    let body = text.strip_suffix('\n').unwrap_or(text);
    let record: IncidentRecord =
        serde_json::from_str(body).map_err(|e| IncidentError::Malformed(e.to_string()))?;
    if record.to_canonical_json()? != body {
        return Err(IncidentError::NotCanonical);
    }
    if record.format != INCIDENT_FORMAT {
        return Err(IncidentError::Format);
    }
    let expected = verifier.to_verifier_key();
    let v = &record.verifier;
    if v.key != expected || v.name != verifier.name() || v.key_id != key_id_of(&expected) {
        return Err(IncidentError::KeyMismatch(v.key.clone()));
    }
    lower_hex("evidence.hash", &record.evidence.hash, 64)?;
    lower_hex("audit.leaf_hash", &record.audit.leaf_hash, 64)?;
    lower_hex("proof.root_hash", &record.proof.root_hash, 64)?;
    for h in &record.proof.inclusion_path {
        lower_hex("proof.inclusion_path", h, 64)?;
    }
    check_evidence(&record.evidence, &record.times)?;
    let bundle = serde_json::to_string(&record.inclusion_bundle())
        .map_err(|e| IncidentError::Malformed(e.to_string()))?;
    let inclusion = verify_inclusion_bundle(&bundle, Some(verifier))?;
    let r = &inclusion.record;
    if r.kind != RecordKind::Incident {
        return Err(IncidentError::Binding(
            "the audit record is not an incident",
        ));
    }
    if r.signature != record.evidence.signature {
        return Err(IncidentError::Binding("signature differs"));
    }
    if r.timestamp.to_bits() != record.times.recorded_ms.to_bits() {
        return Err(IncidentError::Binding(
            "timestamp differs from times.recorded_ms",
        ));
    }
    if r.id != incident_id(&record.evidence)? {
        return Err(IncidentError::Binding(
            "id is not the digest of the evidence fields",
        ));
    }
    let record_hash = r.hash;
    Ok(VerifiedIncident {
        recorded_ms: record.times.recorded_ms,
        evidence: record.evidence,
        inclusion,
        record_hash,
    })
}
