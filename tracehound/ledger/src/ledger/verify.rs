//! Full verification: re-reading the segments from genesis and checking framing, v1's
//! chain, the leaf hashes and the tree head.
//!
//! [`Ledger::verify`] does it under `&self`. [`Ledger::verify_snapshot`] captures, in
//! O(segments + log n), what verification needs (each segment's path and length, the
//! entry count, the tree head and the chain head at that count) so that the owner can
//! release its lock and let the writer go on appending while [`VerifySnapshot::run`]
//! reads the files. That is sound because segment files are append-only while a
//! [`Ledger`] is open: bytes below a captured length are never rewritten, a new frame is
//! only written past it, and the only truncation or removal of segment data happens in
//! [`Ledger::open`], before any `Ledger` value exists (see the `open` module).

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use tracehound_core::audit::ChainHash;

use super::Ledger;
use crate::error::LedgerError;
use crate::frame::{decode_segment_header, scan_frames, ScanEnd, SEGMENT_HEADER_LEN};
use crate::merkle::{empty_root, Hash, MerkleTree};
use crate::record::{decode_entry, record_hash_ok};
use crate::segment;

/// The result of [`Ledger::verify`] and [`VerifySnapshot::run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries checked.
    pub entries: u64,
    /// The tree head recomputed from the files (equal to the in-memory one).
    pub root: Hash,
    /// The chain hash of the last record.
    pub last_hash: ChainHash,
}

/// One segment as captured: the bytes `0..bytes` of `path` hold exactly `entries`
/// complete frames.
#[derive(Debug, Clone)]
struct Extent {
    first_index: u64,
    path: PathBuf,
    entries: u64,
    bytes: u64,
}

/// Everything needed to verify the first [`size`](Self::size) entries of a ledger without
/// access to the [`Ledger`] itself; made by [`Ledger::verify_snapshot`].
///
/// Entries appended after the capture are not part of the result: each segment is read
/// only up to the length it had then, and segments created since are not read. Bytes
/// past a captured length (a frame being written, or a partial frame left by a failed
/// write) are therefore never looked at and never an error. Damage inside the captured
/// prefix is reported exactly as [`Ledger::verify`] reports it, except that a leaf whose
/// file bytes differ from the in-memory tree shows up as a broken chain or as a tree head
/// that differs from the captured one rather than at the leaf, since the tree is not
/// copied.
#[derive(Debug, Clone)]
pub struct VerifySnapshot {
    segments: Vec<Extent>,
    size: u64,
    root: Hash,
    last_hash: ChainHash,
}

impl VerifySnapshot {
    /// Number of entries the snapshot covers.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The in-memory tree head at [`size`](Self::size), which the files must reproduce.
    pub fn root(&self) -> Hash {
        self.root
    }

    /// The chain hash of entry `size - 1` (genesis when empty), which the files must end
    /// with.
    pub fn last_hash(&self) -> ChainHash {
        self.last_hash
    }

    /// Re-reads the captured prefix of every captured segment and checks everything
    /// [`Ledger::verify`] checks: segment headers, framing and checksums, that each entry
    /// is a record whose hash matches its contents and whose `previousHash` links to the
    /// record before it (from genesis), that each segment holds the captured number of
    /// entries, and that the tree rebuilt from the files has the captured head. Needs no
    /// lock: run it while the ledger keeps appending. The report's `entries` is
    /// [`size`](Self::size).
    pub fn run(&self) -> Result<VerifyReport, LedgerError> {
        check(self, None, false)
    }
}

impl Ledger {
    /// Captures what [`VerifySnapshot::run`] needs to verify the entries appended so far
    /// (every entry whose write has returned, acknowledged or not: a reader on the same
    /// system sees them whether or not they were synced). Cheap: a copy of each segment's
    /// path and length and one tree-head computation, O(segments + log² n), no I/O. Take
    /// it under the owner's lock, release the lock, then run it.
    pub fn verify_snapshot(&self) -> VerifySnapshot {
        let size = self.len();
        VerifySnapshot {
            segments: self
                .segments
                .iter()
                .map(|s| Extent {
                    first_index: s.first_index,
                    path: s.path.clone(),
                    entries: s.offsets.len() as u64,
                    bytes: s.bytes,
                })
                .collect(),
            size,
            // `size` is the tree's own length, so the head exists; the empty root stands
            // in only for an impossible `None` (and would then fail the comparison).
            root: self.tree.root(size).unwrap_or_else(empty_root),
            last_hash: self.last_hash,
        }
    }

