//! Evacuation: evidence leaves the quarantine into a bounded queue, and one async task
//! writes it to the cold store with retries and backoff.
//!
//! Two ways in, neither of which waits on storage:
//! * **eviction** — [`Evacuator::install`] makes the quarantine hand every evidence it
//!   evicts for capacity to an [`EvacuationHandle`] (a core `EvictionSink`) instead of
//!   dropping it; the handle `try_send`s it into the queue under the quarantine lock, and
//!   a full queue drops it and counts the drop;
//! * **explicit / policy** — [`Evacuator::evacuate`] reserves a queue slot first, then
//!   takes the evidence out of the quarantine with an `evacuation` audit record, so a full
//!   queue leaves the evidence where it was.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::{mpsc, Notify};
use tokio::task::{JoinHandle, JoinSet};
use tracehound_core::agent::{InterceptEvent, InterceptObserver};
use tracehound_core::evidence::{EvacuateRecord, Evidence, EvidenceHandle};
use tracehound_core::quarantine::{EvictionSink, Quarantine};

use crate::config::EvacuationConfig;
use crate::envelope::ColdEvidence;
use crate::stats::{add, bump, Counters, EvacuationStats};
use crate::{ColdError, ColdStore};

/// Why an explicit evacuation did not happen (the evidence stays in the quarantine).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvacuateError {
    /// The quarantine does not hold this signature.
    #[error("evidence {signature} is not in the quarantine")]
    NotHeld {
        /// The signature asked for.
        signature: String,
    },
    /// The queue is full; try again later.
    #[error("evacuation queue is full")]
    QueueFull,
    /// The evacuator has shut down.
    #[error("evacuator has shut down")]
    Closed,
}

/// What a policy sweep ([`Evacuator::evacuate_where`]) did.
#[derive(Debug, Default)]
pub struct SweepOutcome {
    /// Audit records of the evidence queued for cold storage.
    pub evacuated: Vec<EvacuateRecord>,
    /// Matching evidence left in the quarantine because the queue filled up.
    pub left_in_quarantine: usize,
}

/// One piece of evidence on its way to the store.
struct Job {
    signature: String,
    bytes: Vec<u8>,
    compressed: bool,
}

struct Shared {
    store: ColdStore,
    config: EvacuationConfig,
    counters: Counters,
    /// Woken whenever `pending` drops.
    idle: Notify,
    /// Asks the drain task to stop taking new work and finish what is queued.
    shutdown: Notify,
}

impl Shared {
    fn settle(&self) {
        self.counters.pending.fetch_sub(1, Ordering::AcqRel);
        self.idle.notify_waiters();
    }
}

/// The intercept-side end of the queue: the quarantine's eviction sink and an intercept
/// observer (which only counts evicted handles, to reconcile with the queue's counts).
/// Never blocks.
#[derive(Clone)]
pub struct EvacuationHandle {
    tx: mpsc::Sender<Job>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EvacuationHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvacuationHandle")
            .field("store", &self.shared.store.description())
            .finish_non_exhaustive()
    }
}

impl EvacuationHandle {
    /// Offers evidence to the queue without waiting; `false` if it was dropped (queue
    /// full or shut down — counted either way).
    pub fn offer(&self, evidence: Evidence) -> bool {
        let c = &self.shared.counters;
        let job = Job {
            signature: evidence.signature().to_owned(),
            compressed: evidence.compressed(),
            bytes: evidence.into_bytes(),
        };
        c.pending.fetch_add(1, Ordering::AcqRel);
        match self.tx.try_send(job) {
            Ok(()) => {
                bump(&c.enqueued);
                bump(&c.from_evictions);
                true
            }
            Err(e) => {
                bump(match e {
                    mpsc::error::TrySendError::Full(_) => &c.dropped_full,
                    mpsc::error::TrySendError::Closed(_) => &c.dropped_closed,
                });
                self.shared.settle();
                false
            }
        }
    }
}

impl EvacuationHandle {
    /// Counters so far (the same as [`Evacuator::stats`], readable after shutdown).
    pub fn stats(&self) -> EvacuationStats {
        self.shared.counters.snapshot()
    }
}

