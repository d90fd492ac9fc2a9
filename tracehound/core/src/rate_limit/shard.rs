//! One shard of the rate limiter: a hash table from source to a slot in an intrusive
//! doubly linked LRU list (most recently active at the head), all O(1).
//!
//! The source is hashed once per check (seeded foldhash, in [`super::RateLimiter`]); that
//! hash picks the shard and is the key of this shard's table, whose hasher passes it
//! through. Sources whose 64-bit hashes collide are chained through their nodes and told
//! apart by comparing the source itself.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use super::{RateLimitConfig, RateLimitDecision, RejectReason};

const NIL: usize = usize::MAX;

/// Per-source state (v1 `{timestamps, blockedUntil, lastActivity}`).
struct Node {
    key: Box<str>,
    /// The source's hash (its table key).
    hash: u64,
    /// Next node whose source has the same hash (`NIL` if none).
    chain: usize,
    prev: usize,
    next: usize,
    /// Logged request times, ascending, at most `max_requests` long.
    log: VecDeque<u64>,
    blocked_until: Option<u64>,
    last_activity: u64,
}

/// Passes an already computed 64-bit hash through (the table's keys are seeded hashes).
#[derive(Default)]
pub(super) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `u64` keys; fold anything else in anyway.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub(super) struct Shard {
    /// Source hash → first node with that hash.
    map: HashMap<u64, usize, BuildHasherDefault<PassThrough>>,
    nodes: Vec<Node>,
    free: Vec<usize>,
    head: usize,
    tail: usize,
    cap: usize,
    pub(super) checks: u64,
    pub(super) rejections: u64,
}

/// Expired as v1's `cleanup()` defines it: inactive for longer than window + block, and
/// not serving a block.
fn expired(node: &Node, now: u64, cfg: &RateLimitConfig) -> bool {
    let idle_until = node
        .last_activity
        .saturating_add(cfg.window_ms)
        .saturating_add(cfg.block_duration_ms);
    idle_until < now && node.blocked_until.is_none_or(|until| until < now)
}

impl Shard {
    pub(super) fn new(cap: usize) -> Shard {
        Shard {
            map: HashMap::default(),
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            cap,
            checks: 0,
            rejections: 0,
        }
    }

    /// Tracked sources (nodes in the LRU list).
    pub(super) fn len(&self) -> usize {
        self.nodes.len() - self.free.len()
    }

    fn find(&self, source: &str, hash: u64) -> Option<usize> {
        let mut i = *self.map.get(&hash)?;
        loop {
            let node = self.nodes.get(i)?;
            if &*node.key == source {
                return Some(i);
            }
            i = node.chain;
        }
    }

    pub(super) fn blocked_at(&self, now: u64) -> usize {
        self.live()
            .filter(|&i| {
                self.nodes
                    .get(i)
                    .and_then(|n| n.blocked_until)
                    .is_some_and(|u| u > now)
            })
            .count()
    }

    /// Indices of live nodes, most recently active first.
    fn live(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::successors(Some(self.head).filter(|&h| h != NIL), move |&i| {
            self.nodes.get(i).map(|n| n.next).filter(|&n| n != NIL)
        })
    }

    pub(super) fn check(
        &mut self,
        source: &str,
        hash: u64,
        now: u64,
        cfg: &RateLimitConfig,
    ) -> RateLimitDecision {
        self.checks += 1;
        let idx = match self.find(source, hash) {
            Some(i) => {
                if self.head != i {
                    self.unlink(i);
                    self.push_front(i);
                }
                i
            }
            None => self.insert(source, hash, now),
        };
        let decision = match self.nodes.get_mut(idx) {
            Some(node) => decide(node, now, cfg),
            None => RateLimitDecision::Allowed,
        };
        if !decision.is_allowed() {
            self.rejections += 1;
        }
        // Amortized cleanup: two removals per check outpace one new source per check.
        for _ in 0..2 {
            let t = self.tail;
            if t == idx || !self.nodes.get(t).is_some_and(|n| expired(n, now, cfg)) {
                break;
            }
            self.remove_at(t);
        }
        decision
    }

    pub(super) fn remove(&mut self, source: &str, hash: u64) -> bool {
        match self.find(source, hash) {
            Some(i) => {
                self.remove_at(i);
                true
            }
            None => false,
        }
    }

    pub(super) fn cleanup_all(&mut self, now: u64, cfg: &RateLimitConfig) -> usize {
        let stale: Vec<usize> = self
            .live()
            .filter(|&i| self.nodes.get(i).is_some_and(|n| expired(n, now, cfg)))
            .collect();
        for &i in &stale {
            self.remove_at(i);
        }
        stale.len()
    }