    /// Re-reads every segment and checks everything: framing and checksums, that each
    /// entry is a record whose hash matches its contents and whose `previousHash` links to
    /// the record before it (v1's chain, from genesis), that the leaf hashes equal the
    /// tree's, and that a tree rebuilt from the files has the same head. Whole files are
    /// read, so bytes past the last entry are an error here. It reads every segment while
    /// `&self` is borrowed: an owner that shares the ledger behind a lock should use
    /// [`verify_snapshot`](Self::verify_snapshot) instead, so appends are not held up.
    pub fn verify(&self) -> Result<VerifyReport, LedgerError> {
        check(&self.verify_snapshot(), Some(&self.tree), true)
    }
}

/// Reads the first `len` bytes of `path`; fewer if the file is shorter.
fn read_prefix(path: &Path, len: u64) -> Result<Vec<u8>, LedgerError> {
    let file = File::open(path).map_err(LedgerError::io("opening", path))?;
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(len)
        .read_to_end(&mut bytes)
        .map_err(LedgerError::io("reading", path))?;
    Ok(bytes)
}

/// Verifies the snapshot's segments. With `tree`, every leaf is also compared with it.
/// With `whole_files`, each file is read to its end (bytes past the captured length are
/// then an error); otherwise only its captured prefix is read.
fn check(
    snap: &VerifySnapshot,
    tree: Option<&MerkleTree>,
    whole_files: bool,
) -> Result<VerifyReport, LedgerError> {
    let mut fresh = MerkleTree::new();
    let mut prev = ChainHash::GENESIS;
    let mut failure: Option<LedgerError> = None;
    for seg in &snap.segments {
        let name = segment::file_name(seg.first_index);
        let corrupt = |offset: u64, reason| LedgerError::Corrupt {
            segment: name.clone(),
            offset,
            reason,
        };
        let bytes = if whole_files {
            fs::read(&seg.path).map_err(LedgerError::io("reading", &seg.path))?
        } else {
            read_prefix(&seg.path, seg.bytes)?
        };
        if (bytes.len() as u64) < seg.bytes {
            return Err(corrupt(
                bytes.len() as u64,
                "segment shorter than the entries it held",
            ));
        }
        match decode_segment_header(&bytes) {
            Ok(first) if first == seg.first_index => {}
            Ok(_) => return Err(corrupt(8, "header index differs from the file name")),
            Err(_) => return Err(corrupt(0, "segment header damaged")),
        }
        let end = scan_frames(&bytes, SEGMENT_HEADER_LEN, |frame| {
            if failure.is_some() {
                return;
            }
            let index = fresh.push(frame.leaf);
            if let Some(tree) = tree {
                if tree.leaf(index) != Some(frame.leaf) {
                    failure = Some(LedgerError::TreeMismatch(
                        "a leaf hash differs from the file",
                    ));
                    return;
                }
            }
            match decode_entry(frame.payload) {
                Err(source) => failure = Some(LedgerError::Entry { index, source }),
                Ok(rec) if rec.previous_hash != prev => {
                    failure = Some(LedgerError::Chain {
                        index,
                        reason: "previousHash does not link to the previous record",
                    });
                }
                Ok(rec) if !record_hash_ok(&rec) => {
                    failure = Some(LedgerError::Chain {
                        index,
                        reason: "hash does not match the record's contents",
                    });
                }
                Ok(rec) => prev = rec.hash,
            }
        });
        if let Some(e) = failure.take() {
            return Err(e);
        }
        if let ScanEnd::Fault { offset, fault } = end {
            return Err(corrupt(offset as u64, fault.describe()));
        }
        if fresh.len() != seg.first_index.saturating_add(seg.entries) {
            return Err(LedgerError::TreeMismatch(
                "the files hold a different number of entries",
            ));
        }
    }
    if fresh.len() != snap.size {
        return Err(LedgerError::TreeMismatch(
            "the files hold a different number of entries",
        ));
    }
    let root = fresh
        .root(fresh.len())
        .ok_or(LedgerError::TreeMismatch("empty root"))?;
    if root != snap.root {
        return Err(LedgerError::TreeMismatch(
            "the tree head differs from a rebuilt tree",
        ));
    }
    if prev != snap.last_hash {
        return Err(LedgerError::Chain {
            index: snap.size.saturating_sub(1),
            reason: "last hash differs",
        });
    }
    Ok(VerifyReport {
        entries: fresh.len(),
        root,
        last_hash: prev,
    })
}
