//! The [`Notifier`]: takes events from the core's emitter (or [`Notifier::submit`]),
//! coalesces them, and fans the records out to one worker per sink, all on a
//! single-threaded tokio runtime in a thread of its own, so no delivery ever runs on,
//! or waits for, a request's thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use parking_lot::Mutex;
use tokio::sync::watch;
use tracehound_core::notify::{Event, EventType, NotificationEmitter, NotifyError, Subscription};

use crate::coalesce::{CoalesceConfig, CoalesceStats, Coalescer};
use crate::http;
use crate::record::Record;
use crate::refusal::{Coalescing, Saturation};
use crate::sink::{RequestBuilder, SinkConfig};
use crate::worker::{self, SinkState, SinkStats};

/// Most events moved from the inputs per dispatcher step.
const PUMP_BATCH: usize = 65_536;

/// Everything the notifier needs.
#[derive(Debug, Clone)]
pub struct NotifierConfig {
    /// Coalescing, applied before every sink.
    pub coalesce: CoalesceConfig,
    /// The sinks.
    pub sinks: Vec<SinkConfig>,
    /// Capacity of the [`Notifier::submit`] queue.
    pub input_capacity: usize,
    /// How often the dispatcher collects events and closes windows.
    pub poll_interval: Duration,
    /// At shutdown, how long the sinks may keep delivering what is queued.
    pub shutdown_grace: Duration,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        NotifierConfig {
            coalesce: CoalesceConfig::default(),
            sinks: Vec::new(),
            input_capacity: 8192,
            poll_interval: Duration::from_millis(20),
            shutdown_grace: Duration::from_secs(2),
        }
    }
}

/// Why the notifier could not start.
#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    /// The TLS client could not be set up.
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// The emitter refused another subscriber.
    #[error("cannot subscribe to notifications: {0}")]
    Subscribe(#[from] NotifyError),
    /// The runtime or its thread could not be started.
    #[error("cannot start the notifier thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Counters of the whole pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifierStats {
    /// Per sink, in configuration order.
    pub sinks: Vec<SinkStats>,
    /// Coalescing.
    pub coalesce: CoalesceStats,
    /// Events lost before coalescing: the emitter subscription's drops (its queue was
    /// full, or the event was shed, below) and the submit queue's (full).
    pub input_dropped: u64,
    /// Of `input_dropped`, events the emitter shed because every sink that wanted
    /// their type had a full queue at the last dispatcher step: counted on the
    /// intercepting thread, never built or queued.
    pub shed: u64,
}

struct Pipeline {
    subscription: Option<Subscription>,
    coalescer: Coalescer,
    saturation: Saturation,
}

/// The pipeline's lock. Every release publishes the coalescing counters and the
/// subscription's drops, so [`Notifier::stats`] reads them without waiting for a pump
/// (which may hold the lock while rendering a large batch) and never sees them stale
/// after a pump or purge.
struct PipelineLock {
    inner: Mutex<Pipeline>,
    published: Mutex<Published>,
}

/// What [`Notifier::stats`] reads without the pipeline lock.
#[derive(Default, Clone, Copy)]
struct Published {
    coalesce: CoalesceStats,
    subscription_dropped: u64,
    shed: u64,
}

impl PipelineLock {
    fn lock(&self) -> PipelineGuard<'_> {
        PipelineGuard {
            guard: self.inner.lock(),
            published: &self.published,
        }
    }
}

struct PipelineGuard<'a> {
    guard: parking_lot::MutexGuard<'a, Pipeline>,
    published: &'a Mutex<Published>,
}

impl std::ops::Deref for PipelineGuard<'_> {
    type Target = Pipeline;
    fn deref(&self) -> &Pipeline {
        &self.guard
    }
}

impl std::ops::DerefMut for PipelineGuard<'_> {
    fn deref_mut(&mut self) -> &mut Pipeline {
        &mut self.guard
    }
}

impl Drop for PipelineGuard<'_> {
    fn drop(&mut self) {
        let p = &*self.guard;
        let sub = p.subscription.as_ref();
        *self.published.lock() = Published {
            coalesce: p.coalescer.stats(),
            subscription_dropped: sub.map_or(0, Subscription::dropped),
            shed: sub.map_or(0, Subscription::shed),
        };
    }
}

struct Shared {
    pipeline: PipelineLock,
    input: ArrayQueue<Arc<Event>>,
    input_dropped: AtomicU64,
    /// Sheds of the subscription dropped at shutdown (`input_dropped` has its drops).
    retired_shed: AtomicU64,
    sinks: Vec<Arc<SinkState>>,
    epoch: Instant,
}

