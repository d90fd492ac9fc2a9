//! One sink: its bounded queue, its counters and the task that delivers from it.
//!
//! The queue is filled by the dispatcher (never by the intercepting thread) and holds
//! `Arc<Record>`s shared between sinks. The batch being delivered sits in `inflight`,
//! where an erasure can still reach it: each attempt re-reads it, so a purged record is
//! not sent again by a retry.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::{watch, Notify};

use crate::backoff;
use crate::format::{ecs, hec};
use crate::http::{self, HttpClient, SendError};
use crate::record::Record;
use crate::sink::{RequestBuilder, SinkKind};

/// One sink's counters at a point in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkStats {
    /// The sink's name.
    pub name: String,
    /// Its kind.
    pub kind: SinkKind,
    /// Records waiting in the queue.
    pub queued: u64,
    /// Records in the request being delivered.
    pub inflight: u64,
    /// Records delivered (2xx; for HEC with acks: also acknowledged).
    pub sent: u64,
    /// Attempts repeated after a failure.
    pub retried: u64,
    /// Records dropped because the queue was full.
    pub dropped: u64,
    /// Records given up on (attempts exhausted or a non-retryable answer).
    pub failed: u64,
    /// HEC: records whose indexing Splunk acknowledged.
    pub acked: u64,
    /// Records removed by `purge_matching` or `purge_scent_ids`.
    pub purged: u64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    retried: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    acked: AtomicU64,
    purged: AtomicU64,
}

/// A sink's shared state.
pub(crate) struct SinkState {
    pub(crate) builder: RequestBuilder,
    queue: Mutex<VecDeque<Arc<Record>>>,
    inflight: Mutex<Vec<Arc<Record>>>,
    wake: Notify,
    counters: Counters,
}

fn add(c: &AtomicU64, n: usize) {
    c.fetch_add(n as u64, Ordering::Relaxed);
}

impl SinkState {
    pub(crate) fn new(builder: RequestBuilder) -> SinkState {
        SinkState {
            builder,
            queue: Mutex::new(VecDeque::new()),
            inflight: Mutex::new(Vec::new()),
            wake: Notify::new(),
            counters: Counters::default(),
        }
    }

    /// Queues `r`, or drops and counts it when the queue is full. Never waits.
    pub(crate) fn push(&self, r: Arc<Record>) {
        let cap = self.builder.config().queue_capacity.max(1);
        {
            let mut q = self.queue.lock();
            if q.len() >= cap {
                add(&self.counters.dropped, 1);
                return;
            }
            q.push_back(r);
        }
        self.wake.notify_one();
    }

    /// Whether the queue is at capacity (the next push would be dropped).
    pub(crate) fn is_full(&self) -> bool {
        self.queue.lock().len() >= self.builder.config().queue_capacity.max(1)
    }

    /// Moves the next batch into `inflight`; false when the queue is empty.
    ///
    /// The queue lock is held until the batch sits in `inflight`: a purge taking the
    /// queue lock in between would otherwise find the records in neither place and
    /// let erased records be sent. Lock order is queue, then inflight; `purge_where`
    /// never holds both, so this cannot deadlock.
    fn take_batch(&self) -> bool {
        let limit = self.builder.config().batch_limit();
        let mut q = self.queue.lock();
        let n = q.len().min(limit);
        if n == 0 {
            return false;
        }
        let batch: Vec<Arc<Record>> = q.drain(..n).collect();
        *self.inflight.lock() = batch;
        drop(q);
        true
    }

    /// Removes queued and in-flight records concerning `signature` or `source`.
    pub(crate) fn purge(&self, signature: Option<&str>, source: Option<&str>) -> usize {
        self.purge_where(|r| r.matches(signature, source))
    }

    /// Removes queued and in-flight records that may carry one of `scent_ids`.
    pub(crate) fn purge_scents(&self, scent_ids: &[String]) -> usize {
        self.purge_where(|r| r.concerns_scent(scent_ids))
    }

    fn purge_where(&self, doomed: impl Fn(&Record) -> bool) -> usize {
        let mut removed = 0;
        {
            let mut q = self.queue.lock();
            let before = q.len();
            q.retain(|r| !doomed(r));
            removed += before - q.len();
        }
        {
            let mut f = self.inflight.lock();
            let before = f.len();
            f.retain(|r| !doomed(r));
            removed += before - f.len();
        }
        add(&self.counters.purged, removed);
        removed
    }

