//! Which of several serving threads takes an accepted connection: the one with the fewest
//! open connections.
//!
//! Tracehound's reverse proxy and `tracehoundd` serve from one single-threaded runtime per
//! core, every one accepting on a shared listener. The thread that happens to be awake
//! when a burst of connections arrives accepts all of them, and a connection stays where
//! it is served, so without routing a few long-lived connections (a pool, a load balancer,
//! a benchmark) could all end up on one core. Each serving thread keeps an open-connection
//! count ([`Load`]); the accepting thread's [`Picker`] chooses the least loaded and counts
//! the connection there ([`LoadGuard`]) before handing the socket over. Handing over (the
//! channel, the socket type) is each server's own business.
//!
//! ```
//! use tracehound_spread::{Load, Picker};
//! let loads: Vec<Load> = (0..2).map(|_| Load::default()).collect();
//! let mut picker = Picker::new(loads.clone().into(), 0);
//! let guards: Vec<_> = (0..4).map(|_| picker.pick()).collect();
//! assert_eq!(loads.iter().map(Load::get).collect::<Vec<_>>(), [2, 2]);
//! drop(guards);
//! assert_eq!(loads[0].get(), 0);
//! ```

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// One serving thread's open-connection count, shared by every thread's [`Picker`].
/// Cloning shares the count.
#[derive(Debug, Clone, Default)]
pub struct Load(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    open: AtomicUsize,
    /// The thread takes no more connections (it stopped, or never started).
    retired: AtomicBool,
}

impl Load {
    /// The connections counted now.
    pub fn get(&self) -> usize {
        self.0.open.load(Ordering::Relaxed)
    }

    /// Counts one connection until the guard is dropped.
    pub fn count(&self) -> LoadGuard {
        self.0.open.fetch_add(1, Ordering::Relaxed);
        LoadGuard(self.clone())
    }

    /// Marks the thread as taking no more connections: pickers pass it over from now on.
    /// Without this a thread that stopped (or never started) would keep the lowest count
    /// and be picked for every connection, each then bounced back to its acceptor.
    pub fn retire(&self) {
        self.0.retired.store(true, Ordering::Relaxed);
    }

    /// True once [`Load::retire`] was called.
    pub fn is_retired(&self) -> bool {
        self.0.retired.load(Ordering::Relaxed)
    }

    /// The count as a picker sees it: a retired thread counts as full.
    fn seen(&self) -> usize {
        if self.is_retired() {
            usize::MAX
        } else {
            self.get()
        }
    }

    /// Counts a connection only if the count still is `seen`: a thread that chose by a
    /// count another thread has changed since must choose again.
    fn claim(&self, seen: usize) -> Option<LoadGuard> {
        self.0
            .open
            .compare_exchange(seen, seen + 1, Ordering::Relaxed, Ordering::Relaxed)
            .ok()
            .map(|_| LoadGuard(self.clone()))
    }
}

/// One open connection counted against a serving thread; dropping it uncounts it.
#[derive(Debug)]
pub struct LoadGuard(Load);