impl EvictionSink for EvacuationHandle {
    fn evicted(&self, evidence: Evidence) {
        self.offer(evidence);
    }
}

impl InterceptObserver for EvacuationHandle {
    fn observe(&self, event: &InterceptEvent<'_>) {
        if !event.evicted.is_empty() {
            add(
                &self.shared.counters.evictions_observed,
                event.evicted.len() as u64,
            );
        }
    }
}

/// Moves evidence from the quarantine to a [`ColdStore`] in the background.
#[derive(Debug)]
pub struct Evacuator {
    handle: EvacuationHandle,
    task: JoinHandle<()>,
}

impl Evacuator {
    /// Starts the writer task on `runtime`. Zero capacity, concurrency or attempts are
    /// raised to 1.
    pub fn start(store: ColdStore, config: EvacuationConfig, runtime: &Handle) -> Evacuator {
        let config = EvacuationConfig {
            queue_capacity: config.queue_capacity.max(1),
            concurrency: config.concurrency.max(1),
            max_attempts: config.max_attempts.max(1),
            ..config
        };
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let shared = Arc::new(Shared {
            store,
            config,
            counters: Counters::default(),
            idle: Notify::new(),
            shutdown: Notify::new(),
        });
        let task = runtime.spawn(drain(rx, Arc::clone(&shared)));
        Evacuator {
            handle: EvacuationHandle { tx, shared },
            task,
        }
    }

    /// The intercept-side handle (eviction sink and observer), e.g. to add to an
    /// observer fan-out.
    pub fn handle(&self) -> Arc<EvacuationHandle> {
        Arc::new(self.handle.clone())
    }

    /// Makes `quarantine` hand evicted evidence to this evacuator instead of dropping it.
    pub fn install(&self, quarantine: &Quarantine) {
        let sink: Arc<dyn EvictionSink> = self.handle();
        quarantine.with_store(|s| s.set_eviction_sink(Some(sink)));
    }

    /// The store written to.
    pub fn store(&self) -> &ColdStore {
        &self.handle.shared.store
    }

    /// Counters so far.
    pub fn stats(&self) -> EvacuationStats {
        self.handle.shared.counters.snapshot()
    }

    /// Moves `signature` from the quarantine to the queue, with an `evacuation` audit
    /// record whose destination is the store's description. Does not wait for the write.
    pub fn evacuate(
        &self,
        quarantine: &Quarantine,
        signature: &str,
        now_ms: f64,
    ) -> Result<EvacuateRecord, EvacuateError> {
        let shared = &self.handle.shared;
        let permit = self.handle.tx.try_reserve().map_err(|e| match e {
            mpsc::error::TrySendError::Full(()) => EvacuateError::QueueFull,
            mpsc::error::TrySendError::Closed(()) => EvacuateError::Closed,
        })?;
        let destination = shared.store.description();
        let (job, record) = quarantine
            .with_store(|s| {
                let compressed = s.get(signature)?.compressed();
                let (bytes, record) = s.evacuate(signature, destination, now_ms)?;
                let job = Job {
                    signature: signature.to_owned(),
                    bytes,
                    compressed,
                };
                Some((job, record))
            })
            .ok_or_else(|| EvacuateError::NotHeld {
                signature: signature.to_owned(),
            })?;
        shared.counters.pending.fetch_add(1, Ordering::AcqRel);
        bump(&shared.counters.enqueued);
        bump(&shared.counters.explicit);
        permit.send(job);
        Ok(record)
    }

    /// Policy hook: evacuates every held evidence `matches` accepts, lowest priority
    /// first (the quarantine's eviction order), until the queue is full.
    pub fn evacuate_where(
        &self,
        quarantine: &Quarantine,
        now_ms: f64,
        mut matches: impl FnMut(&EvidenceHandle) -> bool,
    ) -> SweepOutcome {
        let candidates: Vec<EvidenceHandle> = quarantine
            .with_store(|s| s.eviction_order())
            .into_iter()
            .filter(|h| matches(h))
            .collect();
        let mut out = SweepOutcome::default();
        for (i, h) in candidates.iter().enumerate() {
            match self.evacuate(quarantine, h.signature(), now_ms) {
                Ok(record) => out.evacuated.push(record),
                Err(EvacuateError::NotHeld { .. }) => {}
                Err(EvacuateError::QueueFull | EvacuateError::Closed) => {
                    out.left_in_quarantine = candidates.len() - i;
                    break;
                }
            }
        }
        out
    }

