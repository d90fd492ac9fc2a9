//! `[cold]` wired into the daemon: the cold store, the evacuator installed as the
//! quarantine's eviction sink, the per-category tally, and the audited removals from cold
//! storage.
//!
//! Built once at start (restart required to change). Evidence evicted for capacity goes
//! to the evacuator's queue instead of being dropped (the core still writes its
//! neutralization record); explicit and policy evacuations take evidence out with an
//! `evacuation` record; deletions from cold storage (lifecycle, budgets) append an
//! `evacuation`-shaped record whose destination names why (`cold-expired`,
//! `cold-budget`) and whose id starts with it (`cold-expired-{secure id}`: the chain hash
//! covers the id, not the destination), so every removal from memory or cold is on the
//! audit chain and says which it was.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use object_store::ObjectStoreExt;
use parking_lot::Mutex;
use tokio::runtime::Handle;
use tracehound_cold::{
    ColdConfig, ColdError, ColdEvidence, ColdStore, EvacuateError, EvacuationHandle,
    EvacuationStats, Evacuator, SweepOutcome,
};
use tracehound_core::evidence::{EvacuateRecord, Evidence, EvidenceHandle};
use tracehound_core::lifecycle::ColdItem;
use tracehound_core::quarantine::{EvictionSink, Quarantine};
use tracehound_core::types::{category_of, Severity};

use crate::cold_tally::{CategoryTotals, ColdTally, TallyStore};

/// Most signatures whose severity is remembered for cold objects (a shared metadata
/// handle each, about 200 bytes).
/// Forgetting is safe: an object of unknown severity fails closed (longest retention its
/// category could have, last to go under the budget).
const MAX_REMEMBERED: usize = 1 << 16;

/// How often waiting for the evacuator re-reads its counters.
const IDLE_POLL: Duration = Duration::from_millis(5);

/// A remembered evidence's metadata (shared with the quarantine's handle: no copy of the
/// signature, never the payload), found by signature.
#[derive(Debug, Clone)]
struct Noted(EvidenceHandle);

impl PartialEq for Noted {
    fn eq(&self, other: &Self) -> bool {
        self.0.signature() == other.0.signature()
    }
}

impl Eq for Noted {}

impl std::hash::Hash for Noted {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.signature().hash(state);
    }
}

impl std::borrow::Borrow<str> for Noted {
    fn borrow(&self) -> &str {
        self.0.signature()
    }
}

/// Severities of cold objects evacuated by this run (the envelope does not carry one, so
/// after a restart they are unknown and the lifecycle planner fails closed).
#[derive(Debug, Default)]
struct Severities(Mutex<HashSet<Noted>>);

impl Severities {
    /// Remembers `handle`'s severity: a reference-count increment, no allocation unless
    /// the set grows.
    fn note(&self, handle: EvidenceHandle) {
        let mut set = self.0.lock();
        if set.len() < MAX_REMEMBERED || set.contains(handle.signature()) {
            set.replace(Noted(handle));
        }
    }

    fn get(&self, signature: &str) -> Option<Severity> {
        self.0.lock().get(signature).map(|n| n.0.severity())
    }

    fn forget(&self, signature: &str) {
        self.0.lock().remove(signature);
    }
}

/// The quarantine's eviction sink: hands the evidence to the evacuator (non-blocking; a
/// full queue is a counted drop) and remembers its severity only when it was queued. Runs
/// under the quarantine's lock: no allocation beyond the queue's own.
struct NotingSink {
    handle: Arc<EvacuationHandle>,
    severities: Arc<Severities>,
}

impl EvictionSink for NotingSink {
    fn evicted(&self, evidence: Evidence) {
        let meta = evidence.handle();
        if self.handle.offer(evidence) {
            self.severities.note(meta);
        }
    }
}

/// Why a lifecycle deletion did not happen.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    /// The store failed (the intent record, if appended, stays on the chain).
    #[error(transparent)]
    Store(#[from] ColdError),
}

/// What `delete_audited` found the object to be, to compare with the listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    /// Last write, ms since the epoch.
    pub last_modified_ms: i64,
    /// Object bytes.
    pub size: u64,
}

