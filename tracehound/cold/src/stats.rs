//! Evacuation counters: lock-free, read as one snapshot for stats and metrics.

use std::sync::atomic::{AtomicU64, Ordering};

/// What the evacuator has done since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EvacuationStats {
    /// Evidence accepted into the queue (evictions and explicit evacuations).
    pub enqueued: u64,
    /// Of those, evidence handed over by quarantine evictions.
    pub from_evictions: u64,
    /// Of those, evidence moved by an explicit or policy evacuation.
    pub explicit: u64,
    /// Objects written to the store.
    pub objects_written: u64,
    /// Envelope bytes written to the store.
    pub bytes_written: u64,
    /// Write attempts that failed and were retried.
    pub retries: u64,
    /// Objects given up on after the last attempt (or refused as invalid).
    pub failures: u64,
    /// Evictions dropped because the queue was full (that evidence is gone).
    pub dropped_full: u64,
    /// Evictions dropped because the evacuator had shut down.
    pub dropped_closed: u64,
    /// Evicted handles seen by the intercept observer (to reconcile with the counts above:
    /// every eviction is enqueued or dropped).
    pub evictions_observed: u64,
    /// Evidence queued or being written right now.
    pub pending: u64,
}

impl EvacuationStats {
    /// Evictions that did not reach the queue.
    pub fn dropped(&self) -> u64 {
        self.dropped_full + self.dropped_closed
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub enqueued: AtomicU64,
    pub from_evictions: AtomicU64,
    pub explicit: AtomicU64,
    pub objects_written: AtomicU64,
    pub bytes_written: AtomicU64,
    pub retries: AtomicU64,
    pub failures: AtomicU64,
    pub dropped_full: AtomicU64,
    pub dropped_closed: AtomicU64,
    pub evictions_observed: AtomicU64,
    pub pending: AtomicU64,
}

pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub fn snapshot(&self) -> EvacuationStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        EvacuationStats {
            enqueued: get(&self.enqueued),
            from_evictions: get(&self.from_evictions),
            explicit: get(&self.explicit),
            objects_written: get(&self.objects_written),
            bytes_written: get(&self.bytes_written),
            retries: get(&self.retries),
            failures: get(&self.failures),
            dropped_full: get(&self.dropped_full),
            dropped_closed: get(&self.dropped_closed),
            evictions_observed: get(&self.evictions_observed),
            pending: get(&self.pending),
        }
    }
}
