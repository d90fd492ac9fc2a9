//! v1's sliding-window-log rate limiter (spec §13), with bounded memory and no global lock.
//!
//! Semantics per source are v1's, step for step: a blocked source is rejected with the
//! remaining block time; once the block expires its log is cleared; timestamps
//! `≤ now − windowMs` leave the log; a full log rejects (and blocks for `blockDurationMs`
//! if that is positive, else reports when the oldest entry expires); rejected requests are
//! not logged.
//!
//! What differs, on purpose:
//! * Each source's log is a deque trimmed from the front, so a check costs O(1) amortized
//!   instead of v1's O(maxRequests) filter.
//! * At most [`RateLimitConfig::max_sources`] sources are tracked. The map is split into
//!   shards by source hash, each an LRU list under its own mutex; when a shard is full its
//!   least recently active source is forgotten. (A forgotten source starts afresh, so a
//!   blocked source can be pushed out by a flood of new ones; the cap bounds memory.)
//! * Cleanup is automatic: every check removes up to two expired sources from the LRU tail
//!   (expired as v1's `cleanup()` defines it — removing them changes only `stats.sources`).
//! * Time is injected (`now_ms`), so replays are exact.
//! * If the clock goes backwards a timestamp is inserted in order, so "the oldest entry"
//!   used for `retryAfter` is the smallest timestamp rather than the first logged.

mod shard;

use std::hash::BuildHasher;

use parking_lot::Mutex;

use crate::error::TracehoundError;
use shard::Shard;

/// Rate limiter configuration (v1 `{windowMs, maxRequests, blockDurationMs}` plus bounds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Sliding window length in ms; must be positive.
    pub window_ms: u64,
    /// Requests allowed per window per source; must be positive.
    pub max_requests: usize,
    /// How long a source that exceeds the limit stays blocked; 0 = no block.
    pub block_duration_ms: u64,
    /// Cap on tracked sources; must be positive.
    pub max_sources: usize,
    /// Number of independently locked shards (rounded down to at most `max_sources`).
    pub shards: usize,
}

impl Default for RateLimitConfig {
    /// v1's defaults (60 s window, 100 requests, 5 min block) with a 100 000-source cap.
    fn default() -> Self {
        RateLimitConfig {
            window_ms: 60_000,
            max_requests: 100,
            block_duration_ms: 300_000,
            max_sources: 100_000,
            shards: 16,
        }
    }
}

/// Why a request was rejected; [`message`](RejectReason::message) is v1's `reason` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The source is serving a block.
    SourceBlocked,
    /// The limit was just exceeded and the source is now blocked.
    ExceededAndBlocked,
    /// The limit is exceeded; no blocking configured.
    ExceededWindow,
}

impl RejectReason {
    /// v1's `reason` string.
    pub fn message(self) -> &'static str {
        match self {
            RejectReason::SourceBlocked => "Source is blocked due to rate limit violation",
            RejectReason::ExceededAndBlocked => "Rate limit exceeded, source blocked",
            RejectReason::ExceededWindow => "Rate limit exceeded within sliding window",
        }
    }
}

/// Result of one [`RateLimiter::check`] (v1 `{allowed, blocked?, retryAfter?, reason?}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitDecision {
    /// `{allowed: true}`; the request was logged.
    Allowed,
    /// `{allowed: false, blocked, retryAfter, reason}`.
    Rejected {
        /// Whether the source is (now) blocked.
        blocked: bool,
        /// Milliseconds until a retry can succeed.
        retry_after_ms: u64,
        /// Why.
        reason: RejectReason,
    },
}

impl RateLimitDecision {
    /// True for [`RateLimitDecision::Allowed`].
    pub fn is_allowed(&self) -> bool {
        matches!(self, RateLimitDecision::Allowed)
    }
}

/// v1 `stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimitStats {
    /// Tracked sources.
    pub sources: usize,
    /// Sources whose block has not expired at the given time.
    pub blocked: usize,
    /// All checks so far.
    pub total_checks: u64,
    /// All rejections so far.
    pub total_rejections: u64,
}

/// Keeps a shard's lock and counters on their own cache lines, so threads hitting
/// different shards do not contend.
#[repr(align(128))]
struct Padded(Mutex<Shard>);

