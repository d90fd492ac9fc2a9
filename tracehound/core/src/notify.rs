//! Notification emitter (spec §21), bounded and non-blocking.
//!
//! v1 called subscriber callbacks inline and kept an unbounded queue per subscriber.
//! Here `emit` only pushes an `Arc<Event>` into fixed-size lock-free queues: it never
//! blocks and never runs foreign code. A full queue drops the event and counts the drop,
//! per subscriber and in total. Webhook deliveries go to a bounded outbox that the
//! caller drains (the core does no I/O); requests are built, and signed, at drain time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use crossbeam_queue::ArrayQueue;
use parking_lot::RwLock;
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
    dropped: AtomicU64,
}

struct Shared {
    config: NotifyConfig,
    next_event: AtomicU64,
    next_handle: AtomicU64,
    /// Registered webhooks, read without the lock on the emit path (most emitters have
    /// none, and a read lock is two shared-counter writes per event).
    webhook_count: std::sync::atomic::AtomicUsize,
    by_type: [AtomicU64; 7],
    dropped: AtomicU64,
    webhook_dropped: AtomicU64,
    subscribers: RwLock<Vec<Arc<SubscriberQueue>>>,
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
    /// Events dropped because a subscriber queue was full (sum over subscribers).
    pub dropped: u64,
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
                by_type: Default::default(),
                dropped: AtomicU64::new(0),
                webhook_dropped: AtomicU64::new(0),
                subscribers: RwLock::new(Vec::new()),
                webhooks: RwLock::new(Vec::new()),
                outbox: ArrayQueue::new(config.webhook_outbox_capacity.max(1)),
            }),
        }
    }

    /// Emits an event stamped `now_ms`. Never blocks; returns the event.
    pub fn emit(&self, event_type: EventType, payload: Value, now_ms: u64) -> Arc<Event> {
        self.emit_body(event_type, EventBody::Json(payload), now_ms)
    }

    /// Emits an event whose payload is rendered from `body` only when someone reads it
    /// (the intercept path's form: no JSON is built on the intercepting thread).
    pub fn emit_body(&self, event_type: EventType, body: EventBody, now_ms: u64) -> Arc<Event> {
        let s = &self.shared;
        let n = s.next_event.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        let event = Arc::new(Event::lazy(event_type, now_ms, n, body));
        if let Some(c) = s.by_type.get(event_type.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        for sub in s.subscribers.read().iter() {
            if sub.types != 0 && sub.types & event_type.bit() == 0 {
                continue;
            }
            if sub.queue.push(Arc::clone(&event)).is_err() {
                sub.dropped.fetch_add(1, Ordering::Relaxed);
                s.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        if s.webhook_count.load(Ordering::Acquire) > 0 {
            for (id, hook) in s.webhooks.read().iter() {
                if hook.wants(event_type) && s.outbox.push((*id, Arc::clone(&event))).is_err() {
                    s.webhook_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        event
    }

    /// Subscribes to `types` (empty = all). Dropping the subscription unsubscribes.
    pub fn subscribe(&self, types: &[EventType]) -> Result<Subscription, NotifyError> {
        let s = &self.shared;
        let mut subs = s.subscribers.write();
        if subs.len() >= s.config.max_subscribers {
            return Err(NotifyError::TooManySubscribers(s.config.max_subscribers));
        }
        let q = Arc::new(SubscriberQueue {
            id: s.next_handle.fetch_add(1, Ordering::Relaxed),
            types: types.iter().fold(0, |acc, t| acc | t.bit()),
            queue: ArrayQueue::new(s.config.subscriber_capacity.max(1)),
            dropped: AtomicU64::new(0),
        });
        subs.push(Arc::clone(&q));
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
        for sub in s.subscribers.read().iter() {
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
        NotifyStats {
            // One `next_event` step per emit: the sequence is the count.
            total_emitted: s.next_event.load(Ordering::Relaxed),
            by_type,
            dropped: s.dropped.load(Ordering::Relaxed),
            webhook_dropped: s.webhook_dropped.load(Ordering::Relaxed),
            active_subscribers: s.subscribers.read().len(),
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

    /// Events this subscriber lost because its queue was full.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(shared) = self.emitter.upgrade() {
            let id = self.queue.id;
            shared.subscribers.write().retain(|q| q.id != id);
        }
    }
}
