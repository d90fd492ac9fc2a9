//! The CLI-ready surface: proofs and checkpoints as self-contained JSON documents that a
//! third party can check offline with only the log's verifier key.
//!
//! * `tracehound audit prove INDEX` → [`Ledger::prove`] → [`InclusionBundle::to_json`]
//! * `tracehound audit verify-proof FILE [--key VKEY]` → [`verify_inclusion_bundle`]
//!   (or [`verify_consistency_bundle`] for a [`ConsistencyBundle`])
//! * `tracehound audit checkpoint` → [`Ledger::signed_checkpoint`] (signed note text);
//!   checked with [`CheckpointVerifier::verify`].
//!
//! An inclusion bundle, pretty-printed:
//!
//! ```json
//! {
//!   "format": "tracehound-inclusion-v1",
//!   "index": 5,
//!   "tree_size": 8,
//!   "entry": "{\"id\":\"…\",\"type\":\"neutralization\",…,\"hash\":\"…\"}",
//!   "leaf_hash": "<64 hex>",
//!   "inclusion_path": ["<64 hex>", "…"],
//!   "root_hash": "<64 hex>",
//!   "checkpoint": "tracehound.example/audit\n8\n<base64 root>\n\n— key <base64>\n"
//! }
//! ```
//!
//! Verification recomputes the leaf hash from `entry`, checks the entry is a v1 audit
//! record whose chain hash matches its contents, walks the inclusion path to the root,
//! and, given a verifier key, checks the checkpoint's signature and that it names the
//! same size and root. Without a key only the proof's internal consistency is shown
//! (the report says so). Malformed input is an error, never a panic.

use serde::{Deserialize, Serialize};
use tracehound_core::audit::AuditRecord;

use crate::checkpoint::{CheckpointError, CheckpointSigner, CheckpointVerifier};
use crate::error::LedgerError;
use crate::ledger::Ledger;
use crate::merkle::{
    leaf_hash, verify_consistency, verify_inclusion, Hash, ProofError, MAX_PROOF_HASHES,
};
use crate::record::{decode_entry, record_hash_ok, EntryError};

/// `format` of an [`InclusionBundle`].
pub const INCLUSION_FORMAT: &str = "tracehound-inclusion-v1";
/// `format` of a [`ConsistencyBundle`].
pub const CONSISTENCY_FORMAT: &str = "tracehound-consistency-v1";
/// Largest bundle text accepted.
pub const MAX_BUNDLE_BYTES: usize = 32 << 20;

/// Proof that one audit record is entry `index` of the log at `tree_size`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionBundle {
    /// Always [`INCLUSION_FORMAT`].
    pub format: String,
    /// Entry index (0-based).
    pub index: u64,
    /// Tree size the proof is for.
    pub tree_size: u64,
    /// The entry bytes: one v1 audit record as JSON text.
    pub entry: String,
    /// `SHA-256(0x00 ‖ entry)`, lowercase hex.
    pub leaf_hash: String,
    /// Sibling hashes from the leaf up, lowercase hex.
    pub inclusion_path: Vec<String>,
    /// Tree head at `tree_size`, lowercase hex.
    pub root_hash: String,
    /// Signed checkpoint at `tree_size`, if the log signs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
}

/// Proof that the log at `first_size` is a prefix of the log at `second_size`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyBundle {
    /// Always [`CONSISTENCY_FORMAT`].
    pub format: String,
    /// The older tree size.
    pub first_size: u64,
    /// Its tree head, lowercase hex.
    pub first_root: String,
    /// The newer tree size.
    pub second_size: u64,
    /// Its tree head, lowercase hex.
    pub second_root: String,
    /// RFC 6962 consistency proof, lowercase hex.
    pub consistency_path: Vec<String>,
}

/// Why a bundle was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// Not JSON of the bundle's shape, or larger than [`MAX_BUNDLE_BYTES`].
    #[error("malformed bundle: {0}")]
    Malformed(String),
    /// `format` is not the expected one.
    #[error("unknown bundle format")]
    Format,
    /// A hash field is not 64 hex digits.
    #[error("field {0} is not a 32-byte hex hash")]
    Hash(&'static str),
    /// `leaf_hash` is not the hash of `entry`.
    #[error("leaf_hash is not the hash of entry")]
    LeafHash,
    /// `entry` is not an audit record.
    #[error(transparent)]
    Entry(#[from] EntryError),
    /// The record's chain hash does not match its contents.
    #[error("the record's hash does not match its contents")]
    RecordHash,
    /// The proof does not verify.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// The checkpoint is missing, unsigned by the key, or badly signed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A key was given but the bundle carries no checkpoint.
    #[error("a verifier key was given but the bundle has no checkpoint")]
    MissingCheckpoint,
    /// The signed checkpoint names another size or root than the proof.
    #[error("the checkpoint does not match the proof's tree size and root")]
    CheckpointMismatch,
}

/// What a verified inclusion bundle established.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedInclusion {
    /// Entry index.
    pub index: u64,
    /// Tree size.
    pub tree_size: u64,
    /// Tree head the entry is included in.
    pub root: Hash,
    /// The record.
    pub record: AuditRecord,
    /// True if a checkpoint signed by the given key vouches for `root`; false if no key
    /// was given (then `root` is only as trustworthy as wherever the bundle came from).
    pub checkpoint_verified: bool,
}

