//! The unit every sink delivers: one event, or many coalesced, reduced to metadata.
//!
//! A [`Record`] is built from a core [`Event`] by copying only known metadata keys with
//! scalar values (an allowlist, not a denylist), so a caller that put request content
//! into an event payload still cannot get it to a sink.

use serde_json::{Map, Value};
use tracehound_core::notify::{Event, EventType};
use tracehound_core::types::Severity;

/// Payload keys that may leave the process: v1's event payload fields, all metadata.
const ALLOWED_KEYS: [&str; 14] = [
    "scentId",
    "category",
    "severity",
    "source",
    "signature",
    "hash",
    "size",
    "retryAfter",
    "blocked",
    "reason",
    "level",
    "tier",
    "status",
    "daysRemaining",
];

/// Longest string value kept from a payload; longer ones are not metadata.
const MAX_VALUE_LEN: usize = 1024;

/// Most scent ids of merged events a coalesced record remembers for erasure. Past it
/// the record is marked as possibly holding any scent (see [`Record::concerns_scent`]),
/// so memory stays bounded in a flood and an erasure never misses a record.
pub const MAX_MERGED_SCENTS: usize = 16;

/// Metadata of one event or of a coalesced group of events. Never payload bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The event type.
    pub event_type: EventType,
    /// The id of the first event (`evt-{n}`).
    pub id: String,
    /// A UUIDv7 made when the record is created and kept through coalescing and every
    /// retry: Elasticsearch's `_id`, so a resent batch cannot index a record twice
    /// (the event id is only unique within one run, so it is not used).
    pub doc_id: String,
    /// Timestamp of the earliest event, ms since the epoch.
    pub first_seen_ms: u64,
    /// Timestamp of the latest event, ms since the epoch.
    pub last_seen_ms: u64,
    /// Events folded into this record (1 when not coalesced).
    pub count: u64,
    /// The first event's scent id, if any.
    pub scent_id: Option<String>,
    /// Evidence signature (`category:sha256`), if any.
    pub signature: Option<String>,
    /// Threat category name.
    pub category: Option<String>,
    /// Severity.
    pub severity: Option<Severity>,
    /// Stored evidence size in bytes.
    pub size: Option<u64>,
    /// The source (client address or principal).
    pub source: Option<String>,
    /// Distinct signatures seen in the group (bounded sample, first seen first).
    pub signatures: Vec<String>,
    /// The allowlisted payload of the first event, keys in the emitter's order (the
    /// webhook body is built from it so single events stay byte-identical to v1).
    pub payload: Map<String, Value>,
    /// Scent ids of the events merged into this one after the first (bounded by
    /// [`MAX_MERGED_SCENTS`]); only used to find the record for an erasure, never sent.
    merged_scents: Vec<String>,
    /// More scent ids were merged than `merged_scents` holds.
    merged_scents_overflow: bool,
}

fn str_field(payload: &Map<String, Value>, key: &str) -> Option<String> {
    payload.get(key).and_then(Value::as_str).map(str::to_owned)
}

