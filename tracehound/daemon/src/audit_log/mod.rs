//! The durable audit log: every record of the core's audit chain, copied in order into a
//! `tracehound-ledger` by one writer thread.
//!
//! The core appends to its in-memory chain under the quarantine lock, on the intercepting
//! thread. That chain is the queue: the writer thread copies the records it has not
//! written yet (a cursor), appends them to the ledger and syncs per the policy, so no
//! other queue, bound or drop exists between the two. An intercept that quarantined
//! evidence only nudges the writer (an atomic flag, and a condvar signal when the flag was
//! clear).
//!
//! * `every`: the intercept reads the chain length after its own insert and its reply
//!   waits (asynchronously, no thread blocked) until the writer reports that many records
//!   of this run durable. The writer appends every record waiting at the moment and syncs
//!   once for all of them (group commit), so one `fdatasync` acknowledges many concurrent
//!   intercepts; no reply is sent before its records are on stable storage.
//! * `interval` and `batch`: replies never wait; the ledger syncs when the oldest
//!   unsynced record is `fsync_interval_ms` old, or after `fsync_batch` records. A crash
//!   of the machine (not just the process) can lose what was not yet synced.
//!
//! The ledger re-links each record to its own last hash: on a first run the ledger's
//! chain equals the core's record for record; after a restart the core's in-memory chain
//! starts again at genesis (v1's semantics) while the ledger continues its chain and tree.
//!
//! Readers never hold the ledger lock across work that grows with the ledger, so they
//! cannot stall the writer (and with it every `every` reply): `VerifyChain` captures a
//! `tracehound_ledger::VerifySnapshot` under the lock and re-reads the append-only
//! segment files without it; proofs and checkpoints come from the in-memory tree.

mod incident;
mod key;
mod rpc;
mod writer;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;
use tracehound_core::audit::ChainHash;
use tracehound_core::quarantine::Quarantine;
use tracehound_ledger::{CheckpointSigner, Ledger, LedgerConfig};
use tracehound_rpc::pb;

use crate::config::{FsyncMode, LedgerSection};

pub use incident::{IncidentRecordError, SettleError};
pub use rpc::ProveError;

/// The error code of an intercept whose audit record could not be made durable.
pub const LEDGER_FAILED: &str = "AUDIT_LEDGER_FAILED";

/// What the writer has made durable, published after every group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// Records of this run's core chain that are durable in the ledger.
    pub durable_core: u64,
    /// Ledger entries known durable (all runs).
    pub durable_size: u64,
    /// Chain hash of entry `durable_size - 1` (genesis when empty).
    pub head: ChainHash,
    /// The ledger failed a write or sync, or its writer stopped: it takes no more appends.
    pub failed: bool,
}

/// A signed checkpoint and what it says.
#[derive(Debug, Clone)]
pub(crate) struct Signed {
    note: String,
    size: u64,
    root: [u8; 32],
    signed_at_ms: f64,
}

/// The writer's wake-up state.
#[derive(Debug, Default)]
struct Wake {
    stop: bool,
}

/// State shared by the writer thread, the intercept path and the RPC handlers.
struct Shared {
    ledger: Mutex<Ledger>,
    quarantine: Arc<Quarantine>,
    signer: CheckpointSigner,
    verifier_key: String,
    settings: LedgerSection,
    /// Ledger length when opened: record `k` of this run's core chain is entry `base + k`.
    base: u64,
    wake: Mutex<Wake>,
    cond: Condvar,
    /// Set by intercepts that added records; cleared by the writer before it copies.
    pending: AtomicBool,
    marks: watch::Sender<Mark>,
    entries: AtomicU64,
    acknowledged: AtomicU64,
    copied: AtomicU64,
    syncs: AtomicU64,
    failures: AtomicU64,
    latest: Mutex<Option<Signed>>,
    /// Holds an exclusive `flock` on `DIR/lock` for the daemon's lifetime: two daemons
    /// appending to one ledger would interleave frames.
    _lock: File,
}

/// The daemon's handle on its ledger and writer thread.
pub struct AuditLog {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("dir", &self.shared.settings.dir())
            .field("fsync", &self.shared.settings.fsync)
            .finish_non_exhaustive()
    }
}

fn lock_dir(settings: &LedgerSection) -> Result<File, String> {
    let dir = settings.dir();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("{}: cannot create the ledger directory: {e}", dir.display()))?;
    let path = dir.join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
        |e| {
            format!(
                "{}: the ledger is in use by another process ({e})",
                dir.display()
            )
        },
    )?;
    Ok(file)
}

