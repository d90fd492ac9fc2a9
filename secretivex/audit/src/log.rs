//! The writing side of one log: continuing its chain, batching lines, rotating and pruning.
//!
//! Runs on the writer thread only (see `handle.rs`); nothing here is shared.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use crate::files::{lock_path, read_first_line, read_tail, rotated_files, rotated_path};
use crate::handle::Shared;
use crate::record::{encode, line_hash, Chain, Entry, LineHead};
use crate::{AuditError, Decision};

/// A line that is not a decision, waiting to be written (kept until a write succeeds).
#[derive(Debug, Clone)]
enum Meta {
    Pruned {
        removed: Vec<String>,
        resume_seq: u64,
        resume_prev: [u8; 32],
    },
    TornTail {
        bytes: u64,
    },
}

/// What the unwritten buffer holds, so a failed write can be accounted for.
#[derive(Debug, Default)]
struct Pending {
    decisions: u64,
    dropped_reported: u64,
    lines: u64,
    metas: Vec<Meta>,
}

/// One open log.
#[derive(Debug)]
pub(crate) struct Log {
    active: PathBuf,
    file: File,
    /// Bytes of `file` known written.
    size: u64,
    /// The chain after the last line in `buf` (or written, when `buf` is empty).
    chain: Chain,
    /// The chain after the last line written: where a failed write rolls back to.
    written_chain: Chain,
    buf: Vec<u8>,
    scratch: Vec<u8>,
    in_buf: Pending,
    /// Lines waiting to be encoded (rotation notes, or ones whose write failed).
    metas: Vec<Meta>,
    /// Decisions lost in failed writes, still to be reported by a `dropped` line.
    lost: u64,
    next_rotation: u64,
    unsynced: bool,
    shared: Arc<Shared>,
    /// Held for the life of the log: a second writer on the same log would fork its chain.
    _lock: File,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}

/// The chain state after `line`.
fn chain_after(line: &[u8], path: &Path) -> Result<Chain, AuditError> {
    let head = LineHead::parse(line).map_err(|reason| AuditError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("last line: {reason}"),
    })?;
    Ok(Chain {
        seq: head.seq,
        prev: line_hash(line),
    })
}

