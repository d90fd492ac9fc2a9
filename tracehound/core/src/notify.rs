//! Notification emitter (spec §21), bounded and non-blocking.
//!
//! v1 called subscriber callbacks inline and kept an unbounded queue per subscriber.
//! Here `emit` only pushes an `Arc<Event>` into fixed-size lock-free queues: it never
//! blocks and never runs foreign code. A full queue drops the event and counts the drop,
//! per subscriber and in total. Webhook deliveries go to a bounded outbox that the
//! caller drains (the core does no I/O); requests are built, and signed, at drain time.
//!
//! A subscriber that cannot use more events of some types for now (the notifier, when
//! every sink that wants them is full) says so with [`Subscription::set_refused`]; the hot
//! path ([`NotificationEmitter::emit_with`]) then sheds those events before building
//! them — one counter instead of an allocation, a queue push and the consumer's work —
//! and counts them per subscriber as shed.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Weak};

use arc_swap::ArcSwap;
use crossbeam_queue::ArrayQueue;
use parking_lot::{Mutex, RwLock};
use serde_json::Value;

mod event;

pub use event::{threat_detected_payload, Event, EventBody, ThreatFacts};

use crate::webhook::{WebhookConfig, WebhookRequest};

/// v1's event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// `threat.detected`
    ThreatDetected,
    /// `evidence.quarantined`
    EvidenceQuarantined,
    /// `evidence.evicted`
    EvidenceEvicted,
    /// `rate_limit.exceeded`
    RateLimitExceeded,
    /// `system.panic`
    SystemPanic,
    /// `license.validated`
    LicenseValidated,
    /// `license.expired`
    LicenseExpired,
}

impl EventType {
    /// Every type, in v1's order.
    pub const ALL: [EventType; 7] = [
        EventType::ThreatDetected,
        EventType::EvidenceQuarantined,
        EventType::EvidenceEvicted,
        EventType::RateLimitExceeded,
        EventType::SystemPanic,
        EventType::LicenseValidated,
        EventType::LicenseExpired,
    ];

    /// v1's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ThreatDetected => "threat.detected",
            EventType::EvidenceQuarantined => "evidence.quarantined",
            EventType::EvidenceEvicted => "evidence.evicted",
            EventType::RateLimitExceeded => "rate_limit.exceeded",
            EventType::SystemPanic => "system.panic",
            EventType::LicenseValidated => "license.validated",
            EventType::LicenseExpired => "license.expired",
        }
    }

    /// Parses a wire name; `None` for unknown names.
    pub fn parse(name: &str) -> Option<EventType> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    fn index(self) -> usize {
        self as usize
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// The bit set of `types` (empty = none).
fn mask_of(types: &[EventType]) -> u8 {
    types.iter().fold(0, |acc, t| acc | t.bit())
}

/// Emitter limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotifyConfig {
    /// Events each subscriber can hold before drops start.
    pub subscriber_capacity: usize,
    /// Most subscribers at once.
    pub max_subscribers: usize,
    /// Most registered webhooks.
    pub max_webhooks: usize,
    /// Pending webhook deliveries held before drops start.
    pub webhook_outbox_capacity: usize,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            subscriber_capacity: 1024,
            max_subscribers: 64,
            max_webhooks: 16,
            webhook_outbox_capacity: 4096,
        }
    }
}

/// Why a registration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// `max_subscribers` reached.
    #[error("subscriber limit of {0} reached")]
    TooManySubscribers(usize),
    /// `max_webhooks` reached.
    #[error("webhook limit of {0} reached")]
    TooManyWebhooks(usize),
}

