//! The durable log: append-only segment files, an fsync policy, torn-tail recovery on
//! open, and the Merkle tree kept in step with the entries.

mod open;
mod read;
mod verify;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tracehound_core::audit::ChainHash;

use crate::error::LedgerError;
use crate::frame::{encode_frame, FRAME_OVERHEAD, MAX_ENTRY_BYTES, SEGMENT_HEADER_LEN};
use crate::merkle::{leaf_hash, Hash, MerkleTree};
use crate::record::{chain_record, encode_entry, NewRecord};
use crate::segment;

pub use open::{OpenReport, TornTail};
pub use verify::{VerifyReport, VerifySnapshot};

/// When appended entries are forced to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// `fdatasync` after every append: every returned receipt is acknowledged.
    EveryAppend,
    /// `fdatasync` once the oldest unsynced entry is this old, checked on each append and
    /// on [`Ledger::tick`] (the owner calls `tick` from a timer so a quiet log still syncs).
    Interval(Duration),
    /// `fdatasync` after every `n` appends.
    Batch(u32),
}

/// How a ledger lays out and syncs its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerConfig {
    /// A segment is closed and a new one started before a frame would take it past this
    /// size (a single larger frame still gets a segment of its own). At most 4 GiB.
    pub max_segment_bytes: u64,
    /// When appends become durable.
    pub fsync: FsyncPolicy,
}

impl Default for LedgerConfig {
    fn default() -> LedgerConfig {
        LedgerConfig {
            max_segment_bytes: 64 << 20,
            fsync: FsyncPolicy::EveryAppend,
        }
    }
}

/// What [`Ledger::append`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// Index of the new entry (0-based; the Merkle leaf index).
    pub index: u64,
    /// The record's v1 chain hash.
    pub hash: ChainHash,
    /// The entry's RFC 6962 leaf hash.
    pub leaf: Hash,
    /// True if the entry is durable: under `EveryAppend` always; under `Interval` and
    /// `Batch` only if this append triggered the sync. Otherwise the entry is acknowledged
    /// once [`Ledger::acknowledged`] exceeds `index`.
    pub acknowledged: bool,
}

/// One segment file's in-memory index.
#[derive(Debug)]
struct Segment {
    first_index: u64,
    path: PathBuf,
    /// Byte offset of each frame in the file.
    offsets: Vec<u32>,
    /// Current file length.
    bytes: u64,
}

impl Segment {
    fn name(&self) -> String {
        segment::file_name(self.first_index)
    }
}

/// A durable, verifiable audit log. Single writer: wrap it in a mutex to share it.
///
/// While it is open its segment files only grow: a frame is written past the current end
/// of the active segment and nothing below that end is ever rewritten, truncated or
/// removed (torn-tail repair happens only in [`Ledger::open`]). A reader that captured a
/// length may therefore read up to it without the lock; [`Ledger::verify_snapshot`] does
/// that for full verification.
#[derive(Debug)]
pub struct Ledger {
    dir: PathBuf,
    config: LedgerConfig,
    /// Never empty after open; the last one is the active segment.
    segments: Vec<Segment>,
    active: File,
    tree: MerkleTree,
    last_hash: ChainHash,
    /// Entries known durable (`fdatasync` returned after they were written).
    acked: u64,
    unsynced_since: Option<Instant>,
    poisoned: bool,
    payload: Vec<u8>,
    frame: Vec<u8>,
}

impl Ledger {
    /// Opens (creating if needed) the ledger in `dir`. Every segment's framing and order
    /// are checked; only a torn tail of the last segment (what a crash leaves) is
    /// repaired, and each repair is listed in the [`OpenReport`].
    pub fn open(
        dir: impl AsRef<Path>,
        config: LedgerConfig,
    ) -> Result<(Ledger, OpenReport), LedgerError> {
        open::open(dir.as_ref(), config)
    }

    /// The directory holding the segments.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of entries (acknowledged or not).
    pub fn len(&self) -> u64 {
        self.tree.len()
    }

    /// True if the log has no entries.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// Number of acknowledged entries: entries `0..acknowledged()` are durable.
    pub fn acknowledged(&self) -> u64 {
        self.acked
    }

    /// The chain hash of the last record (v1 `lastHash`; genesis when empty).
    pub fn last_hash(&self) -> ChainHash {
        self.last_hash
    }

    /// The Merkle tree over all entries.
    pub fn tree(&self) -> &MerkleTree {
        &self.tree
    }