impl Log {
    /// Opens (or continues) the log whose current file is `active`.
    pub(crate) fn open(active: &Path, shared: Arc<Shared>) -> Result<Log, AuditError> {
        if let Some(dir) = active.parent().filter(|d| !d.as_os_str().is_empty()) {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_err(dir))?;
        }
        let lock_file = lock_path(active);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_file)
            .map_err(io_err(&lock_file))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(AuditError::Busy {
                    path: active.to_path_buf(),
                })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(&lock_file)(e)),
        }
        let mut file = open_append(active).map_err(io_err(active))?;
        let len = file.metadata().map_err(io_err(active))?.len();
        let tail = read_tail(&mut file, len).map_err(io_err(active))?;
        let torn = len - tail.complete_len;
        if torn > 0 {
            // A crash mid-write left part of a line: cut it, and say so in the log.
            file.set_len(tail.complete_len).map_err(io_err(active))?;
        }
        let rotated = rotated_files(active).map_err(io_err(active))?;
        let chain = match tail.last_line {
            Some(line) => chain_after(&line, active)?,
            // An empty current file continues the newest rotated one (a stop right after a
            // rotation).
            None => match rotated.last() {
                Some((_, newest)) => {
                    let mut f = File::open(newest).map_err(io_err(newest))?;
                    let newest_len = f.metadata().map_err(io_err(newest))?.len();
                    let t = read_tail(&mut f, newest_len).map_err(io_err(newest))?;
                    match t.last_line {
                        Some(line) => chain_after(&line, newest)?,
                        None => Chain::GENESIS,
                    }
                }
                None => Chain::GENESIS,
            },
        };
        let next_rotation = rotated.last().map_or(1, |(n, _)| n.saturating_add(1));
        let mut log = Log {
            active: active.to_path_buf(),
            file,
            size: tail.complete_len,
            chain,
            written_chain: chain,
            buf: Vec::with_capacity(64 * 1024),
            scratch: Vec::with_capacity(1024),
            in_buf: Pending::default(),
            metas: Vec::new(),
            lost: 0,
            next_rotation,
            unsynced: false,
            shared,
            _lock: lock,
        };
        if torn > 0 {
            log.metas.push(Meta::TornTail { bytes: torn });
            log.encode_metas();
            log.write_buf()?;
        }
        Ok(log)
    }

    /// Buffers one decision.
    pub(crate) fn push_decision(&mut self, decision: &Decision) {
        self.push(&Entry::Decision(decision));
        self.in_buf.decisions += 1;
    }

    /// Buffers a `dropped` line for `count` decisions lost in the queue plus any lost in
    /// failed writes; nothing when both are zero.
    pub(crate) fn push_dropped(&mut self, count: u64) {
        let total = count.saturating_add(std::mem::take(&mut self.lost));
        if total == 0 {
            return;
        }
        self.push(&Entry::Dropped { count: total });
        self.in_buf.dropped_reported += total;
    }

    /// Buffers `entry`, writing the buffer and rotating first when the line would take the
    /// current file past `max_bytes`.
    fn push(&mut self, entry: &Entry<'_>) {
        self.encode_metas();
        let max_bytes = self.shared.max_bytes.load(Ordering::Relaxed);
        let mut chain = self.chain;
        self.scratch.clear();
        encode(&mut self.scratch, &mut chain, entry, SystemTime::now());
        let used = self.size + self.buf.len() as u64;
        if used > 0 && used + self.scratch.len() as u64 > max_bytes {
            // A write failure rolls the chain back, so the line is encoded again afterwards.
            let rotated = self.write_buf().is_ok() && self.rotate().is_ok();
            if !rotated {
                self.shared.write_errors.fetch_add(1, Ordering::Relaxed);
            }
            self.encode_metas();
            chain = self.chain;
            self.scratch.clear();
            encode(&mut self.scratch, &mut chain, entry, SystemTime::now());
        }
        self.buf.extend_from_slice(&self.scratch);
        self.chain = chain;
        self.in_buf.lines += 1;
    }

    /// Encodes the waiting notes into the buffer (they never trigger a rotation themselves:
    /// they are written right after one).
    fn encode_metas(&mut self) {
        for meta in std::mem::take(&mut self.metas) {
            let entry = match &meta {
                Meta::Pruned {
                    removed,
                    resume_seq,
                    resume_prev,
                } => Entry::Pruned {
                    removed,
                    resume_seq: *resume_seq,
                    resume_prev: *resume_prev,
                },
                Meta::TornTail { bytes } => Entry::TornTail { bytes: *bytes },
            };
            encode(&mut self.buf, &mut self.chain, &entry, SystemTime::now());
            self.in_buf.lines += 1;
            self.in_buf.metas.push(meta);
        }
    }

    /// Writes the buffer with one `write` (one per batch). On failure the file is cut back to
    /// its last whole line, the chain rolls back, and the buffered decisions count as dropped
    /// (to be reported by the next `dropped` line).
    pub(crate) fn write_buf(&mut self) -> Result<(), AuditError> {
        self.encode_metas();
        if self.buf.is_empty() {
            return Ok(());
        }
        match self.file.write_all(&self.buf) {
            Ok(()) => {
                self.size += self.buf.len() as u64;
                self.written_chain = self.chain;
                let done = std::mem::take(&mut self.in_buf);
                self.shared
                    .written
                    .fetch_add(done.decisions, Ordering::Relaxed);
                self.shared.lines.fetch_add(done.lines, Ordering::Relaxed);
                self.buf.clear();
                self.unsynced = true;
                Ok(())
            }
            Err(source) => {
                // Best effort: a partial line left behind would be cut as a torn tail on the
                // next open anyway.
                let _ = self.file.set_len(self.size);
                self.chain = self.written_chain;
                let failed = std::mem::take(&mut self.in_buf);
                self.shared
                    .dropped
                    .fetch_add(failed.decisions, Ordering::Relaxed);
                self.shared.write_errors.fetch_add(1, Ordering::Relaxed);
                self.lost += failed.decisions + failed.dropped_reported;
                self.metas.extend(failed.metas);
                self.buf.clear();
                Err(AuditError::Io {
                    path: self.active.clone(),
                    source,
                })
            }
        }
    }

    /// Forces written lines to disk (`fdatasync`) if any were written since the last call.
    pub(crate) fn sync(&mut self) {
        if self.unsynced && self.file.sync_data().is_ok() {
            self.unsynced = false;
        }
    }

    /// Renames the current file to `PATH.N` and starts an empty one; then prunes. The buffer
    /// is empty when this runs.
    fn rotate(&mut self) -> Result<(), AuditError> {
        // The rotated file is complete on disk before its name says so.
        self.file.sync_data().map_err(io_err(&self.active))?;
        let mut target = rotated_path(&self.active, self.next_rotation);
        while target.exists() {
            self.next_rotation = self.next_rotation.saturating_add(1);
            target = rotated_path(&self.active, self.next_rotation);
        }
        std::fs::rename(&self.active, &target).map_err(io_err(&self.active))?;
        self.next_rotation = self.next_rotation.saturating_add(1);
        // If the new file cannot be created, keep appending to the renamed one: the chain
        // stays whole, only the size limit is exceeded until the next try.
        let file = open_append(&self.active).map_err(io_err(&self.active))?;
        self.file = file;
        self.size = 0;
        self.unsynced = false;
        if let Some(dir) = self.active.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Makes the rename and the new file durable; failure only weakens crash safety.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        self.prune()
    }

    /// Removes rotated files beyond `keep`, oldest first, and queues a `pruned` line saying
    /// where the log now starts.
    fn prune(&mut self) -> Result<(), AuditError> {
        let keep = self.shared.keep.load(Ordering::Relaxed) as usize;
        let rotated = rotated_files(&self.active).map_err(io_err(&self.active))?;
        let excess = rotated.len().saturating_sub(keep);
        let Some((remove, kept)) = rotated.split_at_checked(excess) else {
            return Ok(());
        };
        if remove.is_empty() {
            return Ok(());
        }
        // Where the log will start, read before anything is removed: a removal that cannot be
        // recorded is not made.
        let mut resume = match kept.first() {
            Some((_, oldest)) => start_of(oldest)?,
            // Nothing rotated is kept: the log starts at the next line of the new file.
            None => (self.chain.seq + 1, self.chain.prev),
        };
        let mut removed = Vec::with_capacity(remove.len());
        let mut result = Ok(());
        for (_, path) in remove {
            let start = start_of(path);
            if let Err(e) = std::fs::remove_file(path) {
                // The files not removed stay in the log; the ones removed are still recorded.
                result = Err(io_err(path)(e));
                match start {
                    Ok(start) => resume = start,
                    Err(e) => return Err(e),
                }
                break;
            }
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            removed.push(name.unwrap_or_default());
        }
        if !removed.is_empty() {
            self.metas.push(Meta::Pruned {
                removed,
                resume_seq: resume.0,
                resume_prev: resume.1,
            });
        }
        result
    }
}

/// `seq` and `prev` of the first line of a rotated file: where the log starts once every
/// older file is gone.
fn start_of(path: &Path) -> Result<(u64, [u8; 32]), AuditError> {
    let corrupt = |reason: String| AuditError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let line = read_first_line(path)
        .map_err(io_err(path))?
        .ok_or_else(|| corrupt("empty rotated file".to_owned()))?;
    let head = LineHead::parse(&line).map_err(|r| corrupt(format!("first line: {r}")))?;
    let prev = head
        .prev_hash()
        .ok_or_else(|| corrupt("first line: prev is not 64 hex digits".to_owned()))?;
    Ok((head.seq, prev))
}
