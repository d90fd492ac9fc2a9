//! Injected time source (ms since the Unix epoch), so intercepts are reproducible in tests
//! and vectors.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of "now" in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync {
    /// The current time in ms.
    fn now_ms(&self) -> u64;
}

/// The system wall clock (v1's `Date.now()`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now_ms(&self) -> u64 {
        // A clock set before 1970 reads as 0 rather than failing.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// A clock that moves only when told to (tests, vectors, deterministic demos).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock reading `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        ManualClock(AtomicU64::new(start_ms))
    }

    /// Sets the time.
    pub fn set(&self, now_ms: u64) {
        self.0.store(now_ms, Ordering::Relaxed);
    }

    /// Moves the time forward by `ms` (saturating).
    pub fn advance(&self, ms: u64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_add(ms))
            });
    }
}

impl Clock for ManualClock {
    #[inline]
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A wall clock (ms since the Unix epoch) read from the CPU's time-stamp counter.
///
/// [`SystemClock`] costs a `clock_gettime` per read (≈ 25–35 ns here, a quarter of a clean
/// intercept); this clock reads the TSC through `quanta` (≈ 10 ns) and adds an offset to
/// the Unix epoch taken from the system clock. The offset is re-taken from the system
/// clock at most once a second (by whichever caller notices first), so readings follow
/// the wall clock — NTP slew and steps included — to within about a second of TSC drift,
/// like v1's `Date.now()`; and, like `Date.now()`, a step of the wall clock backwards shows
/// up as time going backwards (the rate limiter tolerates that). On CPUs without an
/// invariant TSC `quanta` falls back to the monotonic clock, which is still correct.
#[derive(Debug)]
pub struct TscClock {
    clock: quanta::Clock,
    /// Raw counter value at construction; elapsed time is measured from here.
    base_raw: u64,
    /// Unix ms at `base_raw` (wall reading minus elapsed ms at the last sync).
    epoch_ms_at_base: AtomicU64,
    /// Raw counter value after which the next caller re-syncs.
    next_sync_raw: AtomicU64,
    /// One second in raw counter units (at least 1).
    sync_every_raw: u64,
}

impl TscClock {
    /// Calibrates the counter (once per process, ≈ 10 ms, inside `quanta`) and anchors it
    /// to the system clock.
    pub fn new() -> TscClock {
        let clock = quanta::Clock::new();
        let base_raw = clock.raw();
        // Raw ticks per second, from the calibrated scale of 2^20 ticks.
        let ns_per_2_20 = clock.delta_as_nanos(0, 1 << 20);
        let sync_every_raw =
            u64::try_from((1u128 << 20) * 1_000_000_000 / u128::from(ns_per_2_20.max(1)))
                .unwrap_or(u64::MAX)
                .max(1);
        let c = TscClock {
            clock,
            base_raw,
            epoch_ms_at_base: AtomicU64::new(SystemClock.now_ms()),
            next_sync_raw: AtomicU64::new(base_raw.saturating_add(sync_every_raw)),
            sync_every_raw,
        };
        c.sync(base_raw);
        c
    }

    fn elapsed_ms(&self, raw: u64) -> u64 {
        self.clock.delta_as_nanos(self.base_raw, raw) / 1_000_000
    }

    #[cold]
    fn sync(&self, raw: u64) {
        let wall = SystemClock.now_ms();
        let anchor = wall.saturating_sub(self.elapsed_ms(raw));
        self.epoch_ms_at_base.store(anchor, Ordering::Relaxed);
        self.next_sync_raw
            .store(raw.saturating_add(self.sync_every_raw), Ordering::Relaxed);
    }
}

impl Default for TscClock {
    fn default() -> Self {
        TscClock::new()
    }
}

impl Clock for TscClock {
    #[inline]
    fn now_ms(&self) -> u64 {
        let raw = self.clock.raw();
        if raw >= self.next_sync_raw.load(Ordering::Relaxed) {
            self.sync(raw);
        }
        self.epoch_ms_at_base
            .load(Ordering::Relaxed)
            .saturating_add(self.elapsed_ms(raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsc_clock_agrees_with_the_system_clock() {
        let tsc = TscClock::new();
        for _ in 0..5 {
            let before = SystemClock.now_ms();
            let t = tsc.now_ms();
            let after = SystemClock.now_ms();
            // Anchored to the system clock: within a couple of ms of it (rounding of the
            // anchor and of the elapsed time, each below 1 ms).
            assert!(t + 2 >= before && t <= after + 2, "{before} {t} {after}");
            std::thread::sleep(std::time::Duration::from_millis(3));
        }
    }

    #[test]
    fn tsc_clock_advances() {
        let tsc = TscClock::new();
        let a = tsc.now_ms();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = tsc.now_ms();
        assert!(b >= a + 15, "{a} {b}");
    }
}