    /// Reads evidence back by signature, verified (see [`ColdStore::get`]).
    pub async fn retrieve(&self, signature: &str) -> Result<ColdEvidence, ColdError> {
        self.store().get(signature).await
    }

    /// Waits until nothing is queued or being written.
    pub async fn wait_idle(&self) {
        let shared = &self.handle.shared;
        loop {
            let notified = shared.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if shared.counters.pending.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Stops accepting evidence (later evictions count as `dropped_closed`), writes
    /// what is queued, and returns the final counters.
    pub async fn shutdown(self) -> EvacuationStats {
        let Evacuator { handle, task } = self;
        handle.shared.shutdown.notify_one();
        if let Err(e) = task.await {
            tracing::warn!(error = %e, "cold storage writer task ended abnormally");
        }
        handle.shared.counters.snapshot()
    }
}

/// The writer: takes jobs off the queue, at most `concurrency` in flight.
async fn drain(mut rx: mpsc::Receiver<Job>, shared: Arc<Shared>) {
    let mut in_flight = JoinSet::new();
    let mut closing = false;
    loop {
        tokio::select! {
            biased;
            () = shared.shutdown.notified(), if !closing => {
                rx.close();
                closing = true;
            }
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            job = rx.recv(), if in_flight.len() < shared.config.concurrency => match job {
                Some(job) => {
                    in_flight.spawn(write(Arc::clone(&shared), job));
                }
                None => break,
            },
        }
    }
    while in_flight.join_next().await.is_some() {}
}

/// Writes one job, counting the outcome; always settles `pending`.
async fn write(shared: Arc<Shared>, job: Job) {
    let signature = job.signature.clone();
    match write_with_retries(&shared, job).await {
        Ok(bytes) => {
            bump(&shared.counters.objects_written);
            add(&shared.counters.bytes_written, bytes);
        }
        Err(e) => {
            bump(&shared.counters.failures);
            tracing::warn!(%signature, error = %e, "evidence could not be written to cold storage");
        }
    }
    shared.settle();
}

async fn write_with_retries(shared: &Shared, job: Job) -> Result<u64, ColdError> {
    let store = shared.store.clone();
    // Compression and hashing are CPU work: keep them off the async workers.
    let sealed =
        tokio::task::spawn_blocking(move || store.seal(&job.signature, &job.bytes, job.compressed))
            .await
            .map_err(|e| ColdError::Task {
                reason: e.to_string(),
            })??;
    let mut attempt = 1;
    loop {
        // Erasure: a signature tombstoned while this job was queued or sealing is never
        // written, and its fresh key goes (checked before every attempt).
        if shared.store.refuses_write(&sealed.signature) {
            discard_key(shared, &sealed.signature).await;
            return Err(ColdError::Task {
                reason: "refused by the write filter (being erased)".into(),
            });
        }
        match shared.store.put_sealed(&sealed).await {
            Ok(receipt) => return Ok(receipt.bytes),
            Err(e) if e.is_transient() && attempt < shared.config.max_attempts => {
                bump(&shared.counters.retries);
                tokio::time::sleep(shared.config.backoff(attempt)).await;
                attempt += 1;
            }
            Err(e) => {
                // Never written: its key would be an orphan (unless an earlier copy of
                // this content-addressed object is stored under it).
                if matches!(shared.store.contains(&sealed.signature).await, Ok(false)) {
                    discard_key(shared, &sealed.signature).await;
                }
                return Err(e);
            }
        }
    }
}

/// Discards the data key of evidence that was not written (key files block on fsync).
async fn discard_key(shared: &Shared, signature: &str) {
    let (store, sig) = (shared.store.clone(), signature.to_owned());
    let outcome = tokio::task::spawn_blocking(move || store.discard_key(&sig)).await;
    if !matches!(outcome, Ok(Ok(()))) {
        tracing::warn!(%signature, "the key of unwritten evidence could not be discarded");
    }
}
