//! The quarantine (spec §10): a bounded store of evidence keyed by signature.
//!
//! Bounded by count and bytes (stored, possibly compressed, sizes). When over either bound
//! it evicts the lowest severity first, then the oldest `captured`, ties by insertion
//! order — v1's order — but through an ordered index, so each eviction costs O(log n)
//! instead of v1's full sort. Every eviction, `neutralize`, `evacuate` and `flush` appends a
//! record to the audit chain the quarantine owns, with v1's semantics.
//!
//! v1 behaviour kept on purpose: an insert that pushes the store over a bound evicts until
//! it fits, which can evict the new evidence itself; the insert still reports `Inserted`
//! (with `self_evicted` set in [`InsertOutcome::Inserted`] so callers can tell).
//!
//! [`QuarantineStore`] is the single-threaded core (`&mut self`); [`Quarantine`] wraps it
//! in a mutex for the agent (only the threat path touches it) and delivers memory-pressure
//! events to an observer outside the lock.

mod store;

use std::sync::Arc;

use parking_lot::Mutex;

use crate::audit::AuditChain;
use crate::evidence::{
    EvacuateRecord, Evidence, EvidenceHandle, NeutralizationRecord, PurgeReason, PurgeRecord,
};
use crate::types::Severity;

pub use store::QuarantineStore;
pub use store::ERASURE_ID_PREFIX;

/// Quarantine bounds (v1 `{maxCount, maxBytes}`; eviction is always by priority).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuarantineConfig {
    /// Most pieces of evidence held at once.
    pub max_count: usize,
    /// Most stored bytes held at once.
    pub max_bytes: usize,
}

impl Default for QuarantineConfig {
    /// v1's defaults: 10 000 items, 100 000 000 bytes.
    fn default() -> Self {
        QuarantineConfig {
            max_count: 10_000,
            max_bytes: 100_000_000,
        }
    }
}

/// Memory pressure: stored bytes against `max_bytes` (v1's documented 70/85/95 % levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PressureLevel {
    /// Below 70 %.
    Normal,
    /// 70 % up to 85 %.
    Warning,
    /// 85 % up to 95 %.
    Critical,
    /// 95 % and above.
    Emergency,
}

impl PressureLevel {
    /// The level for `bytes` out of `max_bytes` (an empty budget is `Normal` while empty).
    pub fn for_usage(bytes: usize, max_bytes: usize) -> PressureLevel {
        let (b, m) = (bytes as u128 * 100, max_bytes as u128);
        if bytes == 0 {
            PressureLevel::Normal
        } else if b >= m * 95 {
            PressureLevel::Emergency
        } else if b >= m * 85 {
            PressureLevel::Critical
        } else if b >= m * 70 {
            PressureLevel::Warning
        } else {
            PressureLevel::Normal
        }
    }
}

/// Something observers may want to know; reported once per change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuarantineEvent {
    /// The pressure level changed (up or down) as a result of one operation.
    Pressure {
        /// Level before the operation.
        from: PressureLevel,
        /// Level after it.
        to: PressureLevel,
        /// Stored bytes after it.
        bytes: usize,
        /// The byte budget.
        max_bytes: usize,
    },
}

/// Per-severity counts (v1 `stats.bySeverity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeverityCounts {
    /// `low`.
    pub low: usize,
    /// `medium`.
    pub medium: usize,
    /// `high`.
    pub high: usize,
    /// `critical`.
    pub critical: usize,
}

impl SeverityCounts {
    /// The count for one severity.
    pub fn get(&self, s: Severity) -> usize {
        match s {
            Severity::Low => self.low,
            Severity::Medium => self.medium,
            Severity::High => self.high,
            Severity::Critical => self.critical,
        }
    }
}

/// v1 `stats`: `{count, bytes, bySeverity}`, maintained incrementally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuarantineStats {
    /// Pieces of evidence held.
    pub count: usize,
    /// Stored bytes held.
    pub bytes: usize,
    /// Count per severity.
    pub by_severity: SeverityCounts,
}

/// What [`QuarantineStore::insert`] did.
#[derive(Debug)]
pub enum InsertOutcome {
    /// v1 `{status: 'inserted'}`.
    Inserted {
        /// Handle to the new evidence (reports `is_disposed()` if it was self-evicted).
        handle: EvidenceHandle,
        /// Evidence evicted to make room, in eviction order (may include the new one).
        evicted: Vec<EvidenceHandle>,
        /// True if the new evidence was itself evicted (v1 still says `inserted`).
        self_evicted: bool,
    },
    /// v1 `{status: 'duplicate', existing}`: same signature already held. The rejected
    /// evidence is handed back untouched.
    Duplicate {
        /// The evidence already stored under this signature.
        existing: EvidenceHandle,
        /// The evidence that was not inserted.
        rejected: Evidence,
    },
}

