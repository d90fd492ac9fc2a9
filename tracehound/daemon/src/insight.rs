//! What the core does not keep but `Stats` reports: the busiest sources and the most
//! recent threat signatures. Fed by an [`InterceptObserver`] on the intercepting thread,
//! so every step is short, bounded and behind a sharded lock.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;

use parking_lot::Mutex;
use tracehound_core::agent::{InterceptEvent, InterceptObserver, InterceptResult, RuntimeHooks};
use tracehound_core::quarantine::Quarantine;
use tracehound_core::rate_limit::RateLimitDecision;

/// One source's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceCounts {
    /// Intercepts seen.
    pub intercepts: u64,
    /// Of which carried a threat signal.
    pub threats: u64,
    /// Whether the rate limiter's last answer for it was a block.
    pub blocked: bool,
}

const SHARDS: usize = 16;

/// One shard of the source table.
type SourceMap = HashMap<Box<str>, SourceCounts>;

/// Approximate heavy hitters: per shard a map capped at `cap` sources; when a shard is
/// full, the less busy half is dropped in one pass (amortised O(1) per new source), so
/// busy sources survive and memory stays bounded.
pub struct TopSources {
    shards: Box<[Mutex<SourceMap>]>,
    cap: usize,
    hasher: foldhash::quality::RandomState,
}

impl TopSources {
    /// Tracks at most about `capacity` sources.
    pub fn new(capacity: usize) -> Self {
        TopSources {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            cap: (capacity / SHARDS).max(2),
            hasher: Default::default(),
        }
    }

    fn record(&self, source: &str, threat: bool, blocked: Option<bool>) {
        let i = (self.hasher.hash_one(source) as usize) % SHARDS;
        let Some(shard) = self.shards.get(i) else {
            return;
        };
        let mut map = shard.lock();
        if let Some(c) = map.get_mut(source) {
            c.intercepts += 1;
            c.threats += u64::from(threat);
            if let Some(b) = blocked {
                c.blocked = b;
            }
            return;
        }
        if map.len() >= self.cap {
            prune(&mut map);
        }
        map.insert(
            source.into(),
            SourceCounts {
                intercepts: 1,
                threats: u64::from(threat),
                blocked: blocked.unwrap_or(false),
            },
        );
    }

    /// Erasure: forgets `source`; whether it was tracked.
    pub fn forget(&self, source: &str) -> bool {
        let i = (self.hasher.hash_one(source) as usize) % SHARDS;
        self.shards
            .get(i)
            .is_some_and(|shard| shard.lock().remove(source).is_some())
    }