impl Record {
    /// Metadata of one core event.
    pub fn from_event(event: &Event) -> Record {
        let mut payload = Map::new();
        if let Value::Object(map) = event.payload() {
            for (k, v) in map {
                if !ALLOWED_KEYS.contains(&k.as_str()) {
                    continue;
                }
                let keep = match v {
                    Value::String(s) => s.len() <= MAX_VALUE_LEN,
                    Value::Number(_) | Value::Bool(_) | Value::Null => true,
                    Value::Array(_) | Value::Object(_) => false,
                };
                if keep {
                    payload.insert(k.clone(), v.clone());
                }
            }
        }
        let signature = str_field(&payload, "signature");
        let category = str_field(&payload, "category").or_else(|| {
            signature
                .as_deref()
                .and_then(|s| s.split_once(':'))
                .map(|(c, _)| c.to_owned())
        });
        let severity = payload
            .get("severity")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok());
        Record {
            event_type: event.event_type,
            id: event.id().to_owned(),
            doc_id: uuid::Uuid::now_v7().to_string(),
            first_seen_ms: event.timestamp,
            last_seen_ms: event.timestamp,
            count: 1,
            scent_id: str_field(&payload, "scentId"),
            signatures: signature.iter().cloned().collect(),
            signature,
            category,
            severity,
            size: payload.get("size").and_then(Value::as_u64),
            source: str_field(&payload, "source"),
            payload,
            merged_scents: Vec::new(),
            merged_scents_overflow: false,
        }
    }

    /// The SHA-256 part of the signature.
    pub fn hash(&self) -> Option<&str> {
        self.signature
            .as_deref()
            .and_then(|s| s.split_once(':'))
            .map(|(_, h)| h)
    }

    /// Folds `other` (same key) into this record, keeping at most `sample` signatures.
    pub fn merge(&mut self, other: &Record, sample: usize) {
        self.count = self.count.saturating_add(other.count);
        self.first_seen_ms = self.first_seen_ms.min(other.first_seen_ms);
        self.last_seen_ms = self.last_seen_ms.max(other.last_seen_ms);
        if self.severity.is_none()
            || other.severity.map(Severity::rank) > self.severity.map(Severity::rank)
        {
            self.severity = other.severity.or(self.severity);
        }
        for s in &other.signatures {
            if self.signatures.len() >= sample {
                break;
            }
            if !self.signatures.contains(s) {
                self.signatures.push(s.clone());
            }
        }
        self.merged_scents_overflow |= other.merged_scents_overflow;
        for id in other.scent_id.iter().chain(&other.merged_scents) {
            if self.scent_id.as_ref() == Some(id) || self.merged_scents.contains(id) {
                continue;
            }
            if self.merged_scents.len() >= MAX_MERGED_SCENTS {
                self.merged_scents_overflow = true;
                break;
            }
            self.merged_scents.push(id.clone());
        }
    }

    /// Whether this record may carry one of `scent_ids`: its own (first) scent id, or
    /// one of the events merged into it. A coalesced record that merged more scents than
    /// it remembers answers yes to any non-empty list: an erasure drops the whole record
    /// rather than risk sending a merged scent's record (fail closed; the cost is a lost
    /// notification).
    pub fn concerns_scent(&self, scent_ids: &[String]) -> bool {
        if scent_ids.is_empty() {
            return false;
        }
        self.merged_scents_overflow
            || self
                .scent_id
                .iter()
                .chain(&self.merged_scents)
                .any(|id| scent_ids.contains(id))
    }

    /// Whether this record concerns `signature` or `source` (either given one matches).
    pub fn matches(&self, signature: Option<&str>, source: Option<&str>) -> bool {
        let by_signature = signature.is_some_and(|sig| {
            self.signature.as_deref() == Some(sig) || self.signatures.iter().any(|s| s == sig)
        });
        let by_source = source.is_some_and(|src| self.source.as_deref() == Some(src));
        by_signature || by_source
    }

    /// v1's event payload for this record: the first event's payload, plus, for a
    /// coalesced record, `count`, `firstSeen`, `lastSeen` and `signatures`.
    pub fn v1_payload(&self) -> Value {
        let mut p = self.payload.clone();
        if self.count > 1 {
            p.insert("count".into(), Value::from(self.count));
            p.insert("firstSeen".into(), Value::from(self.first_seen_ms));
            p.insert("lastSeen".into(), Value::from(self.last_seen_ms));
            if !self.signatures.is_empty() {
                p.insert("signatures".into(), Value::from(self.signatures.clone()));
            }
        }
        Value::Object(p)
    }

    /// The record as a core event (for the v1 webhook body).
    pub fn to_event(&self) -> Event {
        Event::new(
            self.event_type,
            self.first_seen_ms,
            self.v1_payload(),
            self.id.clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(payload: Value) -> Event {
        Event::new(
            EventType::EvidenceQuarantined,
            1_700_000_000_000,
            payload,
            "evt-1".into(),
        )
    }

    #[test]
    fn only_allowlisted_scalar_metadata_is_kept() {
        let r = Record::from_event(&ev(json!({
            "signature": "injection:ab12", "size": 42, "severity": "high",
            "payload": "SELECT * FROM users", "body": {"x": 1}, "source": "10.0.0.1",
            "category": ["nested"]
        })));
        let text = serde_json::to_string(&r.payload).unwrap_or_default();
        assert!(!text.contains("SELECT"), "{text}");
        assert!(!text.contains("nested"), "{text}");
        assert_eq!(r.signature.as_deref(), Some("injection:ab12"));
        assert_eq!(r.category.as_deref(), Some("injection"));
        assert_eq!(r.hash(), Some("ab12"));
        assert_eq!(r.size, Some(42));
        assert_eq!(r.severity, Some(Severity::High));
        assert_eq!(r.source.as_deref(), Some("10.0.0.1"));
    }

    #[test]
    fn merge_counts_and_bounds_the_sample() {
        let mut a = Record::from_event(&ev(json!({"signature": "injection:1"})));
        for i in 2..20 {
            let mut b = Record::from_event(&ev(json!({"signature": format!("injection:{i}")})));
            b.first_seen_ms += i;
            b.last_seen_ms += i;
            a.merge(&b, 4);
        }
        assert_eq!(a.count, 19);
        assert_eq!(a.signatures.len(), 4);
        assert_eq!(a.last_seen_ms, 1_700_000_000_019);
        assert!(a.matches(Some("injection:3"), None));
        assert!(!a.matches(Some("injection:9"), None));
        assert!(!a.matches(None, None));
        let p = a.v1_payload();
        assert_eq!(p["count"], json!(19));
    }

    #[test]
    fn a_coalesced_record_concerns_every_merged_scent() {
        let scent =
            |n: usize| Record::from_event(&ev(json!({"scentId": format!("s{n}"), "source": "a"})));
        let mut a = scent(0);
        for n in 1..=MAX_MERGED_SCENTS {
            a.merge(&scent(n), 4);
        }
        assert!(a.concerns_scent(&["s0".into()]));
        assert!(a.concerns_scent(&[format!("s{MAX_MERGED_SCENTS}")]));
        assert!(!a.concerns_scent(&["other".into()]));
        assert!(!a.concerns_scent(&[]));
        // One scent more than remembered: any scent now matches (fail closed).
        a.merge(&scent(MAX_MERGED_SCENTS + 1), 4);
        assert!(a.concerns_scent(&["other".into()]));
        // Merging an overflowed record carries the mark over.
        let mut b = scent(100);
        b.merge(&a, 4);
        assert!(b.concerns_scent(&["other".into()]));
    }

    #[test]
    fn a_single_event_keeps_v1_payload_unchanged() {
        let payload = json!({"scentId": "s1", "category": "injection", "severity": "high", "source": "1.2.3.4"});
        let r = Record::from_event(&Event::new(
            EventType::ThreatDetected,
            5,
            payload.clone(),
            "evt-7".into(),
        ));
        let e = r.to_event();
        assert_eq!(e.payload(), &payload);
        assert_eq!(e.id(), "evt-7");
        assert_eq!(e.timestamp, 5);
    }
}