impl InsertOutcome {
    /// True for `Inserted` (even if self-evicted).
    pub fn is_inserted(&self) -> bool {
        matches!(self, InsertOutcome::Inserted { .. })
    }
}

/// v1 `replace(oldSig, newEv)`: `replaced` (old one neutralized) or `inserted_only`.
#[derive(Debug)]
pub struct ReplaceOutcome {
    /// The neutralization record of the old evidence, if it was held.
    pub neutralized: Option<NeutralizationRecord>,
    /// What inserting the new evidence did.
    pub inserted: InsertOutcome,
}

/// Receives evidence evicted for capacity instead of it being dropped (see
/// [`QuarantineStore::set_eviction_sink`]). Called with the quarantine lock held, on the
/// intercepting thread: implementations must hand the evidence off without blocking
/// (e.g. `try_send` into a bounded queue) and must not call back into the quarantine.
pub trait EvictionSink: Send + Sync {
    /// Takes ownership of one evicted piece of evidence (its neutralization is already
    /// in the audit chain). Handles report it disposed once this drops it.
    fn evicted(&self, evidence: Evidence);
}

type Observer = Arc<dyn Fn(&QuarantineEvent) + Send + Sync>;

/// The thread-safe quarantine: a [`QuarantineStore`] behind a mutex. Observer callbacks
/// run after the lock is released, so they may call back into the quarantine.
pub struct Quarantine {
    inner: Mutex<QuarantineStore>,
    observer: Option<Observer>,
}

impl std::fmt::Debug for Quarantine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quarantine")
            .field("observed", &self.observer.is_some())
            .finish_non_exhaustive()
    }
}

impl Quarantine {
    /// An empty quarantine with a fresh audit chain.
    pub fn new(config: QuarantineConfig) -> Quarantine {
        Quarantine::from_store(QuarantineStore::new(config))
    }

    /// Wraps an existing store (e.g. one built with an imported audit chain).
    pub fn from_store(store: QuarantineStore) -> Quarantine {
        Quarantine {
            inner: Mutex::new(store),
            observer: None,
        }
    }

