//! Threat coalescing: events with the same key inside one window become one record with
//! counts, so a flood produces one record per key per window instead of one per request.
//!
//! No I/O and no clock: callers pass a monotonic `now_ms`. A key's window opens with its
//! first event and closes `window_ms` later, when [`Coalescer::flush_due`] hands the record
//! on. The number of open keys is capped; past the cap events pass through uncoalesced
//! (counted as overflow), so memory stays bounded whatever the traffic.

use std::collections::{HashMap, VecDeque};

use tracehound_core::notify::EventType;

use crate::record::Record;

/// What makes two events "the same" for coalescing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CoalesceKey {
    /// The evidence signature. `threat.detected` carries none (v1's payload), so it is
    /// grouped by source and category instead.
    #[default]
    Signature,
    /// The source.
    Source,
    /// Source and category together.
    SourceCategory,
}

impl CoalesceKey {
    /// The config name.
    pub fn as_str(self) -> &'static str {
        match self {
            CoalesceKey::Signature => "signature",
            CoalesceKey::Source => "source",
            CoalesceKey::SourceCategory => "source+category",
        }
    }

    /// Parses a config name.
    pub fn parse(name: &str) -> Option<CoalesceKey> {
        match name {
            "signature" => Some(CoalesceKey::Signature),
            "source" => Some(CoalesceKey::Source),
            "source+category" => Some(CoalesceKey::SourceCategory),
            _ => None,
        }
    }
}

/// Coalescing settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoalesceConfig {
    /// Window length in ms; 0 turns coalescing off (every event is its own record).
    pub window_ms: u64,
    /// The grouping key.
    pub key: CoalesceKey,
    /// Most keys open at once.
    pub max_keys: usize,
    /// Most distinct signatures kept per record.
    pub sample: usize,
}

impl Default for CoalesceConfig {
    fn default() -> Self {
        CoalesceConfig {
            window_ms: 10_000,
            key: CoalesceKey::Signature,
            max_keys: 10_000,
            sample: 8,
        }
    }
}

/// Coalescing counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CoalesceStats {
    /// Events offered.
    pub events_in: u64,
    /// Records handed on (flushed or passed through).
    pub records_out: u64,
    /// Events folded into an already open record.
    pub merged: u64,
    /// Events passed through uncoalesced because `max_keys` keys were open.
    pub overflow: u64,
    /// Keys open now.
    pub open: u64,
}

struct Open {
    record: Record,
    seq: u64,
}

/// The coalescer's state.
pub struct Coalescer {
    config: CoalesceConfig,
    open: HashMap<(EventType, String), Open>,
    /// Keys in opening order with their close time; since the window is fixed and `now`
    /// is monotonic, close times are ascending. Entries of purged keys are stale
    /// (their `seq` no longer matches) and skipped.
    deadlines: VecDeque<(u64, u64, (EventType, String))>,
    next_seq: u64,
    stats: CoalesceStats,
}

/// Whether events of `t` are coalesced (the others are rare, and each one matters on
/// its own).
pub(crate) fn coalescable(t: EventType) -> bool {
    matches!(
        t,
        EventType::ThreatDetected
            | EventType::EvidenceQuarantined
            | EventType::EvidenceEvicted
            | EventType::RateLimitExceeded
    )
}