    /// Adds a node for `source` at the head, first making room if the shard is full.
    fn insert(&mut self, source: &str, hash: u64, now: u64) -> usize {
        // Full: forget the least recently active source (expired ones sit at the tail too).
        if self.len() >= self.cap && self.tail != NIL {
            self.remove_at(self.tail);
        }
        let node = Node {
            key: Box::from(source),
            hash,
            chain: self.map.get(&hash).copied().unwrap_or(NIL),
            prev: NIL,
            next: NIL,
            log: VecDeque::new(),
            blocked_until: None,
            last_activity: now,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                if let Some(slot) = self.nodes.get_mut(i) {
                    *slot = node;
                }
                i
            }
            None => {
                self.nodes.push(node);
                self.nodes.len() - 1
            }
        };
        self.map.insert(hash, idx);
        self.push_front(idx);
        idx
    }

    fn remove_at(&mut self, i: usize) {
        let Some((hash, chain)) = self.nodes.get(i).map(|n| (n.hash, n.chain)) else {
            return;
        };
        self.unlink(i);
        // Take the node out of its hash chain.
        match self.map.get(&hash).copied() {
            Some(head) if head == i => {
                if chain == NIL {
                    self.map.remove(&hash);
                } else {
                    self.map.insert(hash, chain);
                }
            }
            Some(mut j) => {
                while let Some(n) = self.nodes.get_mut(j) {
                    if n.chain == i {
                        n.chain = chain;
                        break;
                    }
                    j = n.chain;
                }
            }
            None => {}
        }
        if let Some(node) = self.nodes.get_mut(i) {
            // Release the source's memory now; the slot itself is reused.
            node.log = VecDeque::new();
            node.key = Box::from("");
            node.chain = NIL;
            self.free.push(i);
        }
    }

    fn unlink(&mut self, i: usize) {
        let (prev, next) = match self.nodes.get(i) {
            Some(n) => (n.prev, n.next),
            None => return,
        };
        match self.nodes.get_mut(prev) {
            Some(p) => p.next = next,
            None => self.head = next,
        }
        match self.nodes.get_mut(next) {
            Some(n) => n.prev = prev,
            None => self.tail = prev,
        }
        if let Some(n) = self.nodes.get_mut(i) {
            n.prev = NIL;
            n.next = NIL;
        }
    }

    fn push_front(&mut self, i: usize) {
        let old = self.head;
        if let Some(n) = self.nodes.get_mut(i) {
            n.prev = NIL;
            n.next = old;
        }
        match self.nodes.get_mut(old) {
            Some(o) => o.prev = i,
            None => self.tail = i,
        }
        self.head = i;
    }
}

/// v1's per-source decision (spec §13 steps 1–5).
fn decide(node: &mut Node, now: u64, cfg: &RateLimitConfig) -> RateLimitDecision {
    node.last_activity = now;
    if let Some(until) = node.blocked_until {
        if now < until {
            return RateLimitDecision::Rejected {
                blocked: true,
                retry_after_ms: until - now,
                reason: RejectReason::SourceBlocked,
            };
        }
        node.blocked_until = None;
        node.log.clear();
    }
    // Keep only `ts > now − window`, i.e. `ts + window > now` (no underflow).
    while node
        .log
        .front()
        .is_some_and(|&ts| ts.saturating_add(cfg.window_ms) <= now)
    {
        node.log.pop_front();
    }
    if node.log.len() >= cfg.max_requests {
        if cfg.block_duration_ms > 0 {
            node.blocked_until = Some(now.saturating_add(cfg.block_duration_ms));
            return RateLimitDecision::Rejected {
                blocked: true,
                retry_after_ms: cfg.block_duration_ms,
                reason: RejectReason::ExceededAndBlocked,
            };
        }
        let oldest = node.log.front().copied().unwrap_or(now);
        return RateLimitDecision::Rejected {
            blocked: false,
            retry_after_ms: oldest.saturating_add(cfg.window_ms).saturating_sub(now),
            reason: RejectReason::ExceededWindow,
        };
    }
    if node.log.back().is_none_or(|&last| last <= now) {
        node.log.push_back(now);
    } else {
        // Clock went backwards: keep the log sorted so front-trimming stays exact.
        let pos = node.log.partition_point(|&ts| ts <= now);
        node.log.insert(pos, now);
    }
    RateLimitDecision::Allowed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> RateLimitConfig {
        RateLimitConfig {
            window_ms: 1000,
            max_requests: 1,
            block_duration_ms: 0,
            max_sources: 3,
            shards: 1,
        }
    }

    /// Sources whose hashes collide stay separate, and removing any of them keeps the
    /// others findable.
    #[test]
    fn colliding_hashes_are_chained() {
        let c = cfg();
        let mut s = Shard::new(3);
        for src in ["a", "b", "c"] {
            assert!(s.check(src, 7, 0, &c).is_allowed());
        }
        for src in ["a", "b", "c"] {
            assert!(
                !s.check(src, 7, 1, &c).is_allowed(),
                "{src} keeps its own log"
            );
        }
        assert!(s.remove("b", 7));
        assert!(!s.remove("b", 7));
        assert_eq!(s.len(), 2);
        assert!(!s.check("a", 7, 2, &c).is_allowed());
        assert!(!s.check("c", 7, 2, &c).is_allowed());
        // Full at 3: "d" (another hash) fits, "e" pushes out the least recent ("a").
        assert!(s.check("d", 9, 3, &c).is_allowed());
        assert!(s.check("e", 7, 4, &c).is_allowed());
        assert_eq!(s.len(), 3);
        assert!(s.check("a", 7, 5, &c).is_allowed(), "a was forgotten");
        assert!(!s.check("e", 7, 6, &c).is_allowed());
    }
}