impl Shared {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Moves pending events through the coalescer and fans out what is ready. Runs
    /// under the pipeline lock, so a purge sees every event either before or after.
    fn pump(&self, flush_everything: bool) {
        let mut p = self.pipeline.lock();
        self.pump_locked(&mut p, flush_everything);
    }

    /// [`Self::pump`] for a caller already holding the pipeline lock, so a purge can
    /// collect and purge in one hold (the periodic pump cannot slip in between).
    fn pump_locked(&self, p: &mut Pipeline, flush_everything: bool) {
        let now = self.now_ms();
        let mut ready = Vec::new();
        let mut events = match &p.subscription {
            Some(s) => s.drain(PUMP_BATCH),
            None => Vec::new(),
        };
        while events.len() < 2 * PUMP_BATCH {
            match self.input.pop() {
                Some(e) => events.push(e),
                None => break,
            }
        }
        for e in events {
            if let Some(r) = p.coalescer.offer(Record::from_event(&e), now) {
                ready.push(r);
            }
        }
        if flush_everything {
            ready.extend(p.coalescer.flush_all());
        } else {
            ready.extend(p.coalescer.flush_due(now));
        }
        for r in ready {
            let r = Arc::new(r);
            for s in &self.sinks {
                if s.builder.config().wants(r.event_type) {
                    s.push(Arc::clone(&r));
                }
            }
        }
        self.refresh_refusal(p, now);
    }

    /// Tells the emitter which types to shed at the source: those every sink that
    /// wants them has had no room for, for as long as `refusal` asks (a sink's worker
    /// frees queue space as it takes a batch, and the next step takes the type again).
    /// Without this, a hung receiver costs the intercepting threads an event allocation
    /// and a queue push per event, and this thread the collecting, coalescing and
    /// dropping of each.
    fn refresh_refusal(&self, p: &mut Pipeline, now: u64) {
        let Some(sub) = &p.subscription else { return };
        let coalescing = Coalescing {
            window_ms: p.coalescer.config().window_ms,
            out_of_keys: p.coalescer.out_of_keys(),
        };
        let refused = p.saturation.update(now, coalescing, |t| {
            let mut wanting = self
                .sinks
                .iter()
                .filter(|s| s.builder.config().wants(t))
                .peekable();
            wanting.peek()?;
            Some(wanting.all(|s| s.is_full()))
        });
        sub.set_refused(&refused);
    }

    /// At shutdown, after the last collection: unsubscribes, so the emitter stops
    /// building events nobody will read, and keeps the subscription's counts.
    fn unsubscribe(&self) {
        let mut p = self.pipeline.lock();
        if let Some(sub) = p.subscription.take() {
            self.input_dropped
                .fetch_add(sub.dropped(), Ordering::Relaxed);
            self.retired_shed.fetch_add(sub.shed(), Ordering::Relaxed);
        }
    }
}

