//! The agent's side of the audit trail: a bounded queue in front of one writer thread.
//!
//! `record` only tries to enqueue: it never waits for the disk. The writer takes whatever is
//! queued (up to [`BATCH`] decisions), encodes it, and hands the batch to the kernel with one
//! `write`. Flush policy: every batch is written as soon as it is taken, so a line reaches the
//! kernel within one batch of being recorded (it survives an agent crash); `fdatasync` runs at
//! most once per [`SYNC_EVERY`] while lines are being written, at every rotation, on
//! [`AuditHandle::flush`] and when the handle is dropped (so a power loss costs at most about one
//! second of lines).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::log::Log;
use crate::{AuditError, AuditSpec, Decision};

/// Most decisions taken from the queue for one write.
pub const BATCH: usize = 4096;
/// Longest time written lines wait for `fdatasync`, and longest time a drop waits to be
/// reported when no further decision arrives.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);

/// Counters shared by the handle and its writer thread.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) written: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) lines: AtomicU64,
    pub(crate) write_errors: AtomicU64,
    /// Drops not yet reported by a `dropped` line.
    pub(crate) unreported_drops: AtomicU64,
    pub(crate) max_bytes: AtomicU64,
    pub(crate) keep: AtomicU32,
}

/// A snapshot of the audit trail's counters (for metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Decisions written to the log.
    pub written: u64,
    /// Decisions dropped: the queue was full (or the writer gone), or their write failed.
    /// Every drop is reported by a later `dropped` line.
    pub dropped: u64,
    /// Lines written, decisions and notes (`dropped`, `pruned`, `torn_tail`) alike.
    pub lines: u64,
    /// Writes, rotations or prunes that failed.
    pub write_errors: u64,
}

/// What [`AuditHandle::reconfigure`] did with a new spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconfigured {
    /// Same log: `max_bytes` and `keep` now apply; keep using this handle.
    InPlace,
    /// Same log, but `queue` changed: the new size applies at the next start (a second
    /// writer on one log would fork its chain); the rest now applies.
    QueueKept,
    /// Another file: open a new handle and replace this one.
    OtherPath,
}

enum Msg {
    // Boxed so each queue slot is one pointer: an idle 65 536-slot queue costs 1 MiB, not 14.
    Decision(Box<Decision>),
    Flush(SyncSender<()>),
}

/// Where the agent sends decisions; writing happens on a thread of its own and never blocks
/// the caller. Dropping the handle writes what is queued, syncs and stops the thread.
#[derive(Debug)]
pub struct AuditHandle {
    tx: Option<SyncSender<Msg>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    spec: AuditSpec,
    path: PathBuf,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Decision(_) => f.write_str("Decision"),
            Msg::Flush(_) => f.write_str("Flush"),
        }
    }
}

impl AuditHandle {
    /// Opens (or continues) the log described by `spec` and starts its writer. A leading `~/`
    /// in the path stands for `$HOME`; missing directories are created (mode 0700), the log
    /// files are mode 0600.
    ///
    /// # Errors
    /// When the log cannot be opened, its last line cannot be read or is not an audit line,
    /// another writer holds it, or the thread cannot start.
    pub fn open(spec: &AuditSpec) -> Result<AuditHandle, AuditError> {
        AuditHandle::open_gated(spec, None)
    }