/// Cold storage as the daemon runs it. See the [module docs](self).
pub struct ColdWiring {
    store: ColdStore,
    /// `None` once shut down.
    evacuator: Mutex<Option<Evacuator>>,
    /// Counters stay readable after shutdown.
    handle: Arc<EvacuationHandle>,
    tally: Arc<ColdTally>,
    severities: Arc<Severities>,
    /// Bounds concurrent retrievals (each holds a whole object in memory).
    retrievals: tokio::sync::Semaphore,
}

/// Most `ColdRetrieve`s verified at once.
pub const MAX_RETRIEVALS: usize = 4;

/// Longest shutdown waits for the evacuator to write what is queued; what is left is
/// logged (its evacuation records are on the chain already; the evidence is lost).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

impl std::fmt::Debug for ColdWiring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColdWiring")
            .field("store", &self.store.description())
            .finish_non_exhaustive()
    }
}

/// What a deletion from cold storage did.
#[derive(Debug, Clone)]
pub struct ColdDeletion {
    /// The audit record appended (destination says why).
    pub record: EvacuateRecord,
    /// Bytes the object took (0 when it was already gone).
    pub bytes: u64,
}

impl ColdWiring {
    /// Opens the store, starts the evacuator on `runtime` and installs it on
    /// `quarantine`; counts what the store already holds in the background.
    pub fn start(
        config: &ColdConfig,
        quarantine: &Quarantine,
        runtime: &Handle,
    ) -> Result<ColdWiring, ColdError> {
        let plain = ColdStore::from_config(config)?;
        let tally = Arc::new(ColdTally::default());
        let counted = TallyStore::new(
            Arc::clone(plain.object_store()),
            &config.prefix,
            Arc::clone(&tally),
        );
        let store = ColdStore::new(Arc::new(counted), &config.prefix, plain.description())
            .with_max_object_bytes(config.max_object_bytes);
        let evacuator = Evacuator::start(store.clone(), config.evacuation, runtime);
        let handle = evacuator.handle();
        let severities = Arc::new(Severities::default());
        let sink: Arc<dyn EvictionSink> = Arc::new(NotingSink {
            handle: Arc::clone(&handle),
            severities: Arc::clone(&severities),
        });
        quarantine.with_store(|s| s.set_eviction_sink(Some(sink)));
        let wiring = ColdWiring {
            store,
            evacuator: Mutex::new(Some(evacuator)),
            handle,
            tally,
            severities,
            retrievals: tokio::sync::Semaphore::new(MAX_RETRIEVALS),
        };
        let (store, tally, handle) = (
            wiring.store.clone(),
            Arc::clone(&wiring.tally),
            Arc::clone(&wiring.handle),
        );
        runtime.spawn(async move {
            let before = handle.stats();
            match count_objects(&store).await {
                // Only when no write could have slipped in (as in `list_and_reconcile`).
                Ok(totals) if quiet(&before, &handle.stats()) => tally.reset(totals),
                Ok(_) => tracing::debug!("cold storage changed while counting; tally kept"),
                Err(e) => tracing::warn!(
                    store = store.description(),
                    error = %e,
                    "cannot list cold storage; its cost accounting starts from zero"
                ),
            }
        });
        tracing::info!(store = wiring.store.description(), "cold storage ready");
        Ok(wiring)
    }

    /// The cold store (verified reads, writes, deletes; counted in the tally).
    pub fn store(&self) -> &ColdStore {
        &self.store
    }

    /// Evacuator counters (readable after shutdown).
    pub fn stats(&self) -> EvacuationStats {
        self.handle.stats()
    }

    /// Objects and bytes in cold storage by category (the running tally).
    pub fn cost(&self) -> BTreeMap<String, CategoryTotals> {
        self.tally.snapshot()
    }

    /// Objects and bytes in cold storage altogether.
    pub fn total(&self) -> CategoryTotals {
        self.tally.total()
    }

    /// The severity of a cold object, when this run evacuated it.
    pub fn severity_of(&self, signature: &str) -> Option<Severity> {
        self.severities.get(signature)
    }

