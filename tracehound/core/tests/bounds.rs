//! Memory bounds under volume: one million threats through a 10 MB quarantine, one million
//! distinct sources through a capped rate limiter. Counts, never wall-clock time.

use tracehound_core::evidence::Evidence;
use tracehound_core::quarantine::{InsertOutcome, QuarantineConfig, QuarantineStore};
use tracehound_core::rate_limit::{RateLimitConfig, RateLimiter};
use tracehound_core::types::Severity;

const MILLION: u64 = 1_000_000;
const TEN_MB: usize = 10 * 1024 * 1024;

/// A cheap deterministic generator (no per-op allocation or hashing in the test itself).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

#[test]
fn a_million_threats_never_exceed_ten_megabytes() {
    let cfg = QuarantineConfig {
        max_count: 1_000_000,
        max_bytes: TEN_MB,
    };
    let mut q = QuarantineStore::new(cfg);
    let mut rng = Lcg(7);
    let mut evictions = 0usize;
    let mut self_evictions = 0usize;
    let mut peak = 0usize;
    for i in 0..MILLION {
        let r = rng.next();
        // 1 B .. 2 KB (1 KB on average), with an occasional item larger than the whole budget.
        let size = if i % 100_000 == 99_999 {
            TEN_MB + 1
        } else {
            1 + (r as usize % 2048)
        };
        let severity = Severity::ALL[(r >> 20) as usize % 4];
        // Stored bytes are opaque (as if compressed), so no hashing per item here; the
        // signature is unique per threat.
        let sig = format!("injection:{i:064x}");
        let hash = format!("{i:064x}");
        let ev = Evidence::new(
            vec![0xa5; size],
            sig,
            &hash,
            severity,
            (r % 1000) as f64,
            true,
        )
        .unwrap();
        match q.insert(ev, i as f64) {
            InsertOutcome::Inserted {
                evicted,
                self_evicted,
                ..
            } => {
                evictions += evicted.len();
                self_evictions += usize::from(self_evicted);
            }
            InsertOutcome::Duplicate { .. } => panic!("signatures are unique"),
        }
        assert!(q.bytes() <= TEN_MB, "after insert {i}: {} bytes", q.bytes());
        assert!(q.len() <= cfg.max_count);
        peak = peak.max(q.bytes());
    }
    let st = q.stats();
    assert_eq!(
        st.by_severity.low + st.by_severity.medium + st.by_severity.high + st.by_severity.critical,
        st.count
    );
    // Everything that left was audited, and the budget was actually used.
    assert_eq!(q.audit().len(), evictions);
    assert_eq!(evictions + q.len(), MILLION as usize);
    assert!(self_evictions >= 10, "every oversized item evicts itself");
    assert!(peak > TEN_MB / 2);
}

#[test]
fn a_million_sources_never_exceed_the_cap() {
    let cap = 10_000;
    let cfg = RateLimitConfig {
        max_sources: cap,
        max_requests: 3,
        ..RateLimitConfig::default()
    };
    let rl = RateLimiter::new(cfg).unwrap();
    let mut name = String::with_capacity(16);
    for i in 0..MILLION {
        name.clear();
        // All within one window: nothing expires, so only the cap limits memory.
        use std::fmt::Write;
        let _ = write!(name, "src-{i}");
        assert!(rl.check(&name, 1_000).is_allowed());
        assert!(rl.tracked_sources() <= cap, "after {i}");
    }
    assert_eq!(rl.tracked_sources(), cap);
    assert_eq!(rl.stats(1_000).total_checks, MILLION);
}

#[test]
fn expired_sources_are_cleaned_without_calling_cleanup() {
    // Time moves on: sources expire (window + block) and checks remove them as they go, so
    // far fewer than the cap are tracked.
    let cfg = RateLimitConfig {
        window_ms: 100,
        block_duration_ms: 100,
        max_sources: 1_000_000,
        ..RateLimitConfig::default()
    };
    let rl = RateLimiter::new(cfg).unwrap();
    for i in 0..200_000u64 {
        rl.check(&format!("s{i}"), i);
    }
    // Only sources active in the last ~200 ms (plus a few per shard awaiting removal) remain.
    let tracked = rl.tracked_sources();
    assert!(tracked < 1_000, "{tracked} sources still tracked");
    assert_eq!(rl.cleanup(200_000 + 1_000), tracked);
}

#[test]
fn concurrent_checks_keep_every_source_to_its_limit() {
    use std::sync::atomic::{AtomicU64, Ordering};
    // A window longer than the test: each source may be allowed exactly `max_requests`
    // times in total, however the threads interleave.
    let cfg = RateLimitConfig {
        window_ms: u64::MAX / 4,
        max_requests: 5,
        block_duration_ms: 0,
        max_sources: 1_000,
        shards: 8,
    };
    let rl = RateLimiter::new(cfg).unwrap();
    let allowed = AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (rl, allowed) = (&rl, &allowed);
            s.spawn(move || {
                for i in 0..20_000u64 {
                    if rl
                        .check(&format!("s{}", (i * 7 + t) % 100), 1 + i)
                        .is_allowed()
                    {
                        allowed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(allowed.load(Ordering::Relaxed), 100 * 5);
    let st = rl.stats(0);
    assert_eq!(
        (st.sources, st.total_checks, st.total_rejections),
        (100, 80_000, 80_000 - 500)
    );
}

#[test]
fn concurrent_inserts_respect_bounds_and_keep_the_chain_valid() {
    use tracehound_core::quarantine::Quarantine;
    let cfg = QuarantineConfig {
        max_count: 50,
        max_bytes: 20_000,
    };
    let q = Quarantine::new(cfg);
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let q = &q;
            s.spawn(move || {
                for i in 0..2_000u64 {
                    let n = t * 1_000_000 + i;
                    let ev = Evidence::new(
                        vec![1; 1 + (n % 900) as usize],
                        format!("spam:{n:064x}"),
                        &format!("{n:064x}"),
                        Severity::ALL[(n % 4) as usize],
                        i as f64,
                        true,
                    )
                    .unwrap();
                    q.insert(ev, 0.0);
                    let st = q.stats();
                    assert!(
                        st.count <= cfg.max_count && st.bytes <= cfg.max_bytes,
                        "{st:?}"
                    );
                }
            });
        }
    });
    let st = q.stats();
    assert_eq!(q.with_audit(|c| c.len()) + st.count, 8_000);
    assert_eq!(q.with_audit(|c| c.verify()), Ok(()));
}