    /// [`open`](AuditHandle::open), with a writer that waits for `gate` before taking anything
    /// from the queue (tests fill the queue deterministically with it).
    pub(crate) fn open_gated(
        spec: &AuditSpec,
        gate: Option<Receiver<()>>,
    ) -> Result<AuditHandle, AuditError> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let path = spec.resolved_path(home.as_deref());
        let shared = Arc::new(Shared {
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            lines: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
            unreported_drops: AtomicU64::new(0),
            max_bytes: AtomicU64::new(spec.max_bytes),
            keep: AtomicU32::new(spec.keep),
        });
        let log = Log::open(&path, Arc::clone(&shared))?;
        let (tx, rx) = mpsc::sync_channel(spec.queue);
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("secretivex-audit".to_owned())
            .spawn(move || {
                if let Some(gate) = gate {
                    let _ = gate.recv();
                }
                run(log, &rx, &thread_shared);
            })
            .map_err(AuditError::Spawn)?;
        Ok(AuditHandle {
            tx: Some(tx),
            shared,
            thread: Some(thread),
            spec: spec.clone(),
            path,
        })
    }

    /// Queues one decision; never blocks. A full queue drops it: the drop is counted and a
    /// `dropped` line reports it.
    pub fn record(&self, decision: Decision) {
        let sent = match &self.tx {
            Some(tx) => tx.try_send(Msg::Decision(Box::new(decision))),
            None => return,
        };
        match sent {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                self.shared.unreported_drops.fetch_add(1, Ordering::AcqRel);
            }
        }
    }

    /// Waits until every decision recorded before this call is written and synced to disk.
    /// Blocks (for shutdown and tests; the signing path only ever calls [`record`]).
    ///
    /// [`record`]: AuditHandle::record
    pub fn flush(&self) {
        let Some(tx) = &self.tx else { return };
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        if tx.send(Msg::Flush(ack_tx)).is_ok() {
            let _ = ack_rx.recv();
        }
    }

    /// The counters, for metrics.
    pub fn stats(&self) -> AuditStats {
        AuditStats {
            written: self.shared.written.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            lines: self.shared.lines.load(Ordering::Relaxed),
            write_errors: self.shared.write_errors.load(Ordering::Relaxed),
        }
    }

    /// The spec this handle runs with.
    pub fn spec(&self) -> &AuditSpec {
        &self.spec
    }

    /// The current log file (the spec's path with `~/` resolved).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Applies a reloaded spec when it names the same file (see [`Reconfigured`]). A log can
    /// have only one writer, so on reload keep this handle unless this returns
    /// [`Reconfigured::OtherPath`].
    pub fn reconfigure(&self, spec: &AuditSpec) -> Reconfigured {
        if spec.path != self.spec.path {
            return Reconfigured::OtherPath;
        }
        self.shared
            .max_bytes
            .store(spec.max_bytes, Ordering::Relaxed);
        self.shared.keep.store(spec.keep, Ordering::Relaxed);
        if spec.queue == self.spec.queue {
            Reconfigured::InPlace
        } else {
            Reconfigured::QueueKept
        }
    }
}

impl Drop for AuditHandle {
    fn drop(&mut self) {
        // Closing the queue lets the writer drain it, sync and return.
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The writer thread: batches, writes, reports drops, syncs.
fn run(mut log: Log, rx: &Receiver<Msg>, shared: &Shared) {
    let mut last_sync = Instant::now();
    let mut acks = Vec::new();
    loop {
        let mut closed = false;
        match rx.recv_timeout(SYNC_EVERY) {
            Ok(msg) => take(&mut log, msg, &mut acks),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => closed = true,
        }
        let mut taken = 1;
        while !closed && taken < BATCH {
            match rx.try_recv() {
                Ok(msg) => take(&mut log, msg, &mut acks),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => closed = true,
            }
            taken += 1;
        }
        log.push_dropped(shared.unreported_drops.swap(0, Ordering::AcqRel));
        // A failed write is counted and its decisions reported as dropped by a later line.
        let _ = log.write_buf();
        if closed || !acks.is_empty() || last_sync.elapsed() >= SYNC_EVERY {
            log.sync();
            last_sync = Instant::now();
        }
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
        if closed {
            return;
        }
    }
}

fn take(log: &mut Log, msg: Msg, acks: &mut Vec<SyncSender<()>>) {
    match msg {
        Msg::Decision(d) => log.push_decision(&d),
        Msg::Flush(ack) => acks.push(ack),
    }
}