struct SubscriberQueue {
    id: u64,
    /// Bit set of wanted event types; 0 = all.
    types: u8,
    queue: ArrayQueue<Arc<Event>>,
    /// Events lost because the queue was full.
    dropped: AtomicU64,
    /// Bit set of types the subscriber refuses for now ([`Subscription::set_refused`]).
    refused: AtomicU8,
    /// Events of refused types, counted instead of queued. The emitter's total is
    /// summed from these when asked, so shedding adds one counter of this subscriber's
    /// to the per-type count every emit pays.
    shed: AtomicU64,
    /// The emitter's total of sheds by subscriptions gone; this queue's count joins it
    /// when the queue itself goes, after every emit still holding it has finished.
    retired_shed: Arc<AtomicU64>,
}

impl Drop for SubscriberQueue {
    fn drop(&mut self) {
        self.retired_shed
            .fetch_add(*self.shed.get_mut(), Ordering::Relaxed);
    }
}

impl SubscriberQueue {
    fn wants(&self, t: EventType) -> bool {
        self.types == 0 || self.types & t.bit() != 0
    }

    fn refuses(&self, t: EventType) -> bool {
        self.refused.load(Ordering::Relaxed) & t.bit() != 0
    }
}

struct Shared {
    config: NotifyConfig,
    /// The last event number handed out (`evt-{n}`); drawn when an event is built.
    next_event: AtomicU64,
    next_handle: AtomicU64,
    /// Registered webhooks, read without the lock on the emit path (most emitters have
    /// none, and a read lock is two shared-counter writes per event).
    webhook_count: std::sync::atomic::AtomicUsize,
    /// Live subscriptions: `subscribers.len()`, kept apart so an emit with no
    /// subscriber skips even the `arc-swap` load (one plain read instead).
    subscriber_count: std::sync::atomic::AtomicUsize,
    by_type: [AtomicU64; 7],
    dropped: AtomicU64,
    /// Events shed by subscriptions that have since been dropped.
    retired_shed: Arc<AtomicU64>,
    webhook_dropped: AtomicU64,
    /// Read on every emit without a lock (a read lock is two writes to a shared
    /// counter); replaced whole under `subscribing` by (un)subscribing.
    subscribers: ArcSwap<Vec<Arc<SubscriberQueue>>>,
    subscribing: Mutex<()>,
    webhooks: RwLock<Vec<(u64, Arc<WebhookConfig>)>>,
    outbox: ArrayQueue<(u64, Arc<Event>)>,
}

/// The emitter. Cheap to clone (shared state); `Send + Sync`.
#[derive(Clone)]
pub struct NotificationEmitter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for NotificationEmitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationEmitter")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Default for NotificationEmitter {
    fn default() -> Self {
        Self::new(NotifyConfig::default())
    }
}

/// Counters (v1 `stats` plus drop counts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyStats {
    /// Events emitted.
    pub total_emitted: u64,
    /// Events emitted per type, indexed like [`EventType::ALL`].
    pub by_type: [u64; 7],
    /// Events dropped because a subscriber queue was full or the subscriber refused
    /// their type (sum over subscribers; `shed` included).
    pub dropped: u64,
    /// Of `dropped`, those shed because the subscriber refused their type.
    pub shed: u64,
    /// Webhook deliveries dropped because the outbox was full.
    pub webhook_dropped: u64,
    /// Live subscriptions.
    pub active_subscribers: usize,
    /// Registered webhooks.
    pub active_webhooks: usize,
    /// Deliveries waiting in the outbox.
    pub pending_webhooks: usize,
}

impl NotificationEmitter {
    /// An emitter with the given limits (capacities of 0 are raised to 1).
    pub fn new(config: NotifyConfig) -> Self {
        NotificationEmitter {
            shared: Arc::new(Shared {
                config,
                next_event: AtomicU64::new(0),
                next_handle: AtomicU64::new(0),
                webhook_count: std::sync::atomic::AtomicUsize::new(0),
                subscriber_count: std::sync::atomic::AtomicUsize::new(0),
                by_type: Default::default(),
                dropped: AtomicU64::new(0),
                retired_shed: Arc::new(AtomicU64::new(0)),
                webhook_dropped: AtomicU64::new(0),
                subscribers: ArcSwap::from_pointee(Vec::new()),
                subscribing: Mutex::new(()),
                webhooks: RwLock::new(Vec::new()),
                outbox: ArrayQueue::new(config.webhook_outbox_capacity.max(1)),
            }),
        }
    }