impl Drop for LoadGuard {
    fn drop(&mut self) {
        (self.0).0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Compare-and-swap attempts before a picker counts its choice regardless.
const CLAIM_ATTEMPTS: usize = 8;

/// One serving thread's view of every thread's [`Load`]: picks where its accepted
/// connections go.
#[derive(Debug)]
pub struct Picker {
    loads: Arc<[Load]>,
    me: usize,
    /// Where the next scan starts, so that ties go round-robin.
    next: usize,
    /// Scratch space for one reading of the counts.
    seen: Vec<usize>,
}

impl Picker {
    /// The picker of thread `me` (an index into `loads`, which must not be empty).
    pub fn new(loads: Arc<[Load]>, me: usize) -> Picker {
        Picker {
            next: me,
            seen: Vec::with_capacity(loads.len()),
            loads,
            me,
        }
    }

    /// This picker's own thread.
    pub fn me(&self) -> usize {
        self.me
    }

    /// Picks the least-loaded thread that is not retired (this one if all are) and counts
    /// a connection against it. Threads picking at the same moment each claim by
    /// compare-and-swap, so a burst still spreads evenly; after a few lost races the pick
    /// is counted anyway.
    pub fn pick(&mut self) -> (usize, LoadGuard) {
        for _ in 0..CLAIM_ATTEMPTS {
            self.seen.clear();
            self.seen.extend(self.loads.iter().map(Load::seen));
            let index = least_loaded(&self.seen, self.next)
                .filter(|&i| self.seen[i] != usize::MAX)
                .unwrap_or(self.me);
            if index == self.me && self.seen[index] == usize::MAX {
                break; // every thread retired, this one included: count it here
            }
            if let Some(guard) = self.loads[index].claim(self.seen[index]) {
                self.next = (index + 1) % self.loads.len();
                return (index, guard);
            }
        }
        (self.me, self.loads[self.me].count())
    }

    /// Counts a connection against this picker's own thread (one it serves after all).
    pub fn count_here(&self) -> LoadGuard {
        self.loads[self.me].count()
    }

    /// Retires thread `index` (see [`Load::retire`]): its hand-over channel is closed.
    pub fn retire(&self, index: usize) {
        self.loads[index].retire();
    }
}

/// Index of the least-loaded entry of `loads`, scanning from `start` so that ties go
/// round-robin. `None` when `loads` is empty.
fn least_loaded(loads: &[usize], start: usize) -> Option<usize> {
    let n = loads.len();
    (0..n)
        .map(|offset| (start + offset) % n)
        .min_by_key(|&i| loads[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_loaded_thread_is_chosen_and_ties_go_round_robin() {
        assert_eq!(least_loaded(&[], 0), None);
        assert_eq!(least_loaded(&[3, 1, 2], 0), Some(1));
        assert_eq!(least_loaded(&[3, 1, 2], 2), Some(1));
        // Equal loads: the scan's start wins, so successive picks rotate.
        assert_eq!(least_loaded(&[0, 0, 0], 0), Some(0));
        assert_eq!(least_loaded(&[0, 0, 0], 1), Some(1));
        assert_eq!(least_loaded(&[0, 0, 0], 2), Some(2));
        assert_eq!(least_loaded(&[1, 0, 0], 0), Some(1));
    }

    #[test]
    fn a_guard_counts_until_dropped() {
        let load = Load::default();
        let first = load.count();
        let second = load.count();
        assert_eq!(load.get(), 2);
        drop(first);
        assert_eq!(load.get(), 1);
        drop(second);
        assert_eq!(load.get(), 0);
    }

    #[test]
    fn a_claim_on_a_count_that_moved_fails() {
        let load = Load::default();
        let first = load.claim(0).expect("count as seen");
        assert!(load.claim(0).is_none(), "another thread got there first");
        let second = load.claim(1).expect("seen again");
        assert_eq!(load.get(), 2);
        drop((first, second));
        assert_eq!(load.get(), 0);
    }

    #[test]
    fn pickers_of_two_threads_spread_eight_connections_four_and_four() {
        let loads: Arc<[Load]> = (0..2).map(|_| Load::default()).collect();
        let mut pickers = [Picker::new(loads.clone(), 0), Picker::new(loads.clone(), 1)];
        // Thread 0 accepts five, thread 1 three: the counts still come out even.
        let mut guards = Vec::new();
        for accepting in [0, 0, 0, 1, 0, 1, 1, 0] {
            guards.push(pickers[accepting].pick());
        }
        assert_eq!(loads.iter().map(Load::get).collect::<Vec<_>>(), [4, 4]);
        assert_eq!(pickers[1].me(), 1);
        let here = pickers[1].count_here();
        assert_eq!(loads[1].get(), 5);
        drop((guards, here));
        assert_eq!(loads.iter().map(Load::get).collect::<Vec<_>>(), [0, 0]);
    }

    #[test]
    fn a_retired_thread_is_passed_over() {
        let loads: Arc<[Load]> = (0..3).map(|_| Load::default()).collect();
        let mut picker = Picker::new(loads.clone(), 0);
        picker.retire(1);
        assert!(loads[1].is_retired() && !loads[0].is_retired());
        let guards: Vec<_> = (0..4).map(|_| picker.pick()).collect();
        assert_eq!(loads.iter().map(Load::get).collect::<Vec<_>>(), [2, 0, 2]);
        assert!(guards.iter().all(|(index, _)| *index != 1));
        // All retired, this one included: counted here.
        picker.retire(0);
        picker.retire(2);
        let (index, _guard) = picker.pick();
        assert_eq!((index, loads[0].get()), (0, 3));
    }
}
