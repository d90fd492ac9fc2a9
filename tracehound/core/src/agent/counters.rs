//! v1's agent counters, striped so that threads do not share a cache line on the clean
//! path. Each thread adds to the stripe its id hashes to; reads sum all stripes.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counter slots inside a stripe.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Slot {
    Total = 0,
    Clean = 1,
    RateLimited = 2,
    ValidationFailures = 3,
    Ignored = 4,
    Quarantined = 5,
    Errors = 6,
    Panics = 7,
}

const SLOTS: usize = 8;
/// Stripes per agent: two threads collide on one with probability 1/64.
const STRIPES: usize = 64;

/// One cache line (or two, on CPUs that prefetch pairs) of counters.
#[repr(align(128))]
#[derive(Default)]
struct Stripe([AtomicU64; SLOTS]);

pub(crate) struct Counters {
    stripes: Box<[Stripe]>,
}

thread_local! {
    /// This thread's stripe index, computed once per thread from its `ThreadId`.
    static STRIPE: usize = {
        let h = std::collections::hash_map::RandomState::new().hash_one(std::thread::current().id());
        (h as usize) % STRIPES
    };
}

impl Counters {
    pub(crate) fn new() -> Self {
        Counters {
            stripes: (0..STRIPES).map(|_| Stripe::default()).collect(),
        }
    }

    /// Adds one to `a` and one to `b` in this thread's stripe.
    #[inline]
    pub(crate) fn bump2(&self, a: Slot, b: Slot) {
        let i = STRIPE.try_with(|s| *s).unwrap_or(0);
        if let Some(stripe) = self.stripes.get(i) {
            stripe.0[a as usize].fetch_add(1, Ordering::Relaxed);
            stripe.0[b as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Adds one to `a` in this thread's stripe.
    #[inline]
    pub(crate) fn bump(&self, a: Slot) {
        let i = STRIPE.try_with(|s| *s).unwrap_or(0);
        if let Some(stripe) = self.stripes.get(i) {
            stripe.0[a as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sum of slot `a` over all stripes.
    pub(crate) fn get(&self, a: Slot) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.0[a as usize].load(Ordering::Relaxed))
            .sum()
    }
}
