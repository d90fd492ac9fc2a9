//! The ledger's error type.

use std::io;
use std::path::PathBuf;

use crate::checkpoint::CheckpointError;
use crate::merkle::ProofError;
use crate::record::EntryError;

/// Everything that can go wrong opening, appending to, reading or verifying a ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// A file-system operation failed.
    #[error("{context} {path}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A segment is damaged somewhere other than a torn tail. Never repaired silently.
    #[error("segment {segment} is corrupt at byte {offset}: {reason}")]
    Corrupt {
        /// The segment's file name.
        segment: String,
        /// Byte offset of the damage within the segment.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// An entry's bytes are not an audit record.
    #[error("entry {index}: {source}")]
    Entry {
        /// The entry index.
        index: u64,
        /// Why it does not parse.
        source: EntryError,
    },
    /// The audit hash chain is broken at `index`.
    #[error("audit chain broken at entry {index}: {reason}")]
    Chain {
        /// First bad entry.
        index: u64,
        /// What does not match.
        reason: &'static str,
    },
    /// The in-memory tree disagrees with the entries on disk.
    #[error("Merkle tree does not match the entries on disk: {0}")]
    TreeMismatch(&'static str),
    /// An entry index past the end of the log.
    #[error("no entry {index}: the log has {len}")]
    NoSuchEntry {
        /// The requested index.
        index: u64,
        /// Entries in the log.
        len: u64,
    },
    /// The record is too large to be one entry.
    #[error("entry of {0} bytes is larger than the frame limit")]
    EntryTooLarge(usize),
    /// An earlier write or fsync failed; the on-disk state is unknown until reopened.
    #[error("an earlier write failed; reopen the ledger")]
    Poisoned,
    /// The configuration is unusable.
    #[error("invalid ledger configuration: {0}")]
    Config(&'static str),
    /// A proof could not be produced.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// A checkpoint could not be produced or verified.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

impl LedgerError {
    pub(crate) fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> LedgerError {
        let path = path.into();
        move |source| LedgerError::Io {
            context,
            path,
            source,
        }
    }
}