    pub(crate) fn stats(&self) -> SinkStats {
        let c = &self.counters;
        let config = self.builder.config();
        // Both lengths under the queue lock (same order as `take_batch`), so a batch
        // moving from the queue to `inflight` is counted exactly once.
        let (queued, inflight) = {
            let q = self.queue.lock();
            (q.len() as u64, self.inflight.lock().len() as u64)
        };
        SinkStats {
            name: config.name.clone(),
            kind: config.kind,
            queued,
            inflight,
            sent: c.sent.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            acked: c.acked.load(Ordering::Relaxed),
            purged: c.purged.load(Ordering::Relaxed),
        }
    }

    /// Clears `inflight` and counts what was in it into `counter`.
    fn finish(&self, counter: &AtomicU64) {
        let n = std::mem::take(&mut *self.inflight.lock()).len();
        add(counter, n);
    }
}

/// Delivers from `state`'s queue until `done` is set and the queue is empty.
pub(crate) async fn run(
    state: Arc<SinkState>,
    client: HttpClient,
    mut done: watch::Receiver<bool>,
) {
    loop {
        if state.take_batch() {
            deliver(&state, &client).await;
            continue;
        }
        if *done.borrow() {
            return;
        }
        tokio::select! {
            _ = state.wake.notified() => {}
            changed = done.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// What one attempt came to.
enum Attempt {
    Delivered { acked: bool },
    Retry(String),
    GiveUp(String),
}

async fn attempt(state: &SinkState, client: &HttpClient, recs: &[Arc<Record>]) -> Attempt {
    let config = state.builder.config();
    let refs: Vec<&Record> = recs.iter().map(Arc::as_ref).collect();
    let req = state.builder.build(&refs);
    match http::post(client, &req, config.timeout).await {
        Ok((status, body)) if (200..300).contains(&status) => match config.kind {
            SinkKind::SplunkHec if config.hec_ack => match hec::parse_ack_id(&body) {
                Some(id) if wait_ack(state, client, id).await => Attempt::Delivered { acked: true },
                Some(id) => Attempt::Retry(format!("ack {id} not confirmed in time")),
                // With acks configured, a 2xx without a valid ackId proves nothing was
                // indexed (a token without acknowledgement, or a mangled reply): retry.
                None => Attempt::Retry("2xx reply without a valid ackId".into()),
            },
            SinkKind::Elasticsearch if ecs::bulk_has_errors(&body) => {
                Attempt::Retry("_bulk reported item errors".into())
            }
            _ => Attempt::Delivered { acked: false },
        },
        Ok((status, _)) if backoff::retryable_status(status) => {
            Attempt::Retry(format!("HTTP {status}"))
        }
        Ok((status, _)) => Attempt::GiveUp(format!("HTTP {status}")),
        Err(e @ SendError::Invalid(_)) => Attempt::GiveUp(e.to_string()),
        Err(e) => Attempt::Retry(e.to_string()),
    }
}

async fn deliver(state: &SinkState, client: &HttpClient) {
    let config = state.builder.config();
    let mut tries = 0u32;
    loop {
        tries += 1;
        // Re-read each time: an erasure may have removed records meanwhile.
        let recs: Vec<Arc<Record>> = state.inflight.lock().clone();
        if recs.is_empty() {
            return;
        }
        let why = match attempt(state, client, &recs).await {
            Attempt::Delivered { acked } => {
                if acked {
                    add(&state.counters.acked, state.inflight.lock().len());
                }
                state.finish(&state.counters.sent);
                return;
            }
            Attempt::Retry(why) if tries < config.max_attempts.max(1) => {
                state.counters.retried.fetch_add(1, Ordering::Relaxed);
                let jitter = rand::random::<f64>();
                let wait = backoff::delay(config.retry_base, config.retry_max, tries, jitter);
                tracing::debug!(sink = %config.name, attempt = tries, "delivery failed ({why}); retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
            Attempt::Retry(why) | Attempt::GiveUp(why) => why,
        };
        // The URL is not logged: it may carry credentials.
        tracing::warn!(sink = %config.name, attempts = tries, "delivery failed: {why}");
        state.finish(&state.counters.failed);
        return;
    }
}

/// Polls `/services/collector/ack` until `id` is acknowledged or `ack_timeout` passes.
async fn wait_ack(state: &SinkState, client: &HttpClient, id: u64) -> bool {
    let config = state.builder.config();
    let deadline = Instant::now() + config.ack_timeout;
    let poll = state.builder.hec_ack(&[id]);
    loop {
        tokio::time::sleep(config.ack_poll).await;
        if let Ok((status, body)) = http::post(client, &poll, config.timeout).await {
            if (200..300).contains(&status) && hec::parse_acked(&body).contains(&id) {
                return true;
            }
        }
        if Instant::now() >= deadline {
            return false;
        }
    }
}