/// The sharded, bounded sliding-window-log limiter. `Send + Sync`; share it by reference
/// or `Arc`.
pub struct RateLimiter {
    config: RateLimitConfig,
    shards: Box<[Padded]>,
    /// Seeded per limiter from a per-process random secret (foldhash `quality`). About
    /// 4× cheaper than std's SipHash-1-3 on short source strings; it defeats precomputed
    /// collision sets, but foldhash itself claims only "minimal" DoS resistance against an
    /// attacker who can observe timings. Whatever the collisions, a check walks at most one
    /// shard's sources (`max_sources / shards`), so the cost per check stays bounded.
    hasher: foldhash::quality::RandomState,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// Validates `config` as v1 does (`windowMs must be positive`, `maxRequests must be
    /// positive`; errors are `CONFIG_RATELIMIT_INVALID`) plus `max_sources` and `shards`.
    pub fn new(config: RateLimitConfig) -> Result<RateLimiter, TracehoundError> {
        if config.window_ms == 0 {
            return Err(TracehoundError::invalid_config_rate_limit(
                "windowMs must be positive",
            ));
        }
        if config.max_requests == 0 {
            return Err(TracehoundError::invalid_config_rate_limit(
                "maxRequests must be positive",
            ));
        }
        if config.max_sources == 0 {
            return Err(TracehoundError::invalid_config_rate_limit(
                "maxSources must be positive",
            ));
        }
        if config.shards == 0 {
            return Err(TracehoundError::invalid_config_rate_limit(
                "shards must be positive",
            ));
        }
        let n = config.shards.min(config.max_sources);
        let (base, extra) = (config.max_sources / n, config.max_sources % n);
        let shards = (0..n)
            .map(|i| Padded(Mutex::new(Shard::new(base + usize::from(i < extra)))))
            .collect();
        Ok(RateLimiter {
            config,
            shards,
            hasher: Default::default(),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &RateLimitConfig {
        &self.config
    }

    /// v1 `check(source)` at time `now_ms`: logs and allows the request, or rejects it.
    pub fn check(&self, source: &str, now_ms: u64) -> RateLimitDecision {
        let (shard, hash) = self.shard(source);
        shard.0.lock().check(source, hash, now_ms, &self.config)
    }

    /// v1 `reset(source)`: forgets the source. Returns whether it was tracked.
    pub fn reset(&self, source: &str) -> bool {
        let (shard, hash) = self.shard(source);
        shard.0.lock().remove(source, hash)
    }

    /// v1 `cleanup()`: removes every source whose activity and block ended before
    /// `now_ms − windowMs − blockDurationMs`; returns how many. Scans all sources (checks
    /// already do this incrementally, so calling it is optional).
    pub fn cleanup(&self, now_ms: u64) -> usize {
        self.shards
            .iter()
            .map(|s| s.0.lock().cleanup_all(now_ms, &self.config))
            .sum()
    }

    /// v1 `stats` at `now_ms` (`blocked` counts blocks still running then). Visits every
    /// shard; meant for monitoring, not for the request path.
    pub fn stats(&self, now_ms: u64) -> RateLimitStats {
        let mut out = RateLimitStats::default();
        for s in self.shards.iter() {
            let s = s.0.lock();
            out.sources += s.len();
            out.blocked += s.blocked_at(now_ms);
            out.total_checks += s.checks;
            out.total_rejections += s.rejections;
        }
        out
    }

    /// Tracked sources (sum over shards).
    pub fn tracked_sources(&self) -> usize {
        self.shards.iter().map(|s| s.0.lock().len()).sum()
    }

    /// The source's shard and hash. The shard comes from the hash's middle bits, which the
    /// shard's table (low bits for the bucket, top 7 bits as tag) barely uses, so sources
    /// of one shard still spread over its whole table.
    fn shard(&self, source: &str) -> (&Padded, u64) {
        let h = self.hasher.hash_one(source);
        let mid = u128::from((h >> 20) as u32);
        // Multiply-shift range reduction: always below `len`.
        let i = usize::try_from((mid * self.shards.len() as u128) >> 32).unwrap_or(0);
        (&self.shards[i], h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_shard(cap: usize) -> RateLimiter {
        let cfg = RateLimitConfig {
            max_sources: cap,
            shards: 1,
            window_ms: 1000,
            max_requests: 1,
            block_duration_ms: 0,
        };
        RateLimiter::new(cfg).unwrap()
    }

    #[test]
    fn least_recently_active_source_is_forgotten() {
        let rl = one_shard(2);
        assert!(rl.check("a", 0).is_allowed());
        assert!(rl.check("b", 1).is_allowed());
        assert!(!rl.check("a", 2).is_allowed()); // a is now the most recent
        assert!(rl.check("c", 3).is_allowed()); // evicts b
        assert_eq!(rl.tracked_sources(), 2);
        assert!(!rl.check("a", 4).is_allowed(), "a was kept");
        assert!(rl.check("b", 5).is_allowed(), "b starts afresh");
    }

    #[test]
    fn config_is_validated_with_v1_messages() {
        let bad = RateLimitConfig {
            window_ms: 0,
            ..RateLimitConfig::default()
        };
        let e = RateLimiter::new(bad).unwrap_err();
        assert_eq!(
            (e.code(), e.message()),
            (
                "CONFIG_RATELIMIT_INVALID",
                "Invalid rate limit config: windowMs must be positive"
            )
        );
        let bad = RateLimitConfig {
            max_requests: 0,
            ..RateLimitConfig::default()
        };
        assert!(RateLimiter::new(bad).is_err());
    }

    #[test]
    fn shards_split_the_cap_exactly() {
        let cfg = RateLimitConfig {
            max_sources: 10,
            shards: 4,
            ..RateLimitConfig::default()
        };
        let rl = RateLimiter::new(cfg).unwrap();
        for i in 0..1000 {
            rl.check(&i.to_string(), 0);
        }
        assert_eq!(rl.tracked_sources(), 10);
    }

    #[test]
    fn reset_forgets_a_source() {
        let rl = one_shard(4);
        assert!(rl.check("a", 0).is_allowed());
        assert!(rl.reset("a"));
        assert!(!rl.reset("a"));
        assert!(rl.check("a", 1).is_allowed());
    }
}