/// The running notification pipeline. Cheap to share behind an `Arc`; stop it with
/// [`Notifier::shutdown`] (dropping it stops the thread without waiting).
pub struct Notifier {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("sinks", &self.shared.sinks.len())
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// Starts the pipeline; with `emitter`, subscribes to all of its events.
    pub fn start(
        config: NotifierConfig,
        emitter: Option<&NotificationEmitter>,
    ) -> Result<Notifier, NotifierError> {
        // Only the types some sink wants (none configured: every type, as before).
        let wanted: Vec<EventType> = EventType::ALL
            .into_iter()
            .filter(|&t| config.sinks.iter().any(|s| s.wants(t)))
            .collect();
        let subscription = match emitter {
            Some(e) => Some(e.subscribe(&wanted)?),
            None => None,
        };
        let mut clients = Vec::with_capacity(config.sinks.len());
        let mut sinks = Vec::with_capacity(config.sinks.len());
        for s in &config.sinks {
            clients.push(http::client()?);
            sinks.push(Arc::new(SinkState::new(RequestBuilder::new(s.clone()))));
        }
        let shared = Arc::new(Shared {
            pipeline: PipelineLock {
                inner: Mutex::new(Pipeline {
                    subscription,
                    coalescer: Coalescer::new(config.coalesce),
                    saturation: Saturation::default(),
                }),
                published: Mutex::new(Published::default()),
            },
            input: ArrayQueue::new(config.input_capacity.max(1)),
            input_dropped: AtomicU64::new(0),
            retired_shed: AtomicU64::new(0),
            sinks,
            epoch: Instant::now(),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop, stop_rx) = watch::channel(false);
        let run_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("tracehound-notify".into())
            .spawn(move || {
                runtime.block_on(run(
                    run_shared,
                    clients,
                    stop_rx,
                    config.poll_interval.max(Duration::from_millis(1)),
                    config.shutdown_grace,
                ));
            })?;
        Ok(Notifier {
            shared,
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Hands one event to the pipeline. Never blocks: a full queue drops the event and
    /// counts it (`input_dropped`). Returns whether it was taken.
    pub fn submit(&self, event: Arc<Event>) -> bool {
        if self.shared.input.push(event).is_err() {
            self.shared.input_dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Counters of every sink and of the coalescer. Never takes the pipeline lock: the
    /// coalescing counters and the subscription's drops are as of the last release of
    /// that lock (a pump or purge; at most about one poll interval old).
    pub fn stats(&self) -> NotifierStats {
        let published = *self.shared.pipeline.published.lock();
        NotifierStats {
            sinks: self.shared.sinks.iter().map(|s| s.stats()).collect(),
            coalesce: published.coalesce,
            input_dropped: self.shared.input_dropped.load(Ordering::Relaxed)
                + published.subscription_dropped,
            shed: published.shed + self.shared.retired_shed.load(Ordering::Relaxed),
        }
    }

    /// Removes every pending record concerning `signature` or `source` (either one
    /// matching suffices; both `None` removes nothing): events not yet collected are
    /// collected first, then open coalescing windows, sink queues and batches awaiting a
    /// retry are purged. Returns the records removed, summed over the coalescer and
    /// every sink queue (one record queued for three sinks counts three). A request
    /// already on the wire cannot be recalled.
    pub fn purge_matching(&self, signature: Option<&str>, source: Option<&str>) -> usize {
        if signature.is_none() && source.is_none() {
            return 0;
        }
        // One pipeline-lock hold for collecting and purging: the dispatcher cannot move
        // an event of the subject out of the inputs, or between the coalescer and the
        // queues, in between.
        let mut p = self.shared.pipeline.lock();
        self.shared.pump_locked(&mut p, false);
        let mut removed = p.coalescer.purge(signature, source);
        for s in &self.shared.sinks {
            removed += s.purge(signature, source);
        }
        // The purge may have made room.
        let now = self.shared.now_ms();
        self.shared.refresh_refusal(&mut p, now);
        drop(p);
        removed
    }

    /// Removes every pending record that may carry one of `scent_ids` (a
    /// `threat.detected` carries the scent id but no signature), from the same places as
    /// [`Self::purge_matching`]: uncollected events (collected first), open coalescing
    /// windows, sink queues and batches awaiting a retry. A coalesced record keeps one
    /// scent id but remembers those of the events merged into it (bounded); it is
    /// dropped whole when any of them matches, or when it merged more than it remembers
    /// (fail closed: the cost is a lost notification). Returns the records removed,
    /// counted as for `purge_matching`. An empty list removes nothing.
    pub fn purge_scent_ids(&self, scent_ids: &[String]) -> usize {
        if scent_ids.is_empty() {
            return 0;
        }
        // Collect and purge in one hold, so the periodic pump cannot move a matching
        // event out of the emitter's queue in between.
        let mut p = self.shared.pipeline.lock();
        self.shared.pump_locked(&mut p, false);
        let mut removed = p.coalescer.purge_scents(scent_ids);
        for s in &self.shared.sinks {
            removed += s.purge_scents(scent_ids);
        }
        let now = self.shared.now_ms();
        self.shared.refresh_refusal(&mut p, now);
        drop(p);
        removed
    }

    /// Stops collecting, closes every open window, lets the sinks deliver what is queued
    /// for up to the shutdown grace, then stops. Blocks the caller for at most about
    /// the grace period; idempotent.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.lock().take() {
            if t.join().is_err() {
                tracing::warn!("the notifier thread panicked");
            }
        }
    }
}

impl Notifier {
    /// Asks the pipeline to stop (flush, deliver for the grace period, exit) without
    /// waiting for it.
    pub fn request_stop(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        // Ask the thread to stop; it finishes on its own within the grace period.
        let _ = self.stop.send(true);
    }
}

async fn run(
    shared: Arc<Shared>,
    clients: Vec<http::HttpClient>,
    mut stop: watch::Receiver<bool>,
    poll: Duration,
    grace: Duration,
) {
    let (done, done_rx) = watch::channel(false);
    let workers: Vec<_> = shared
        .sinks
        .iter()
        .zip(clients)
        .map(|(s, c)| tokio::spawn(worker::run(Arc::clone(s), c, done_rx.clone())))
        .collect();
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = *stop.borrow();
        shared.pump(stopping);
        if stopping {
            break;
        }
        tokio::select! {
            _ = tick.tick() => {}
            changed = stop.changed() => {
                if changed.is_err() {
                    // The Notifier is gone without a shutdown: flush and stop.
                    shared.pump(true);
                    break;
                }
            }
        }
    }
    shared.unsubscribe();
    let _ = done.send(true);
    let _ = tokio::time::timeout(grace, async {
        for w in workers {
            let _ = w.await;
        }
    })
    .await;
}