    /// The `n` busiest sources, busiest first (ties by name).
    pub fn top(&self, n: usize) -> Vec<(String, SourceCounts)> {
        let mut all: Vec<(String, SourceCounts)> = Vec::new();
        for shard in self.shards.iter() {
            let map = shard.lock();
            all.extend(map.iter().map(|(k, v)| (k.to_string(), *v)));
        }
        all.sort_unstable_by(|a, b| b.1.intercepts.cmp(&a.1.intercepts).then(a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }
}

/// Drops every source at or below the median count (at least half of a full shard).
fn prune(map: &mut SourceMap) {
    let mut counts: Vec<u64> = map.values().map(|c| c.intercepts).collect();
    let mid = counts.len() / 2;
    if counts.is_empty() {
        return;
    }
    let (_, median, _) = counts.select_nth_unstable(mid);
    let median = *median;
    map.retain(|_, c| c.intercepts > median);
}

/// A recent threat (metadata only).
#[derive(Debug, Clone, PartialEq)]
pub struct RecentThreat {
    /// `category:sha256`.
    pub signature: String,
    /// Category name.
    pub category: &'static str,
    /// Severity name.
    pub severity: &'static str,
    /// Stored size in bytes (0 when the evidence was already gone).
    pub size: u64,
    /// When it was (last) seen, ms since the epoch.
    pub seen_ms: f64,
}

/// The most recent distinct threat signatures, newest first, bounded.
pub struct RecentThreats {
    ring: Mutex<VecDeque<RecentThreat>>,
    cap: usize,
}

impl RecentThreats {
    /// Remembers at most `capacity` signatures.
    pub fn new(capacity: usize) -> Self {
        RecentThreats {
            ring: Mutex::new(VecDeque::with_capacity(capacity.max(1))),
            cap: capacity.max(1),
        }
    }

    fn record(&self, threat: RecentThreat) {
        let mut ring = self.ring.lock();
        // A repeat moves to the front instead of filling the ring with one signature.
        if let Some(pos) = ring.iter().position(|t| t.signature == threat.signature) {
            ring.remove(pos);
        }
        if ring.len() >= self.cap {
            ring.pop_back();
        }
        ring.push_front(threat);
    }

    /// Erasure: forgets these signatures; how many were remembered.
    pub fn forget(&self, signatures: &[String]) -> usize {
        let mut ring = self.ring.lock();
        let before = ring.len();
        ring.retain(|t| !signatures.contains(&t.signature));
        before - ring.len()
    }

    /// The `n` most recent, newest first.
    pub fn recent(&self, n: usize) -> Vec<RecentThreat> {
        self.ring.lock().iter().take(n).cloned().collect()
    }
}

/// The daemon's observer: feeds the core's runtime hooks, then the tables above.
pub struct Insight {
    /// Busiest sources.
    pub top_sources: TopSources,
    /// Latest threats.
    pub recent_threats: RecentThreats,
    hooks: RuntimeHooks,
    quarantine: Arc<Quarantine>,
    /// Links sources and scent ids to signatures for erasure requests.
    erasure_index: Option<Arc<crate::erasure::index::ErasureIndex>>,
}

impl Insight {
    /// Tables of the given sizes, forwarding to `hooks`; `quarantine` resolves the size
    /// of duplicates.
    pub fn new(
        tracked_sources: usize,
        recent_threats: usize,
        hooks: RuntimeHooks,
        quarantine: Arc<Quarantine>,
    ) -> Self {
        Insight {
            top_sources: TopSources::new(tracked_sources),
            recent_threats: RecentThreats::new(recent_threats),
            hooks,
            quarantine,
            erasure_index: None,
        }
    }

    /// Also records which source and scent produced each threat's evidence in `index`.
    pub fn with_erasure_index(mut self, index: Arc<crate::erasure::index::ErasureIndex>) -> Self {
        self.erasure_index = Some(index);
        self
    }
}

impl InterceptObserver for Insight {
    fn observe(&self, ev: &InterceptEvent<'_>) {
        self.hooks.observe(ev);
        let blocked = match ev.rate_decision {
            RateLimitDecision::Allowed => Some(false),
            RateLimitDecision::Rejected { blocked, .. } => Some(blocked),
        };
        let scent = ev.scent;
        self.top_sources
            .record(&scent.source, scent.threat.is_some(), blocked);
        let Some(threat) = scent.threat else {
            return;
        };
        let (signature, size) = match ev.result {
            InterceptResult::Quarantined { handle } => {
                (handle.signature().to_owned(), handle.size() as u64)
            }
            InterceptResult::Ignored { signature } => {
                let size = self
                    .quarantine
                    .get(signature)
                    .map_or(0, |h| h.size() as u64);
                (signature.clone(), size)
            }
            _ => return,
        };
        if let Some(index) = &self.erasure_index {
            let fresh = matches!(ev.result, InterceptResult::Quarantined { .. });
            index.record(&signature, &scent.source, &scent.id, fresh);
        }
        self.recent_threats.record(RecentThreat {
            signature,
            category: threat.category.as_str(),
            severity: threat.severity.as_str(),
            size,
            seen_ms: ev.now_ms as f64,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heavy_hitters_survive_pruning_and_memory_stays_bounded() {
        let t = TopSources::new(64);
        for _ in 0..50 {
            t.record("busy", false, Some(false));
        }
        for i in 0..10_000 {
            t.record(&format!("one-off-{i}"), i % 2 == 0, None);
        }
        t.record("busy", true, Some(true));
        let top = t.top(3);
        assert_eq!(top.first().map(|(s, _)| s.as_str()), Some("busy"));
        let busy = top.first().map(|(_, c)| *c).unwrap_or_default();
        assert_eq!(
            busy,
            SourceCounts {
                intercepts: 51,
                threats: 1,
                blocked: true
            }
        );
        let held: usize = t.shards.iter().map(|s| s.lock().len()).sum();
        assert!(held <= 64, "held {held}");
    }

    #[test]
    fn recent_threats_are_distinct_newest_first_and_bounded() {
        let r = RecentThreats::new(3);
        let t = |s: &str, at: f64| RecentThreat {
            signature: s.into(),
            category: "spam",
            severity: "low",
            size: 1,
            seen_ms: at,
        };
        for (i, s) in ["a", "b", "c", "a", "d"].iter().enumerate() {
            r.record(t(s, i as f64));
        }
        let sigs: Vec<_> = r.recent(10).into_iter().map(|t| t.signature).collect();
        assert_eq!(sigs, ["d", "a", "c"]);
    }
}