impl Coalescer {
    /// A coalescer with `config` (`max_keys` and `sample` of 0 are raised to 1).
    pub fn new(config: CoalesceConfig) -> Coalescer {
        Coalescer {
            config: CoalesceConfig {
                max_keys: config.max_keys.max(1),
                sample: config.sample.max(1),
                ..config
            },
            open: HashMap::new(),
            deadlines: VecDeque::new(),
            next_seq: 0,
            stats: CoalesceStats::default(),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> CoalesceConfig {
        self.config
    }

    fn key_of(&self, r: &Record) -> String {
        let source_category = || match (&r.source, &r.category) {
            (Some(s), c) => Some(format!("{s}\u{1f}{}", c.as_deref().unwrap_or(""))),
            _ => None,
        };
        let key = match self.config.key {
            CoalesceKey::Signature => r.signature.clone().or_else(source_category),
            CoalesceKey::Source => r.source.clone().or_else(|| r.signature.clone()),
            CoalesceKey::SourceCategory => source_category().or_else(|| r.signature.clone()),
        };
        // Without any key field the event stands alone.
        key.unwrap_or_else(|| format!("\u{0}{}", r.id))
    }

    /// Takes one record at `now_ms`. Returns it back when it is not held (coalescing
    /// off, a type that is never coalesced, or too many open keys).
    pub fn offer(&mut self, record: Record, now_ms: u64) -> Option<Record> {
        self.stats.events_in += 1;
        if self.config.window_ms == 0 || !coalescable(record.event_type) {
            self.stats.records_out += 1;
            return Some(record);
        }
        let key = (record.event_type, self.key_of(&record));
        if let Some(open) = self.open.get_mut(&key) {
            open.record.merge(&record, self.config.sample);
            self.stats.merged += 1;
            return None;
        }
        if self.open.len() >= self.config.max_keys {
            self.stats.overflow += 1;
            self.stats.records_out += 1;
            return Some(record);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut record = record;
        record.signatures.truncate(self.config.sample);
        self.deadlines.push_back((
            now_ms.saturating_add(self.config.window_ms),
            seq,
            key.clone(),
        ));
        self.open.insert(key, Open { record, seq });
        None
    }

    /// Whether every key slot is taken (new keys would pass through uncoalesced).
    pub(crate) fn out_of_keys(&self) -> bool {
        self.open.len() >= self.config.max_keys
    }

    /// Records whose window has closed by `now_ms`, oldest first.
    pub fn flush_due(&mut self, now_ms: u64) -> Vec<Record> {
        let mut out = Vec::new();
        while let Some((deadline, _, _)) = self.deadlines.front() {
            if *deadline > now_ms {
                break;
            }
            let Some((_, seq, key)) = self.deadlines.pop_front() else {
                break;
            };
            if self.open.get(&key).is_some_and(|o| o.seq == seq) {
                if let Some(o) = self.open.remove(&key) {
                    out.push(o.record);
                }
            }
        }
        self.stats.records_out += out.len() as u64;
        out
    }

    /// Every open record, whatever its window (at shutdown).
    pub fn flush_all(&mut self) -> Vec<Record> {
        self.flush_due(u64::MAX)
    }

    /// Drops open records concerning `signature` or `source`; returns how many.
    pub fn purge(&mut self, signature: Option<&str>, source: Option<&str>) -> usize {
        let before = self.open.len();
        self.open
            .retain(|_, o| !o.record.matches(signature, source));
        before - self.open.len()
    }

    /// Drops open records that may carry one of `scent_ids` (a coalesced record whose
    /// merged events include one is dropped whole: see [`Record::concerns_scent`]);
    /// returns how many.
    pub fn purge_scents(&mut self, scent_ids: &[String]) -> usize {
        let before = self.open.len();
        self.open.retain(|_, o| !o.record.concerns_scent(scent_ids));
        before - self.open.len()
    }

    /// Counters.
    pub fn stats(&self) -> CoalesceStats {
        CoalesceStats {
            open: self.open.len() as u64,
            ..self.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tracehound_core::notify::Event;

    fn threat(source: &str, category: &str, t: u64) -> Record {
        Record::from_event(&Event::new(
            EventType::ThreatDetected,
            t,
            json!({"scentId": format!("s{t}"), "category": category, "severity": "high", "source": source}),
            format!("evt-{t}"),
        ))
    }

    fn cfg(key: CoalesceKey) -> CoalesceConfig {
        CoalesceConfig {
            window_ms: 1000,
            key,
            max_keys: 4,
            sample: 2,
        }
    }

    #[test]
    fn a_flood_becomes_one_record_per_key_per_window() {
        let mut c = Coalescer::new(cfg(CoalesceKey::Source));
        for i in 0..1000 {
            assert!(c.offer(threat("1.2.3.4", "injection", i), 10).is_none());
        }
        assert!(c.flush_due(1009).is_empty());
        let out = c.flush_due(1010);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].count, 1000);
        assert_eq!(out[0].first_seen_ms, 0);
        assert_eq!(out[0].last_seen_ms, 999);
        // A new window starts a new record.
        assert!(c
            .offer(threat("1.2.3.4", "injection", 2000), 1011)
            .is_none());
        assert_eq!(c.flush_all().len(), 1);
        let s = c.stats();
        assert_eq!(
            (s.events_in, s.merged, s.records_out, s.open),
            (1001, 999, 2, 0)
        );
    }

    #[test]
    fn keys_separate_what_they_should() {
        let mut c = Coalescer::new(cfg(CoalesceKey::SourceCategory));
        c.offer(threat("a", "injection", 1), 0);
        c.offer(threat("a", "ddos", 2), 0);
        c.offer(threat("a", "injection", 3), 0);
        c.offer(threat("b", "injection", 4), 0);
        let out = c.flush_all();
        assert_eq!(
            out.iter().map(|r| r.count).collect::<Vec<_>>(),
            vec![2, 1, 1]
        );

        let mut c = Coalescer::new(cfg(CoalesceKey::Source));
        c.offer(threat("a", "injection", 1), 0);
        c.offer(threat("a", "ddos", 2), 0);
        assert_eq!(c.flush_all().len(), 1);
    }

    #[test]
    fn overflow_passes_through_and_window_zero_disables() {
        let mut c = Coalescer::new(cfg(CoalesceKey::Source));
        for i in 0..4 {
            assert!(c.offer(threat(&format!("s{i}"), "spam", i), 0).is_none());
        }
        assert!(c.offer(threat("s9", "spam", 9), 0).is_some());
        assert_eq!(c.stats().overflow, 1);

        let mut off = Coalescer::new(CoalesceConfig {
            window_ms: 0,
            ..cfg(CoalesceKey::Source)
        });
        assert!(off.offer(threat("a", "spam", 1), 0).is_some());
        assert!(off.offer(threat("a", "spam", 2), 0).is_some());
    }

    #[test]
    fn purge_removes_open_records_and_stale_deadlines_are_skipped() {
        let mut c = Coalescer::new(cfg(CoalesceKey::Source));
        c.offer(threat("a", "spam", 1), 0);
        c.offer(threat("b", "spam", 2), 0);
        assert_eq!(c.purge(None, Some("a")), 1);
        // Reopen "a" later: the stale deadline of the purged record must not flush it early.
        c.offer(threat("a", "spam", 3), 500);
        let out = c.flush_due(1000);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].source.as_deref(), Some("b"));
        assert_eq!(c.flush_due(1500).len(), 1);
    }
}
