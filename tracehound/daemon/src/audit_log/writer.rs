//! The writer thread: copies new core audit records into the ledger, syncs per the
//! policy, publishes what is durable and signs checkpoints.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracehound_core::audit::RecordKind;
use tracehound_ledger::{Ledger, LedgerError, NewRecord};

use super::{Mark, Shared, Signed};
use crate::config::FsyncMode;

/// Records copied out of the core chain per quarantine-lock hold: bounds how long the
/// writer can keep an intercept waiting for that lock.
const CHUNK: u64 = 512;
/// The longest the writer sleeps without looking at the chain (a missed nudge costs at
/// most this much delay).
const MAX_SLEEP: Duration = Duration::from_millis(250);

/// One record copied out of the core chain.
struct Owned {
    kind: RecordKind,
    id: String,
    signature: String,
    timestamp: f64,
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// The writer's main loop; returns after a stop request once everything is written.
pub(super) fn run(shared: &Shared) {
    let settings = &shared.settings;
    let checkpoint_every = Duration::from_millis(settings.checkpoint_interval_ms);
    let sleep = match settings.fsync {
        FsyncMode::Interval => Duration::from_millis(settings.fsync_interval_ms),
        _ => MAX_SLEEP,
    }
    .min(checkpoint_every)
    .min(MAX_SLEEP);
    let mut cursor = 0u64;
    let mut buf = Vec::new();
    let mut last_checkpoint = Instant::now();
    let mut failed = false;
    loop {
        let stopping = {
            let mut wake = shared.wake.lock();
            if !wake.stop && !shared.pending.load(Ordering::Acquire) {
                shared.cond.wait_for(&mut wake, sleep);
            }
            wake.stop
        };
        shared.pending.store(false, Ordering::Release);
        if !failed {
            if let Err(e) = drain(shared, &mut cursor, &mut buf) {
                fail(shared, &e);
                failed = true;
            }
        }
        if !failed && (stopping || last_checkpoint.elapsed() >= checkpoint_every) {
            let mut ledger = shared.ledger.lock();
            // A checkpoint covers only durable entries: sync first so it covers all.
            match ledger.sync() {
                Ok(()) => {
                    publish(shared, &ledger, cursor);
                    sign_checkpoint(shared, &ledger);
                }
                Err(e) => {
                    fail(shared, &e);
                    failed = true;
                }
            }
            last_checkpoint = Instant::now();
        }
        if stopping {
            // Nothing is appended from now on: a reply still waiting for a record that
            // never reached the ledger gets an error instead of waiting forever.
            shared.marks.send_modify(|m: &mut Mark| m.failed = true);
            return;
        }
    }
}

/// Copies every record past `cursor` into the ledger, in chunks.
fn drain(shared: &Shared, cursor: &mut u64, buf: &mut Vec<Owned>) -> Result<(), LedgerError> {
    loop {
        buf.clear();
        let start = *cursor;
        shared.quarantine.with_audit(|chain| {
            let end = (chain.len() as u64).min(start.saturating_add(CHUNK));
            for i in start..end {
                let Some(r) = usize::try_from(i).ok().and_then(|i| chain.get(i)) else {
                    break;
                };
                buf.push(Owned {
                    kind: r.kind,
                    id: r.id.to_owned(),
                    signature: r.signature.to_owned(),
                    timestamp: r.timestamp,
                });
            }
        });
        let mut ledger = shared.ledger.lock();
        if buf.is_empty() {
            // Nothing new: under `interval`, a quiet log still syncs when due.
            ledger.tick()?;
            publish(shared, &ledger, *cursor);
            return Ok(());
        }
        for r in buf.iter() {
            ledger.append(&NewRecord {
                kind: r.kind,
                id: &r.id,
                signature: &r.signature,
                timestamp: r.timestamp,
            })?;
            *cursor += 1;
        }
        if shared.settings.fsync == FsyncMode::Every {
            // Group commit: one sync acknowledges every record copied above.
            ledger.sync()?;
        }
        publish(shared, &ledger, *cursor);
    }
}

/// Publishes counters and, for `every` waiters, the durable mark.
pub(super) fn publish(shared: &Shared, ledger: &Ledger, cursor: u64) {
    let acked = ledger.acknowledged();
    let before = shared.acknowledged.swap(acked, Ordering::Relaxed);
    if acked > before {
        shared.syncs.fetch_add(1, Ordering::Relaxed);
    }
    shared.entries.store(ledger.len(), Ordering::Relaxed);
    shared.copied.store(cursor, Ordering::Relaxed);
    let durable_core = acked.saturating_sub(shared.base);
    shared.marks.send_if_modified(|m| {
        if m.durable_size == acked {
            return false;
        }
        // `head` must be entry acked-1's hash; the ledger only knows its last one, which
        // is that entry whenever everything written is durable.
        if acked == ledger.len() {
            m.head = ledger.last_hash();
            m.durable_size = acked;
            m.durable_core = durable_core;
            true
        } else {
            false
        }
    });
}

fn fail(shared: &Shared, e: &LedgerError) {
    shared.failures.fetch_add(1, Ordering::Relaxed);
    tracing::error!("audit ledger: {e}; no further audit records are written until restart");
    shared.marks.send_modify(|m: &mut Mark| m.failed = true);
}

/// Signs a checkpoint of the durable entries if the log grew since the last one, keeps
/// it for `AuditCheckpoint` and writes it to `DIR/checkpoint` (replaced atomically).
pub(super) fn sign_checkpoint(shared: &Shared, ledger: &Ledger) {
    let size = ledger.acknowledged();
    if shared
        .latest
        .lock()
        .as_ref()
        .is_some_and(|s| s.size == size)
    {
        return;
    }
    let (note, root) = match (
        ledger.signed_checkpoint(&shared.settings.origin, &shared.signer),
        ledger.root(size),
    ) {
        (Ok(note), Ok(root)) => (note, root),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!("audit ledger: cannot sign a checkpoint: {e}");
            return;
        }
    };
    let dir = shared.settings.dir();
    let tmp = dir.join("checkpoint.tmp");
    let written = std::fs::write(&tmp, note.as_bytes())
        .and_then(|()| std::fs::rename(&tmp, dir.join("checkpoint")));
    if let Err(e) = written {
        tracing::warn!(
            "audit ledger: cannot write {}/checkpoint: {e}",
            dir.display()
        );
    }
    *shared.latest.lock() = Some(Signed {
        note,
        size,
        root,
        signed_at_ms: now_ms(),
    });
}