impl AuditLog {
    /// Opens (or creates) the ledger, loads or generates the signing key, signs a first
    /// checkpoint and starts the writer thread over `quarantine`'s audit chain. The chain
    /// must be empty (a fresh quarantine): its record 0 becomes the next ledger entry.
    pub fn open(settings: &LedgerSection, quarantine: Arc<Quarantine>) -> Result<AuditLog, String> {
        let lock = lock_dir(settings)?;
        let signer = key::load_or_generate(&settings.key_path(), &settings.key_name)?;
        let config = LedgerConfig {
            max_segment_bytes: settings.max_segment_bytes,
            fsync: settings.ledger_policy(),
        };
        let (ledger, report) = Ledger::open(settings.dir(), config)
            .map_err(|e| format!("opening the audit ledger: {e}"))?;
        if let Some(t) = &report.truncated {
            tracing::warn!(
                segment = %t.segment,
                bytes_removed = t.bytes_removed,
                reason = t.reason,
                "audit ledger: truncated a torn tail left by a crash"
            );
        }
        if let Some(s) = &report.removed_segment {
            tracing::warn!(segment = %s, "audit ledger: removed a segment whose header was never completed");
        }
        let base = ledger.len();
        let verifier_key = signer.verifier().to_verifier_key();
        tracing::info!(
            dir = %settings.dir().display(),
            entries = base,
            fsync = settings.fsync.as_str(),
            verifier_key = %verifier_key,
            "audit ledger open"
        );
        let mark = Mark {
            durable_core: 0,
            durable_size: ledger.acknowledged(),
            head: ledger.last_hash(),
            failed: false,
        };
        let shared = Arc::new(Shared {
            entries: AtomicU64::new(base),
            acknowledged: AtomicU64::new(ledger.acknowledged()),
            ledger: Mutex::new(ledger),
            quarantine,
            signer,
            verifier_key,
            settings: settings.clone(),
            base,
            wake: Mutex::new(Wake::default()),
            cond: Condvar::new(),
            pending: AtomicBool::new(false),
            marks: watch::Sender::new(mark),
            copied: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            latest: Mutex::new(None),
            _lock: lock,
        });
        writer::sign_checkpoint(&shared, &shared.ledger.lock());
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("tracehound-ledger".into())
                .spawn(move || {
                    // A writer that died must not leave `every` replies waiting forever.
                    let ran =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            writer::run(&shared)
                        }));
                    if ran.is_err() {
                        shared.failures.fetch_add(1, Ordering::Relaxed);
                        shared.marks.send_modify(|m| m.failed = true);
                        tracing::error!("the audit ledger writer panicked; no further audit records are written");
                    }
                })
                .map_err(|e| format!("starting the ledger writer thread: {e}"))?
        };
        Ok(AuditLog {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The fsync policy.
    pub fn mode(&self) -> FsyncMode {
        self.shared.settings.fsync
    }

    /// True if quarantining replies wait for their records to be durable (`every`).
    pub fn acknowledges(&self) -> bool {
        self.mode() == FsyncMode::Every
    }

    /// Tells the writer that the core chain grew. Cheap: one atomic swap, plus a condvar
    /// signal only when the writer was not already told.
    pub fn nudge(&self) {
        if !self.shared.pending.swap(true, Ordering::AcqRel) {
            let _guard = self.shared.wake.lock();
            self.shared.cond.notify_one();
        }
    }

    /// The target an `every` reply waits for: the core chain's current length (it covers
    /// every record the caller's intercept appended). Nudges the writer.
    pub fn durability_target(&self) -> u64 {
        let target = self.shared.quarantine.with_audit(|a| a.len() as u64);
        self.nudge();
        target
    }

    /// Waits until `target` records of this run are durable, then fills the reply's
    /// acknowledgement fields; if the ledger failed first, turns the reply into an error
    /// (the intercept is then not acknowledged).
    pub async fn acknowledge(&self, target: u64, reply: &mut pb::InterceptReply) {
        let mut rx = self.shared.marks.subscribe();
        let mark = match rx.wait_for(|m| m.durable_core >= target || m.failed).await {
            Ok(m) => *m,
            // The sender lives as long as `self`; treat its loss like a failure.
            Err(_) => Mark {
                durable_core: 0,
                durable_size: 0,
                head: ChainHash::GENESIS,
                failed: true,
            },
        };
        if mark.durable_core >= target {
            reply.audit_durable_size = mark.durable_size;
            reply.audit_durable_head = mark.head.to_hex();
        } else {
            reply.status = pb::Status::Error.into();
            reply.error_code = LEDGER_FAILED.to_owned();
            reply.error_message = "the audit record could not be made durable; the evidence \
                                   is held in memory only"
                .to_owned();
        }
    }

    /// Asks the writer to copy what is left, sync, sign a last checkpoint and stop, and
    /// waits for it (blocking: call from a blocking context).
    pub fn close(&self) {
        self.request_stop();
        if let Some(handle) = self.thread.lock().take() {
            if handle.join().is_err() {
                tracing::error!("the ledger writer thread panicked");
            }
        }
    }

    /// Asks the writer to finish, without waiting.
    pub fn request_stop(&self) {
        self.shared.wake.lock().stop = true;
        self.shared.cond.notify_one();
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.request_stop();
    }
}