    /// Calls `observer` for every event (pressure level changes), outside the lock.
    pub fn with_observer(
        mut self,
        observer: impl Fn(&QuarantineEvent) + Send + Sync + 'static,
    ) -> Quarantine {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Runs `f` on the locked store; use for several operations under one lock.
    pub fn with_store<R>(&self, f: impl FnOnce(&mut QuarantineStore) -> R) -> R {
        let (r, events) = {
            let mut store = self.inner.lock();
            let r = f(&mut store);
            let events = if self.observer.is_some() {
                store.drain_events()
            } else {
                Vec::new()
            };
            (r, events)
        };
        if let Some(obs) = &self.observer {
            events.iter().for_each(|e| obs(e));
        }
        r
    }

    /// See [`QuarantineStore::insert`].
    pub fn insert(&self, evidence: Evidence, now_ms: f64) -> InsertOutcome {
        self.with_store(|s| s.insert(evidence, now_ms))
    }

    /// See [`QuarantineStore::get`].
    pub fn get(&self, signature: &str) -> Option<EvidenceHandle> {
        self.inner.lock().get(signature)
    }

    /// See [`QuarantineStore::has`].
    pub fn has(&self, signature: &str) -> bool {
        self.inner.lock().has(signature)
    }

    /// See [`QuarantineStore::neutralize`].
    pub fn neutralize(&self, signature: &str, now_ms: f64) -> Option<NeutralizationRecord> {
        self.with_store(|s| s.neutralize(signature, now_ms))
    }

    /// See [`QuarantineStore::evacuate`].
    pub fn evacuate(
        &self,
        signature: &str,
        destination: &str,
        now_ms: f64,
    ) -> Option<(Vec<u8>, EvacuateRecord)> {
        self.with_store(|s| s.evacuate(signature, destination, now_ms))
    }

    /// See [`QuarantineStore::take`].
    pub fn take(&self, signature: &str) -> Option<Evidence> {
        self.with_store(|s| s.take(signature))
    }

    /// See [`QuarantineStore::purge`].
    pub fn purge(&self, signature: &str, reason: PurgeReason, now_ms: f64) -> Option<PurgeRecord> {
        self.with_store(|s| s.purge(signature, reason, now_ms))
    }

    /// See [`QuarantineStore::replace`].
    pub fn replace(&self, old_signature: &str, evidence: Evidence, now_ms: f64) -> ReplaceOutcome {
        self.with_store(|s| s.replace(old_signature, evidence, now_ms))
    }

    /// See [`QuarantineStore::flush`].
    pub fn flush(&self, now_ms: f64) -> usize {
        self.with_store(|s| s.flush(now_ms))
    }

    /// See [`QuarantineStore::stats`].
    pub fn stats(&self) -> QuarantineStats {
        self.inner.lock().stats()
    }

    /// See [`QuarantineStore::pressure`].
    pub fn pressure(&self) -> PressureLevel {
        self.inner.lock().pressure()
    }

    /// Reads the audit chain under the lock (e.g. `q.with_audit(|c| c.export_json())`).
    pub fn with_audit<R>(&self, f: impl FnOnce(&AuditChain) -> R) -> R {
        f(self.inner.lock().audit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ThreatCategory, ThreatSignal};

    fn ev(n: u32, severity: Severity, captured: f64, pad: usize) -> Evidence {
        let payload = serde_json::json!({ "n": n, "p": "x".repeat(pad) });
        let threat = ThreatSignal {
            category: ThreatCategory::Spam,
            severity,
        };
        crate::evidence::EvidenceFactory::new()
            .create_from(&payload, threat, captured, 1 << 20)
            .unwrap()
    }

    #[test]
    fn pressure_levels_are_reported_once_per_crossing() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let q = Quarantine::new(QuarantineConfig {
            max_count: 100,
            max_bytes: 1000,
        })
        .with_observer(move |e| sink.lock().push(*e));
        let a = ev(1, Severity::Low, 1.0, 700); // ≈ 71 % → warning
        let a_sig = a.signature().to_owned();
        q.insert(a, 0.0);
        q.insert(ev(2, Severity::Low, 2.0, 1), 0.0); // still warning: no event
        q.insert(ev(3, Severity::High, 3.0, 220), 0.0); // 963 bytes ≥ 95 % → emergency
        q.neutralize(&a_sig, 1.0); // back to normal
        let levels: Vec<(PressureLevel, PressureLevel)> = seen
            .lock()
            .iter()
            .map(|QuarantineEvent::Pressure { from, to, .. }| (*from, *to))
            .collect();
        use PressureLevel::*;
        assert_eq!(
            levels,
            vec![(Normal, Warning), (Warning, Emergency), (Emergency, Normal)]
        );
        assert_eq!(q.pressure(), Normal);
        assert_eq!(q.with_audit(|c| c.len()), 1);
    }

    #[test]
    fn eviction_is_by_severity_then_age_then_insertion() {
        let q = Quarantine::new(QuarantineConfig {
            max_count: 3,
            max_bytes: usize::MAX,
        });
        let first_old = ev(1, Severity::Medium, 5.0, 0);
        let tie = ev(2, Severity::Medium, 5.0, 0);
        let (s1, s2) = (first_old.signature().to_owned(), tie.signature().to_owned());
        q.insert(ev(0, Severity::High, 0.0, 0), 0.0);
        q.insert(first_old, 0.0);
        q.insert(tie, 0.0);
        let out = q.insert(ev(3, Severity::Critical, 9.0, 0), 0.0);
        let InsertOutcome::Inserted {
            evicted,
            self_evicted,
            ..
        } = out
        else {
            panic!("not inserted")
        };
        assert_eq!(
            evicted.iter().map(|h| h.signature()).collect::<Vec<_>>(),
            vec![s1.as_str()]
        );
        assert!(!self_evicted);
        assert!(q.has(&s2) && !q.has(&s1));
        assert_eq!(q.with_audit(|c| c.verify()), Ok(()));
    }

    #[test]
    fn purge_take_and_flush_account_and_audit_as_v1() {
        let q = Quarantine::new(QuarantineConfig::default());
        let a = ev(1, Severity::Low, 1.0, 0);
        let b = ev(2, Severity::High, 2.0, 0);
        let c = ev(3, Severity::Critical, 3.0, 0);
        let (sa, sb) = (a.signature().to_owned(), b.signature().to_owned());
        let hb = b.handle();
        for e in [a, b, c] {
            q.insert(e, 0.0);
        }
        let p = q.purge(&sa, PurgeReason::Timeout, 10.0).unwrap();
        assert_eq!(
            (
                p.scent.id.as_str(),
                p.scent.source.as_str(),
                p.reason.as_str()
            ),
            (sa.as_str(), "unknown", "timeout")
        );
        assert!(p.id.starts_with("prg-10-"));
        let taken = q.take(&sb).unwrap();
        assert!(!hb.is_disposed(), "the caller owns it now");
        drop(taken);
        assert!(hb.is_disposed());
        assert_eq!(
            q.with_audit(|c| c.len()),
            0,
            "purge and take are not audited (v1)"
        );
        assert_eq!(q.flush(11.0), 1);
        assert_eq!(q.stats(), QuarantineStats::default());
        assert_eq!(q.with_audit(|c| c.len()), 1);
    }
}