    /// Moves `signature` from the quarantine to the evacuation queue with an `evacuation`
    /// audit record (the caller nudges the ledger). Does not wait for the write.
    pub fn evacuate(
        &self,
        quarantine: &Quarantine,
        signature: &str,
        now_ms: f64,
    ) -> Result<EvacuateRecord, EvacuateError> {
        let guard = self.evacuator.lock();
        let evacuator = guard.as_ref().ok_or(EvacuateError::Closed)?;
        let meta = quarantine.get(signature);
        let record = evacuator.evacuate(quarantine, signature, now_ms)?;
        if let Some(meta) = meta {
            self.severities.note(meta);
        }
        Ok(record)
    }

    /// Evacuates every held evidence `matches` accepts, lowest priority first, until the
    /// queue is full.
    pub fn evacuate_where(
        &self,
        quarantine: &Quarantine,
        now_ms: f64,
        mut matches: impl FnMut(&EvidenceHandle) -> bool,
    ) -> SweepOutcome {
        let guard = self.evacuator.lock();
        let Some(evacuator) = guard.as_ref() else {
            return SweepOutcome::default();
        };
        let severities = &self.severities;
        evacuator.evacuate_where(quarantine, now_ms, |h| {
            let yes = matches(h);
            if yes {
                severities.note(h.clone());
            }
            yes
        })
    }

    /// Reads `signature` back, verified (a damaged object is `Corrupt`). The read,
    /// decompression and hashing run on a blocking thread, at most
    /// [`MAX_RETRIEVALS`] at once (others wait their turn), so request and runtime
    /// worker threads never do the CPU work.
    pub async fn retrieve(&self, signature: String) -> Result<ColdEvidence, ColdError> {
        let _permit = self
            .retrievals
            .acquire()
            .await
            .map_err(|_| ColdError::Task {
                reason: "retrievals closed".into(),
            })?;
        let store = self.store.clone();
        let runtime = Handle::current();
        tokio::task::spawn_blocking(move || runtime.block_on(store.get(&signature)))
            .await
            .map_err(|e| ColdError::Task {
                reason: format!("retrieval: {e}"),
            })?
    }

    /// Every evidence object in the store as planner input (streamed into the compact
    /// form, severity from this run's memory, `None` when unknown), and the tally set from
    /// that listing when no write could have slipped between the listing and the reset
    /// (nothing pending before or after, and no object written meanwhile).
    pub async fn list_and_reconcile(&self) -> Result<Vec<ColdItem>, ColdError> {
        let before = self.stats();
        let mut totals: BTreeMap<String, CategoryTotals> = BTreeMap::new();
        let mut items = Vec::new();
        let mut listing = self.store.list(None)?;
        while let Some(o) = listing.try_next().await? {
            count_into(&mut totals, &o.signature, o.size);
            items.push(ColdItem {
                severity: self.severity_of(&o.signature),
                stored_ms: o.last_modified_ms as f64,
                size: o.size,
                signature: o.signature,
            });
        }
        if quiet(&before, &self.stats()) {
            self.tally.reset(totals);
        }
        Ok(items)
    }