    /// Number of segment files.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Appends one audit record, chained to the previous one, and applies the fsync
    /// policy. On a write or sync error the ledger refuses further appends
    /// ([`LedgerError::Poisoned`]) until reopened, because what reached the disk is then
    /// unknown (a failed fsync may have dropped the dirty pages).
    pub fn append(&mut self, record: &NewRecord<'_>) -> Result<Receipt, LedgerError> {
        if self.poisoned {
            return Err(LedgerError::Poisoned);
        }
        let chained = chain_record(&self.last_hash, record);
        self.payload.clear();
        encode_entry(&chained, &mut self.payload);
        if self.payload.len() > MAX_ENTRY_BYTES {
            return Err(LedgerError::EntryTooLarge(self.payload.len()));
        }
        let leaf = leaf_hash(&self.payload);
        self.frame.clear();
        encode_frame(&self.payload, &leaf, &mut self.frame);

        let frame_len = self.frame.len() as u64;
        let (active_bytes, active_entries) = self
            .segments
            .last()
            .map_or((0, 0), |s| (s.bytes, s.offsets.len()));
        if active_entries > 0
            && active_bytes.saturating_add(frame_len) > self.config.max_segment_bytes
        {
            self.roll()?;
        }
        let Some(seg) = self.segments.last_mut() else {
            return Err(LedgerError::Poisoned);
        };
        let offset =
            u32::try_from(seg.bytes).map_err(|_| LedgerError::Config("segment grew past 4 GiB"))?;
        if let Err(e) = self.active.write_all(&self.frame) {
            self.poisoned = true;
            return Err(LedgerError::io("appending to", seg.path.clone())(e));
        }
        seg.offsets.push(offset);
        seg.bytes += frame_len;
        let index = self.tree.push(leaf);
        self.last_hash = chained.hash;
        self.unsynced_since.get_or_insert_with(Instant::now);

        let due = match self.config.fsync {
            FsyncPolicy::EveryAppend => true,
            FsyncPolicy::Batch(n) => self.len() - self.acked >= u64::from(n),
            FsyncPolicy::Interval(every) => {
                self.unsynced_since.is_some_and(|t| t.elapsed() >= every)
            }
        };
        if due {
            self.sync()?;
        }
        Ok(Receipt {
            index,
            hash: chained.hash,
            leaf,
            acknowledged: index < self.acked,
        })
    }

    /// Forces every appended entry to stable storage; afterwards all are acknowledged.
    pub fn sync(&mut self) -> Result<(), LedgerError> {
        if self.poisoned {
            return Err(LedgerError::Poisoned);
        }
        if self.acked == self.len() {
            return Ok(());
        }
        if let Err(e) = self.active.sync_data() {
            self.poisoned = true;
            let path = self
                .segments
                .last()
                .map(|s| s.path.clone())
                .unwrap_or_default();
            return Err(LedgerError::io("syncing", path)(e));
        }
        self.acked = self.len();
        self.unsynced_since = None;
        Ok(())
    }

    /// For the `Interval` policy: syncs if the oldest unsynced entry is due. Returns the
    /// acknowledged count. Harmless under the other policies.
    pub fn tick(&mut self) -> Result<u64, LedgerError> {
        if let FsyncPolicy::Interval(every) = self.config.fsync {
            if self.unsynced_since.is_some_and(|t| t.elapsed() >= every) {
                self.sync()?;
            }
        }
        Ok(self.acked)
    }

    /// Closes the active segment (synced) and starts the next one.
    fn roll(&mut self) -> Result<(), LedgerError> {
        self.sync()?;
        let first = self.len();
        match segment::create(&self.dir, first) {
            Ok((file, path)) => {
                self.active = file;
                self.segments.push(Segment {
                    first_index: first,
                    path,
                    offsets: Vec::new(),
                    bytes: SEGMENT_HEADER_LEN as u64,
                });
                Ok(())
            }
            Err(e) => {
                self.poisoned = true;
                Err(LedgerError::io("creating segment in", self.dir.clone())(e))
            }
        }
    }
}

/// Checks a configuration before use.
fn check_config(config: &LedgerConfig) -> Result<(), LedgerError> {
    let min = (SEGMENT_HEADER_LEN + FRAME_OVERHEAD) as u64;
    if config.max_segment_bytes < min {
        return Err(LedgerError::Config(
            "max_segment_bytes smaller than a header and one frame",
        ));
    }
    if config.max_segment_bytes > u64::from(u32::MAX) {
        return Err(LedgerError::Config("max_segment_bytes larger than 4 GiB"));
    }
    if config.fsync == FsyncPolicy::Batch(0) {
        return Err(LedgerError::Config("batch size must be at least 1"));
    }
    Ok(())
}
