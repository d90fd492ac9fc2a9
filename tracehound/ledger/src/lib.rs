//! Tracehound's durable audit log: append-only segments, an RFC 6962 Merkle tree, proofs
//! and signed checkpoints.
//!
//! A [`Ledger`] is a directory of segment files ([`frame`] has the byte layout). Each
//! entry is one v1 audit record ([`record`]), chained to the previous one with v1's
//! SHA-256 chain, and also a leaf of an RFC 6962 Merkle tree ([`merkle`]), so any entry
//! can be proved included in a signed [`checkpoint`] and any two checkpoints proved
//! consistent. [`bundle`] packages proofs and checkpoints as JSON for the CLI.
//!
//! Durability: appends are written with one `write` and made durable per the
//! [`FsyncPolicy`]; an entry is *acknowledged* once an fsync covering it returned. On
//! open, a torn tail in the last segment is truncated and reported ([`OpenReport`]);
//! damage anywhere else is an error. The tree's node store is rebuilt in memory on open
//! from the leaf hashes in the frames (about 64 bytes per entry); nothing else is
//! persisted besides the segments.
//!
//! Verification re-reads every segment from genesis. A ledger shared behind a lock can
//! be verified without holding up the writer: capture a [`VerifySnapshot`] with
//! [`Ledger::verify_snapshot`] under the lock, release it, then [`VerifySnapshot::run`]
//! checks the files up to the captured size while appends go on.
//!
//! ```
//! use tracehound_core::audit::RecordKind;
//! use tracehound_ledger::{merkle, Ledger, LedgerConfig, NewRecord};
//!
//! let dir = tempfile::tempdir()?;
//! let (mut log, _report) = Ledger::open(dir.path(), LedgerConfig::default())?;
//! for i in 0..5 {
//!     let id = format!("rec-{i}");
//!     log.append(&NewRecord { kind: RecordKind::Neutralization, id: &id, signature: "ddos:00", timestamp: 1.0 })?;
//! }
//! let root = log.root(5)?;
//! let proof = log.inclusion_proof(3, 5)?;
//! let leaf = merkle::leaf_hash(&log.entry(3)?);
//! assert!(merkle::verify_inclusion(&leaf, 3, 5, &proof, &root).is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bundle;
pub mod checkpoint;
mod error;
pub mod frame;
pub mod incident;
mod ledger;
pub mod merkle;
pub mod record;
mod segment;

pub use bundle::{
    verify_consistency_bundle, verify_inclusion_bundle, BundleError, ConsistencyBundle,
    InclusionBundle, VerifiedInclusion,
};
pub use checkpoint::{Checkpoint, CheckpointError, CheckpointSigner, CheckpointVerifier};
pub use error::LedgerError;
pub use incident::{verify_incident_record, IncidentError, IncidentRecord, VerifiedIncident};
pub use ledger::{
    FsyncPolicy, Ledger, LedgerConfig, OpenReport, Receipt, TornTail, VerifyReport, VerifySnapshot,
};
pub use record::NewRecord;