    /// Deletes `signature`'s object with an `evacuation`-shaped audit record whose
    /// destination is `why` (e.g. `cold-expired`) on `quarantine`'s chain (the caller
    /// nudges the ledger). `Ok(None)` when there is no such object, or — with `listed` —
    /// when the object is no longer the one listed (rewritten since: its retention starts
    /// afresh); nothing is recorded then.
    ///
    /// The record is appended *before* the delete (an audited intent), so an object is
    /// never gone without its record; if the delete then fails, the record stays and the
    /// next run tries again (and records again).
    pub async fn delete_audited(
        &self,
        quarantine: &Quarantine,
        signature: &str,
        why: &str,
        now_ms: f64,
        listed: Option<Listed>,
    ) -> Result<Option<ColdDeletion>, DeleteError> {
        let key = object_store::path::Path::from(self.store.key_for(signature)?);
        let meta = match self.store.object_store().head(&key).await {
            Ok(meta) => meta,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(ColdError::from(e).into()),
        };
        let now = Listed {
            last_modified_ms: meta.last_modified.timestamp_millis(),
            size: meta.size,
        };
        if listed.is_some_and(|l| l != now) {
            tracing::debug!(%signature, "cold object rewritten since listing; not deleted");
            return Ok(None);
        }
        let record = EvacuateRecord {
            // The reason in the id, since the chain hash covers the id but no destination.
            id: format!("{why}-{}", tracehound_core::id::generate_secure_id()),
            signature: signature.to_owned(),
            destination: why.to_owned(),
            timestamp: now_ms,
            compressed: false,
            size: usize::try_from(now.size).unwrap_or(usize::MAX),
        };
        quarantine.with_store(|s| s.audit_mut().append_evacuation(&record));
        if let Err(e) = self.store.delete(signature).await {
            tracing::warn!(%signature, destination = why, error = %e,
                "cold deletion recorded but the delete failed; retried next run");
            return Err(e.into());
        }
        self.severities.forget(signature);
        tracing::info!(%signature, destination = why, bytes = now.size,
            "evidence deleted from cold storage");
        Ok(Some(ColdDeletion {
            record,
            bytes: now.size,
        }))
    }

    /// Waits until nothing is queued or being written (no lock held; callers bound it,
    /// e.g. with `tokio::time::timeout`). Prefer [`Self::wait_queued`].
    pub async fn wait_idle(&self) {
        while self.stats().pending != 0 {
            tokio::time::sleep(IDLE_POLL).await;
        }
    }

    /// Waits, at most `limit`, until the evidence queued before this call is written (or
    /// given up on): until as many jobs have completed as had completed or were pending at
    /// the call, or nothing is pending. Holds no lock. `false` on timeout. (The
    /// evacuator's own `wait_idle` needs the `Evacuator`, which lives behind the shutdown
    /// mutex, and waits for later evidence too.)
    pub async fn wait_queued(&self, limit: Duration) -> bool {
        let done = |s: &EvacuationStats| s.objects_written + s.failures;
        let at = self.stats();
        let target = done(&at) + at.pending;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let s = self.stats();
            if s.pending == 0 || done(&s) >= target {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(IDLE_POLL).await;
        }
    }

    /// Stops taking evidence (later evictions count as dropped), writes what is queued
    /// for at most [`SHUTDOWN_GRACE`] and returns the counters; `None` if already shut
    /// down. On timeout the writer is left behind, and how much was left undrained is
    /// logged, so the caller can close the ledger anyway.
    pub async fn shutdown(&self) -> Option<EvacuationStats> {
        let evacuator = self.evacuator.lock().take()?;
        match tokio::time::timeout(SHUTDOWN_GRACE, evacuator.shutdown()).await {
            Ok(stats) => Some(stats),
            Err(_) => {
                let stats = self.stats();
                tracing::warn!(
                    undrained = stats.pending,
                    grace = ?SHUTDOWN_GRACE,
                    "cold storage writer did not finish in time; evidence left unwritten"
                );
                Some(stats)
            }
        }
    }
}

/// Whether nothing was written between two snapshots (nothing pending at either, no
/// object written in between): a listing taken between them is exact.
fn quiet(before: &EvacuationStats, after: &EvacuationStats) -> bool {
    before.pending == 0 && after.pending == 0 && before.objects_written == after.objects_written
}

fn count_into(totals: &mut BTreeMap<String, CategoryTotals>, signature: &str, size: u64) {
    let category = category_of(signature).unwrap_or("");
    let t = match totals.get_mut(category) {
        Some(t) => t,
        None => totals.entry(category.to_owned()).or_default(),
    };
    t.count += 1;
    t.bytes = t.bytes.saturating_add(size);
}

async fn count_objects(store: &ColdStore) -> Result<BTreeMap<String, CategoryTotals>, ColdError> {
    let mut totals = BTreeMap::new();
    let mut listing = store.list(None)?;
    while let Some(o) = listing.try_next().await? {
        count_into(&mut totals, &o.signature, o.size);
    }
    Ok(totals)
}
