//! The emitted [`Event`], built lazily.
//!
//! An intercept emits up to three events. Building v1's JSON payload (an ordered map,
//! one owned string per key and value) and formatting the `evt-{n}` id cost more than
//! the rest of the notification path together, and they ran on the intercepting thread
//! even when every sink was hanging. So the hot path stores only the facts
//! ([`EventBody`]: a few copied strings or an `Arc` increment for evidence), and the
//! payload and the id are built on first use — by whoever reads the event, normally the
//! notifier's own thread — and then cached.

use std::sync::OnceLock;

use serde_json::{json, Map, Value};

use super::EventType;
use crate::evidence::EvidenceHandle;
use crate::types::{Severity, ThreatCategory};

/// What the hot path records for an event; [`Event::payload`] renders it as v1's JSON.
#[derive(Debug, Clone)]
pub enum EventBody {
    /// Any payload, already built.
    Json(Value),
    /// `threat.detected`: `{scentId, category, severity, source}`.
    Threat(ThreatFacts),
    /// `evidence.quarantined`: `{signature, size, severity}`.
    Quarantined(EvidenceHandle),
    /// `evidence.evicted`: `{signature, severity}`.
    Evicted(EvidenceHandle),
    /// `rate_limit.exceeded`: `{source, retryAfter, blocked}`.
    RateLimited {
        /// The limited source.
        source: Box<str>,
        /// v1 `retryAfter`, ms.
        retry_after_ms: u64,
        /// Whether the source is now blocked.
        blocked: bool,
    },
}

impl EventBody {
    fn render(&self) -> Value {
        match self {
            EventBody::Json(v) => v.clone(),
            EventBody::Threat(t) => {
                threat_detected_payload(t.scent_id(), t.category, t.severity, t.source())
            }
            EventBody::Quarantined(h) => {
                json!({"signature": h.signature(), "size": h.size(), "severity": h.severity().as_str()})
            }
            EventBody::Evicted(h) => {
                json!({"signature": h.signature(), "severity": h.severity().as_str()})
            }
            EventBody::RateLimited {
                source,
                retry_after_ms,
                blocked,
            } => json!({"source": &**source, "retryAfter": retry_after_ms, "blocked": blocked}),
        }
    }
}

/// The facts of a `threat.detected` event, with the scent id and the source in one
/// allocation (the intercepting thread pays for one copy, not two).
#[derive(Debug, Clone)]
pub struct ThreatFacts {
    text: Box<str>,
    split: usize,
    /// The threat's category.
    pub category: ThreatCategory,
    /// The threat's severity.
    pub severity: Severity,
}

impl ThreatFacts {
    /// Copies the scent's id and source.
    pub fn new(
        scent_id: &str,
        category: ThreatCategory,
        severity: Severity,
        source: &str,
    ) -> ThreatFacts {
        let mut text = String::with_capacity(scent_id.len() + source.len());
        text.push_str(scent_id);
        text.push_str(source);
        ThreatFacts {
            text: text.into_boxed_str(),
            split: scent_id.len(),
            category,
            severity,
        }
    }

    /// The scent's id.
    pub fn scent_id(&self) -> &str {
        self.text.get(..self.split).unwrap_or_default()
    }

    /// The scent's source.
    pub fn source(&self) -> &str {
        self.text.get(self.split..).unwrap_or_default()
    }
}

/// v1's `threat.detected` payload: `{scentId, category, severity, source}` in that order.
pub fn threat_detected_payload(
    scent_id: &str,
    category: ThreatCategory,
    severity: Severity,
    source: &str,
) -> Value {
    let mut m = Map::new();
    m.insert("scentId".into(), Value::from(scent_id));
    m.insert("category".into(), Value::from(category.as_str()));
    m.insert("severity".into(), Value::from(severity.as_str()));
    m.insert("source".into(), Value::from(source));
    Value::Object(m)
}

/// An emitted event: `{type, timestamp, payload, id: "evt-{n}"}`.
#[derive(Debug, Clone)]
pub struct Event {
    /// The event type.
    pub event_type: EventType,
    /// Emission time, ms since the epoch (from the caller's clock).
    pub timestamp: u64,
    seq: u64,
    body: EventBody,
    payload: OnceLock<Value>,
    id: OnceLock<String>,
}

impl Event {
    /// An event with its payload and id given (tests, re-emitted records).
    pub fn new(event_type: EventType, timestamp: u64, payload: Value, id: String) -> Event {
        Event {
            event_type,
            timestamp,
            seq: 0,
            body: EventBody::Json(Value::Null),
            payload: OnceLock::from(payload),
            id: OnceLock::from(id),
        }
    }

    /// The `seq`-th event of an emitter (`evt-{seq}`), rendered from `body` on demand.
    pub(super) fn lazy(event_type: EventType, timestamp: u64, seq: u64, body: EventBody) -> Event {
        let (body, payload) = match body {
            EventBody::Json(v) => (EventBody::Json(Value::Null), OnceLock::from(v)),
            other => (other, OnceLock::new()),
        };
        Event {
            event_type,
            timestamp,
            seq,
            body,
            payload,
            id: OnceLock::new(),
        }
    }

    /// The payload, keys in v1's order (built on first call).
    pub fn payload(&self) -> &Value {
        self.payload.get_or_init(|| self.body.render())
    }

    /// `evt-{n}`, n counting from 1 per emitter over the events it built (an event shed
    /// or taken by nobody on the intercept path draws no number); formatted on first call.
    pub fn id(&self) -> &str {
        self.id.get_or_init(|| format!("evt-{}", self.seq))
    }

    /// A string field of the payload, if present.
    pub fn payload_str(&self, key: &str) -> Option<&str> {
        self.payload().get(key).and_then(Value::as_str)
    }
}

impl PartialEq for Event {
    fn eq(&self, other: &Event) -> bool {
        self.event_type == other.event_type
            && self.timestamp == other.timestamp
            && self.id() == other.id()
            && self.payload() == other.payload()
    }
}