    /// Emits an event stamped `now_ms`. Never blocks; returns the event.
    pub fn emit(&self, event_type: EventType, payload: Value, now_ms: u64) -> Arc<Event> {
        self.emit_body(event_type, EventBody::Json(payload), now_ms)
    }

    /// Emits an event whose payload is rendered from `body` only when someone reads it.
    /// Never blocks; returns the event (built even when nobody takes it).
    pub fn emit_body(&self, event_type: EventType, body: EventBody, now_ms: u64) -> Arc<Event> {
        let mut slot = Some(move || body);
        self.dispatch(event_type, &mut slot, now_ms)
            .unwrap_or_else(|| {
                // Nobody took it, so `dispatch` left the body in the slot.
                let body = slot.map_or(EventBody::Json(Value::Null), |make| make());
                Arc::new(Event::lazy(event_type, now_ms, self.next_seq(), body))
            })
    }

    /// The intercept path's form of [`emit_body`](Self::emit_body): `body` is called,
    /// and the event allocated, only if a subscriber or webhook takes the event. Returns
    /// whether one did. Counted like any emit either way.
    pub fn emit_with(
        &self,
        event_type: EventType,
        body: impl FnOnce() -> EventBody,
        now_ms: u64,
    ) -> bool {
        self.dispatch(event_type, &mut Some(body), now_ms).is_some()
    }

    fn next_seq(&self) -> u64 {
        let n = self.shared.next_event.fetch_add(1, Ordering::Relaxed);
        n.wrapping_add(1)
    }

