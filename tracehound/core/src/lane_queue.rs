//! Lane queue (spec §19): four priority lanes (critical, high, medium, low) with hard
//! per-lane bounds and an overflow policy.
//!
//! v1's `drop_lowest` freed a slot in the lowest non-empty lane — often another lane —
//! and then pushed into the full lane anyway, overfilling it (vector `lane_queue`: the
//! high lane reaches 3 with maxSize 1). Here bounds are hard: a full lane can only gain
//! room by losing one of its own entries, so `drop_lowest` evicts the lowest-value entry
//! *of the full lane* — its oldest, since all its entries share a severity — and never
//! touches other lanes. The counts stay within `max_size` after every call.

use std::collections::VecDeque;

use parking_lot::Mutex;
use serde_json::Value;

use crate::types::Severity;

/// Lanes in dequeue order.
const PRIORITY: [Severity; 4] = [
    Severity::Critical,
    Severity::High,
    Severity::Medium,
    Severity::Low,
];

/// What to do when the target lane is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverflowPolicy {
    /// Drop the lane's oldest entry, then enqueue (v1 default).
    DropOldest,
    /// Drop the lowest-value entry that frees room in the full lane (its oldest), then
    /// enqueue. See the module docs for how this fixes v1.
    DropLowest,
    /// Refuse the new entry.
    Reject,
}

impl OverflowPolicy {
    /// v1's name.
    pub fn as_str(self) -> &'static str {
        match self {
            OverflowPolicy::DropOldest => "drop_oldest",
            OverflowPolicy::DropLowest => "drop_lowest",
            OverflowPolicy::Reject => "reject",
        }
    }
}

/// Per-lane bounds, indexed by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneConfig {
    /// critical lane bound (v1 default 1000)
    pub critical: usize,
    /// high lane bound (v1 default 500)
    pub high: usize,
    /// medium lane bound (v1 default 200)
    pub medium: usize,
    /// low lane bound (v1 default 100)
    pub low: usize,
    /// Overflow policy (v1 default `drop_oldest`).
    pub overflow: OverflowPolicy,
}

impl Default for LaneConfig {
    fn default() -> Self {
        LaneConfig {
            critical: 1000,
            high: 500,
            medium: 200,
            low: 100,
            overflow: OverflowPolicy::DropOldest,
        }
    }
}

impl LaneConfig {
    /// The bound of the lane for `severity`.
    pub fn max_size(&self, severity: Severity) -> usize {
        match severity {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
        }
    }
}

/// v1's `LaneAlert`.
#[derive(Debug, Clone, PartialEq)]
pub struct LaneAlert {
    /// Alert id.
    pub id: String,
    /// Lane.
    pub severity: Severity,
    /// `quarantined`, `rate_limited`, `evicted`, `purged` or `threshold`.
    pub alert_type: String,
    /// Human-readable text.
    pub message: String,
    /// Optional structured context.
    pub context: Option<Value>,
    /// ms since the epoch.
    pub timestamp: u64,
}

/// Per-lane counts, v1's `stats.counts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LaneCounts {
    /// critical lane length
    pub critical: usize,
    /// high lane length
    pub high: usize,
    /// medium lane length
    pub medium: usize,
    /// low lane length
    pub low: usize,
}

/// v1's `stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LaneStats {
    /// Current lane lengths.
    pub counts: LaneCounts,
    /// Entries dropped or refused.
    pub dropped: u64,
    /// Entries dequeued.
    pub processed: u64,
}

struct Inner<T> {
    lanes: [VecDeque<T>; 4],
    dropped: u64,
    processed: u64,
}

/// The queue. `Send + Sync` when `T: Send`; one short lock per operation.
pub struct LaneQueue<T = LaneAlert> {
    config: LaneConfig,
    inner: Mutex<Inner<T>>,
}

impl<T> std::fmt::Debug for LaneQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaneQueue")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish()
    }
}

fn lane_index(s: Severity) -> usize {
    match s {
        Severity::Critical => 0,
        Severity::High => 1,
        Severity::Medium => 2,
        Severity::Low => 3,
    }
}

impl<T> LaneQueue<T> {
    /// An empty queue with the given bounds.
    pub fn new(config: LaneConfig) -> Self {
        LaneQueue {
            config,
            inner: Mutex::new(Inner {
                lanes: Default::default(),
                dropped: 0,
                processed: 0,
            }),
        }
    }

    /// The queue's configuration.
    pub fn config(&self) -> LaneConfig {
        self.config
    }

    /// Enqueues `item` in the `severity` lane. Returns `false` if it was refused.
    pub fn enqueue(&self, severity: Severity, item: T) -> bool {
        let max = self.config.max_size(severity);
        let mut g = self.inner.lock();
        let inner = &mut *g;
        let Some(lane) = inner.lanes.get_mut(lane_index(severity)) else {
            return false;
        };
        if lane.len() >= max {
            match self.config.overflow {
                OverflowPolicy::Reject => {
                    inner.dropped += 1;
                    return false;
                }
                OverflowPolicy::DropOldest | OverflowPolicy::DropLowest => {
                    // A zero-size lane can hold nothing: refuse rather than overfill.
                    if lane.pop_front().is_none() {
                        inner.dropped += 1;
                        return false;
                    }
                    // The lane held exactly `max` (bounds are hard), so it now has room.
                    inner.dropped += 1;
                }
            }
        }
        lane.push_back(item);
        true
    }

    /// Takes the highest-priority, oldest entry (critical → low, FIFO within a lane).
    pub fn dequeue(&self) -> Option<(Severity, T)> {
        let mut g = self.inner.lock();
        let inner = &mut *g;
        for (sev, lane) in PRIORITY.iter().zip(inner.lanes.iter_mut()) {
            if let Some(item) = lane.pop_front() {
                inner.processed += 1;
                return Some((*sev, item));
            }
        }
        None
    }

    /// Dequeues everything in priority order, handing each entry to `handler`; returns
    /// how many were handled (v1 `flush`).
    pub fn flush(&self, mut handler: impl FnMut(Severity, T)) -> usize {
        let mut n = 0;
        // Dequeue one at a time so `handler` never runs under the lock.
        while let Some((sev, item)) = self.dequeue() {
            handler(sev, item);
            n += 1;
        }
        n
    }

    /// Total entries queued (v1 `size`).
    pub fn len(&self) -> usize {
        self.inner.lock().lanes.iter().map(VecDeque::len).sum()
    }

    /// Whether no entry is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lane lengths and counters.
    pub fn stats(&self) -> LaneStats {
        let g = self.inner.lock();
        let [c, h, m, l] = &g.lanes;
        LaneStats {
            counts: LaneCounts {
                critical: c.len(),
                high: h.len(),
                medium: m.len(),
                low: l.len(),
            },
            dropped: g.dropped,
            processed: g.processed,
        }
    }
}

impl LaneQueue<LaneAlert> {
    /// Enqueues an alert in its own severity's lane.
    pub fn enqueue_alert(&self, alert: LaneAlert) -> bool {
        let sev = alert.severity;
        self.enqueue(sev, alert)
    }
}