fn to_hex(h: &Hash) -> String {
    hex::encode(h)
}

fn parse_hash(field: &'static str, text: &str) -> Result<Hash, BundleError> {
    let mut out = [0u8; 32];
    if text.len() != 64 || hex::decode_to_slice(text, &mut out).is_err() {
        return Err(BundleError::Hash(field));
    }
    Ok(out)
}

fn parse_path(field: &'static str, path: &[String]) -> Result<Vec<Hash>, BundleError> {
    if path.len() > MAX_PROOF_HASHES {
        return Err(ProofError::ProofTooLong.into());
    }
    path.iter().map(|h| parse_hash(field, h)).collect()
}

fn parse_json<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, BundleError> {
    if text.len() > MAX_BUNDLE_BYTES {
        return Err(BundleError::Malformed("bundle too large".to_owned()));
    }
    serde_json::from_str(text).map_err(|e| BundleError::Malformed(e.to_string()))
}

impl InclusionBundle {
    /// Pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

impl ConsistencyBundle {
    /// Pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

impl Ledger {
    /// The inclusion bundle of entry `index` at the acknowledged tree size, with a
    /// checkpoint signed by `signer` for `origin` if given.
    pub fn prove(
        &self,
        index: u64,
        signer: Option<(&str, &CheckpointSigner)>,
    ) -> Result<InclusionBundle, LedgerError> {
        let size = self.acknowledged();
        if index >= size {
            return Err(LedgerError::NoSuchEntry { index, len: size });
        }
        let entry = self.entry(index)?;
        let entry = String::from_utf8(entry).map_err(|_| LedgerError::Entry {
            index,
            source: EntryError::Shape("not UTF-8".to_owned()),
        })?;
        let checkpoint = match signer {
            Some((origin, signer)) => Some(self.signed_checkpoint(origin, signer)?),
            None => None,
        };
        Ok(InclusionBundle {
            format: INCLUSION_FORMAT.to_owned(),
            index,
            tree_size: size,
            leaf_hash: to_hex(&leaf_hash(entry.as_bytes())),
            entry,
            inclusion_path: self
                .inclusion_proof(index, size)?
                .iter()
                .map(to_hex)
                .collect(),
            root_hash: to_hex(&self.root(size)?),
            checkpoint,
        })
    }

    /// The consistency bundle between tree sizes `first` and `second`.
    pub fn prove_consistency(
        &self,
        first: u64,
        second: u64,
    ) -> Result<ConsistencyBundle, LedgerError> {
        Ok(ConsistencyBundle {
            format: CONSISTENCY_FORMAT.to_owned(),
            first_size: first,
            first_root: to_hex(&self.root(first)?),
            second_size: second,
            second_root: to_hex(&self.root(second)?),
            consistency_path: self
                .consistency_proof(first, second)?
                .iter()
                .map(to_hex)
                .collect(),
        })
    }
}

/// Verifies an inclusion bundle (JSON text); see the module docs for what is checked.
pub fn verify_inclusion_bundle(
    json: &str,
    verifier: Option<&CheckpointVerifier>,
) -> Result<VerifiedInclusion, BundleError> {
    let bundle: InclusionBundle = parse_json(json)?;
    if bundle.format != INCLUSION_FORMAT {
        return Err(BundleError::Format);
    }
    let leaf = parse_hash("leaf_hash", &bundle.leaf_hash)?;
    let root = parse_hash("root_hash", &bundle.root_hash)?;
    let path = parse_path("inclusion_path", &bundle.inclusion_path)?;
    if leaf_hash(bundle.entry.as_bytes()) != leaf {
        return Err(BundleError::LeafHash);
    }
    let record = decode_entry(bundle.entry.as_bytes())?;
    if !record_hash_ok(&record) {
        return Err(BundleError::RecordHash);
    }
    verify_inclusion(&leaf, bundle.index, bundle.tree_size, &path, &root)?;
    let checkpoint_verified = match (verifier, &bundle.checkpoint) {
        (None, _) => false,
        (Some(_), None) => return Err(BundleError::MissingCheckpoint),
        (Some(v), Some(note)) => {
            let cp = v.verify(note)?;
            if cp.size != bundle.tree_size || cp.root != root {
                return Err(BundleError::CheckpointMismatch);
            }
            true
        }
    };
    Ok(VerifiedInclusion {
        index: bundle.index,
        tree_size: bundle.tree_size,
        root,
        record,
        checkpoint_verified,
    })
}

/// Verifies a consistency bundle (JSON text). The roots are taken from the bundle: a
/// caller holding trusted checkpoints compares them with [`ConsistencyBundle`]'s roots.
pub fn verify_consistency_bundle(json: &str) -> Result<ConsistencyBundle, BundleError> {
    let bundle: ConsistencyBundle = parse_json(json)?;
    if bundle.format != CONSISTENCY_FORMAT {
        return Err(BundleError::Format);
    }
    let first = parse_hash("first_root", &bundle.first_root)?;
    let second = parse_hash("second_root", &bundle.second_root)?;
    let path = parse_path("consistency_path", &bundle.consistency_path)?;
    verify_consistency(
        bundle.first_size,
        bundle.second_size,
        &first,
        &second,
        &path,
    )?;
    Ok(bundle)
}