    /// Counts the event, then offers it to every subscriber and webhook that wants it.
    /// The event is built, from the closure taken out of `body`, for the first taker;
    /// when nobody takes it the closure stays in the slot. Returns the event if it was
    /// built. Its number (`evt-{n}`) is drawn when it is built, so shed events leave no
    /// gaps: a shed costs the per-type count and the refusing subscriber's `shed`.
    fn dispatch<F: FnOnce() -> EventBody>(
        &self,
        event_type: EventType,
        body: &mut Option<F>,
        now_ms: u64,
    ) -> Option<Arc<Event>> {
        let s = &self.shared;
        if let Some(c) = s.by_type.get(event_type.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let mut event: Option<Arc<Event>> = None;
        let mut take = |body: &mut Option<F>| -> Option<Arc<Event>> {
            if event.is_none() {
                event = body
                    .take()
                    .map(|make| Arc::new(Event::lazy(event_type, now_ms, self.next_seq(), make())));
            }
            event.clone()
        };
        if s.subscriber_count.load(Ordering::Acquire) > 0 {
            for sub in s.subscribers.load().iter() {
                if !sub.wants(event_type) {
                    continue;
                }
                if sub.refuses(event_type) {
                    sub.shed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let Some(e) = take(body) else { continue };
                if sub.queue.push(e).is_err() {
                    sub.dropped.fetch_add(1, Ordering::Relaxed);
                    s.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if s.webhook_count.load(Ordering::Acquire) > 0 {
            for (id, hook) in s.webhooks.read().iter() {
                if !hook.wants(event_type) {
                    continue;
                }
                let Some(e) = take(body) else { continue };
                if s.outbox.push((*id, e)).is_err() {
                    s.webhook_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        event
    }

    /// Subscribes to `types` (empty = all). Dropping the subscription unsubscribes.
    pub fn subscribe(&self, types: &[EventType]) -> Result<Subscription, NotifyError> {
        let s = &self.shared;
        let _writer = s.subscribing.lock();
        let mut subs = Vec::clone(&s.subscribers.load());
        if subs.len() >= s.config.max_subscribers {
            return Err(NotifyError::TooManySubscribers(s.config.max_subscribers));
        }
        let q = Arc::new(SubscriberQueue {
            id: s.next_handle.fetch_add(1, Ordering::Relaxed),
            types: mask_of(types),
            queue: ArrayQueue::new(s.config.subscriber_capacity.max(1)),
            dropped: AtomicU64::new(0),
            refused: AtomicU8::new(0),
            shed: AtomicU64::new(0),
            retired_shed: Arc::clone(&s.retired_shed),
        });
        subs.push(Arc::clone(&q));
        s.subscriber_count.store(subs.len(), Ordering::Release);
        s.subscribers.store(Arc::new(subs));
        Ok(Subscription {
            queue: q,
            emitter: Arc::downgrade(&self.shared),
        })
    }

    /// Registers a webhook; returns its id (v1 `registerWebhook`).
    pub fn register_webhook(&self, config: WebhookConfig) -> Result<u64, NotifyError> {
        let s = &self.shared;
        let mut hooks = s.webhooks.write();
        if hooks.len() >= s.config.max_webhooks {
            return Err(NotifyError::TooManyWebhooks(s.config.max_webhooks));
        }
        let id = s.next_handle.fetch_add(1, Ordering::Relaxed);
        hooks.push((id, Arc::new(config)));
        s.webhook_count.store(hooks.len(), Ordering::Release);
        Ok(id)
    }

    /// Removes a webhook; `false` if unknown. Pending deliveries for it are discarded.
    pub fn unregister_webhook(&self, id: u64) -> bool {
        let mut hooks = self.shared.webhooks.write();
        let before = hooks.len();
        hooks.retain(|(h, _)| *h != id);
        self.shared
            .webhook_count
            .store(hooks.len(), Ordering::Release);
        hooks.len() != before
    }

    /// Takes the next pending webhook delivery, built and signed now. Deliveries whose
    /// webhook was unregistered are skipped.
    pub fn next_webhook_request(&self) -> Option<(u64, WebhookRequest)> {
        let s = &self.shared;
        while let Some((id, event)) = s.outbox.pop() {
            let hook = s
                .webhooks
                .read()
                .iter()
                .find(|(h, _)| *h == id)
                .map(|(_, c)| Arc::clone(c));
            if let Some(hook) = hook {
                return Some((id, hook.build_request(&event)));
            }
        }
        None
    }

    /// The retry policy of a registered webhook.
    pub fn webhook_config(&self, id: u64) -> Option<Arc<WebhookConfig>> {
        self.shared
            .webhooks
            .read()
            .iter()
            .find(|(h, _)| *h == id)
            .map(|(_, c)| Arc::clone(c))
    }

    /// Erasure (GDPR): removes every pending event — in subscriber queues and the
    /// webhook outbox — whose payload's `signature` equals `signature` or whose `source`
    /// equals `source`. Returns how many queued copies were removed. Never blocks: each
    /// queue is drained once and the other events are pushed back (an event that no
    /// longer fits because `emit` refilled the queue meanwhile is dropped and counted).
    pub fn purge_matching(&self, signature: Option<&str>, source: Option<&str>) -> usize {
        let field_is = |e: &Event, name: &str, want: Option<&str>| {
            want.is_some_and(|w| e.payload_str(name) == Some(w))
        };
        self.purge_where(|e| field_is(e, "signature", signature) || field_is(e, "source", source))
    }

    /// Removes every pending event `matches` accepts (see
    /// [`purge_matching`](Self::purge_matching)); returns how many queued copies went.
    pub fn purge_where(&self, matches: impl Fn(&Event) -> bool) -> usize {
        let s = &self.shared;
        let mut purged = 0;
        for sub in s.subscribers.load().iter() {
            for _ in 0..sub.queue.len() {
                let Some(e) = sub.queue.pop() else { break };
                if matches(&e) {
                    purged += 1;
                } else if sub.queue.push(e).is_err() {
                    sub.dropped.fetch_add(1, Ordering::Relaxed);
                    s.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        for _ in 0..s.outbox.len() {
            let Some((id, e)) = s.outbox.pop() else { break };
            if matches(&e) {
                purged += 1;
            } else if s.outbox.push((id, e)).is_err() {
                s.webhook_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        purged
    }

    /// Counters.
    pub fn stats(&self) -> NotifyStats {
        let s = &self.shared;
        let mut by_type = [0; 7];
        for (slot, c) in by_type.iter_mut().zip(s.by_type.iter()) {
            *slot = c.load(Ordering::Relaxed);
        }
        let subscribers = s.subscribers.load();
        let shed = s.retired_shed.load(Ordering::Relaxed)
            + subscribers
                .iter()
                .map(|q| q.shed.load(Ordering::Relaxed))
                .sum::<u64>();
        NotifyStats {
            total_emitted: by_type.iter().sum(),
            by_type,
            dropped: s.dropped.load(Ordering::Relaxed) + shed,
            shed,
            webhook_dropped: s.webhook_dropped.load(Ordering::Relaxed),
            active_subscribers: subscribers.len(),
            active_webhooks: s.webhooks.read().len(),
            pending_webhooks: s.outbox.len(),
        }
    }
}

/// A bounded event queue fed by the emitter. Drop it to unsubscribe.
pub struct Subscription {
    queue: Arc<SubscriberQueue>,
    emitter: Weak<Shared>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("pending", &self.queue.queue.len())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl Subscription {
    /// The next event, if any (never blocks).
    pub fn try_recv(&self) -> Option<Arc<Event>> {
        self.queue.queue.pop()
    }

    /// Up to `max` pending events, oldest first.
    pub fn drain(&self, max: usize) -> Vec<Arc<Event>> {
        let mut out = Vec::new();
        while out.len() < max {
            match self.queue.queue.pop() {
                Some(e) => out.push(e),
                None => break,
            }
        }
        out
    }

    /// Events waiting.
    pub fn pending(&self) -> usize {
        self.queue.queue.len()
    }

    /// Events this subscriber lost: its queue was full, or it refused their type
    /// ([`shed`](Self::shed) included).
    pub fn dropped(&self) -> u64 {
        self.queue.dropped.load(Ordering::Relaxed) + self.shed()
    }

    /// Events of refused types the emitter counted instead of queueing.
    pub fn shed(&self) -> u64 {
        self.queue.shed.load(Ordering::Relaxed)
    }

    /// Sets the types refused from now on, replacing the previous set: events of
    /// `types` are refused, every other type this subscription wants is taken again (so
    /// an empty list refuses nothing — unlike `subscribe`, where empty means all). The
    /// emitter sheds refused events before building them; events already queued stay.
    /// For a consumer that knows it would only drop them, such as a notifier whose
    /// sinks are all full.
    pub fn set_refused(&self, types: &[EventType]) {
        self.queue.refused.store(mask_of(types), Ordering::Relaxed);
    }

    /// The types refused now.
    pub fn refused(&self) -> Vec<EventType> {
        let mask = self.queue.refused.load(Ordering::Relaxed);
        EventType::ALL
            .into_iter()
            .filter(|t| mask & t.bit() != 0)
            .collect()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(shared) = self.emitter.upgrade() {
            let id = self.queue.id;
            let _writer = shared.subscribing.lock();
            let mut subs = Vec::clone(&shared.subscribers.load());
            subs.retain(|q| q.id != id);
            shared.subscriber_count.store(subs.len(), Ordering::Release);
            shared.subscribers.store(Arc::new(subs));
            // Its shed count joins the emitter's total when the queue is freed.
        }
    }
}
