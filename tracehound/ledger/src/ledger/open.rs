//! Opening a ledger: reading every segment, checking the framing and the order of the
//! segments, truncating a torn tail in the last segment, and rebuilding the tree.
//!
//! Only the end of the last segment may be repaired, and only for the faults a crash
//! leaves behind (a frame cut short, a bad checksum in the very last frame, a zero-filled
//! tail, or a last segment whose header was never completely written). Every repair is
//! listed in the [`OpenReport`]. Damage anywhere else is [`LedgerError::Corrupt`]. This is
//! the only place segment data is ever truncated or a segment removed, and it runs before
//! the [`Ledger`] exists, so no snapshot verifier can be reading then.

use std::fs::{self, OpenOptions};
use std::path::Path;

use tracehound_core::audit::ChainHash;

use super::{check_config, Ledger, LedgerConfig, Segment};
use crate::error::LedgerError;
use crate::frame::{decode_segment_header, scan_frames, HeaderError, ScanEnd, SEGMENT_HEADER_LEN};
use crate::merkle::MerkleTree;
use crate::record::decode_entry;
use crate::segment;

/// What [`Ledger::open`] found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Segment files read.
    pub segments: usize,
    /// Entries recovered.
    pub entries: u64,
    /// The torn tail removed from the last segment, if any.
    pub truncated: Option<TornTail>,
    /// A last segment whose header was cut short (a crash while rolling) and was removed.
    pub removed_segment: Option<String>,
    /// True if the directory held no segment and a first one was created.
    pub created: bool,
}

/// A torn tail cut from the last segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment's file name.
    pub segment: String,
    /// The new length of the file (where the torn frame started).
    pub offset: u64,
    /// Bytes removed.
    pub bytes_removed: u64,
    /// What the tail looked like.
    pub reason: &'static str,
}

/// Opens the ledger in `dir` (created if missing).
pub(super) fn open(dir: &Path, config: LedgerConfig) -> Result<(Ledger, OpenReport), LedgerError> {
    check_config(&config)?;
    fs::create_dir_all(dir).map_err(LedgerError::io("creating", dir))?;
    let listed = segment::list(dir).map_err(LedgerError::io("listing", dir))?;
    let mut report = OpenReport::default();
    let mut segments = Vec::with_capacity(listed.len());
    let mut tree = MerkleTree::new();
    let mut last_entry: Option<Vec<u8>> = None;
    let count = listed.len();

    for (i, (first, path)) in listed.into_iter().enumerate() {
        let is_last = i + 1 == count;
        let name = segment::file_name(first);
        let corrupt = |offset: u64, reason| LedgerError::Corrupt {
            segment: name.clone(),
            offset,
            reason,
        };
        let bytes = fs::read(&path).map_err(LedgerError::io("reading", &path))?;
        if u32::try_from(bytes.len()).is_err() {
            return Err(corrupt(0, "segment larger than 4 GiB"));
        }
        match decode_segment_header(&bytes) {
            Ok(header_first) if header_first != first => {
                return Err(corrupt(8, "header index differs from the file name"));
            }
            Ok(_) => {}
            Err(HeaderError::Short) if is_last => {
                fs::remove_file(&path).map_err(LedgerError::io("removing torn segment", &path))?;
                segment::sync_dir(dir).map_err(LedgerError::io("syncing", dir))?;
                report.removed_segment = Some(name);
                continue;
            }
            Err(HeaderError::Short) => return Err(corrupt(0, "segment header cut short")),
            Err(HeaderError::BadMagic) => return Err(corrupt(0, "not a ledger segment")),
        }
        if first != tree.len() {
            return Err(corrupt(
                8,
                "segment does not continue the log (missing or extra segment)",
            ));
        }
        let mut offsets = Vec::new();
        let mut last_payload = None;
        let end = scan_frames(&bytes, SEGMENT_HEADER_LEN, |frame| {
            // Offsets fit: the whole file is smaller than 4 GiB (checked above).
            offsets.push(frame.offset as u32);
            tree.push(frame.leaf);
            last_payload = Some(frame.payload);
        });
        if let Some(p) = last_payload {
            last_entry = Some(p.to_vec());
        }
        let mut len = bytes.len() as u64;
        match end {
            ScanEnd::Clean => {}
            ScanEnd::Fault { offset, fault } if is_last && fault.is_torn() => {
                let offset = offset as u64;
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(LedgerError::io("opening for repair", &path))?;
                file.set_len(offset)
                    .map_err(LedgerError::io("truncating", &path))?;
                file.sync_all().map_err(LedgerError::io("syncing", &path))?;
                report.truncated = Some(TornTail {
                    segment: name.clone(),
                    offset,
                    bytes_removed: len - offset,
                    reason: fault.describe(),
                });
                len = offset;
            }
            ScanEnd::Fault { offset, fault } => {
                return Err(corrupt(offset as u64, fault.describe()))
            }
        }
        segments.push(Segment {
            first_index: first,
            path,
            offsets,
            bytes: len,
        });
    }

    let last_hash = match &last_entry {
        Some(bytes) => {
            let index = tree.len().saturating_sub(1);
            decode_entry(bytes)
                .map_err(|source| LedgerError::Entry { index, source })?
                .hash
        }
        None => ChainHash::GENESIS,
    };

    let active = match segments.last() {
        Some(seg) => {
            let file =
                segment::open_append(&seg.path).map_err(LedgerError::io("opening", &seg.path))?;
            // Entries a killed writer left in the page cache become durable now, so all
            // entries found on open count as acknowledged.
            file.sync_all()
                .map_err(LedgerError::io("syncing", &seg.path))?;
            file
        }
        None => {
            let (file, path) = segment::create(dir, tree.len())
                .map_err(LedgerError::io("creating segment in", dir))?;
            segments.push(Segment {
                first_index: tree.len(),
                path,
                offsets: Vec::new(),
                bytes: SEGMENT_HEADER_LEN as u64,
            });
            report.created = true;
            file
        }
    };
    report.segments = segments.len();
    report.entries = tree.len();
    let acked = tree.len();
    Ok((
        Ledger {
            dir: dir.to_path_buf(),
            config,
            segments,
            active,
            tree,
            last_hash,
            acked,
            unsynced_since: None,
            poisoned: false,
            payload: Vec::new(),
            frame: Vec::new(),
        },
        report,
    ))
}
