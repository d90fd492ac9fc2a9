//! Where an accepted connection is served: on the serving thread with the fewest open
//! connections, which may be another thread than the one that accepted it.
//!
//! Why: every serving thread accepts on the shared listener, and the thread that happens
//! to be awake when a burst of connections arrives accepts all of them. Since a connection
//! stays on the thread that serves it, a client that opens a few long-lived keep-alive
//! connections at once (a load balancer, a benchmark, a connection pool) could end up on
//! one core while the others idled: with wrk `-c8` on two cores, two runs in three put all
//! eight connections on one thread. Routing by open connections spreads them evenly
//! whatever the timing, while accepting stays on every thread. A connection is handed over
//! at most once, when accepted (not per request), and one that stays on the accepting
//! thread is not handed at all.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// A connection on its way to the thread that serves it.
#[derive(Debug)]
pub(crate) struct Handoff {
    /// The accepted socket, detached from the accepting thread's runtime (non-blocking).
    pub(crate) stream: std::net::TcpStream,
    /// The client's address.
    pub(crate) peer: SocketAddr,
    /// Counts the connection against its thread until dropped.
    pub(crate) load: LoadGuard,
}

/// One open connection counted against a serving thread; dropping it uncounts it.
#[derive(Debug)]
pub(crate) struct LoadGuard(Arc<AtomicUsize>);

impl LoadGuard {
    fn new(load: &Arc<AtomicUsize>) -> LoadGuard {
        load.fetch_add(1, Ordering::Relaxed);
        LoadGuard(Arc::clone(load))
    }

    /// Counts a connection against `load` only if it still holds `seen`: a thread that
    /// chose by a count another thread has changed since must choose again.
    fn claim(load: &Arc<AtomicUsize>, seen: usize) -> Option<LoadGuard> {
        load.compare_exchange(seen, seen + 1, Ordering::Relaxed, Ordering::Relaxed)
            .ok()
            .map(|_| LoadGuard(Arc::clone(load)))
    }
}

impl Drop for LoadGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A serving thread as the routers see it: where to send connections, and how many it
/// has open.
#[derive(Debug)]
pub(crate) struct ServingThread {
    handoff: mpsc::UnboundedSender<Handoff>,
    load: Arc<AtomicUsize>,
}

impl ServingThread {
    /// A serving thread's two ends: this one, shared by every thread's [`Router`], and the
    /// receiver for the thread's own serving loop, which ends once every router has been
    /// dropped and every handed connection taken.
    pub(crate) fn new() -> (ServingThread, mpsc::UnboundedReceiver<Handoff>) {
        let (handoff, receiver) = mpsc::unbounded_channel();
        let thread = ServingThread {
            handoff,
            load: Arc::new(AtomicUsize::new(0)),
        };
        (thread, receiver)
    }

    /// The thread's open-connection count, for statistics.
    pub(crate) fn load(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.load)
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

/// Compare-and-swap attempts before a router counts its pick regardless.
const CLAIM_ATTEMPTS: usize = 8;

/// One serving thread's view of all of them: routes the connections it accepts.
#[derive(Debug)]
pub(crate) struct Router {
    threads: Arc<[ServingThread]>,
    me: usize,
    next: usize,
    loads: Vec<usize>,
}

impl Router {
    /// The router of serving thread `me` (an index into `threads`).
    pub(crate) fn new(threads: Arc<[ServingThread]>, me: usize) -> Router {
        Router {
            next: me,
            loads: Vec::with_capacity(threads.len()),
            threads,
            me,
        }
    }

    /// Picks the least-loaded thread and counts a connection against it. Threads accepting
    /// at the same moment each claim by compare-and-swap, so a burst still spreads evenly;
    /// after a few lost races the pick is counted anyway.
    fn claim_least_loaded(&mut self) -> (usize, LoadGuard) {
        for _ in 0..CLAIM_ATTEMPTS {
            self.loads.clear();
            let loads = self.threads.iter().map(|t| t.load.load(Ordering::Relaxed));
            self.loads.extend(loads);
            let index = least_loaded(&self.loads, self.next).unwrap_or(self.me);
            if let Some(load) = LoadGuard::claim(&self.threads[index].load, self.loads[index]) {
                self.next = (index + 1) % self.threads.len();
                return (index, load);
            }
        }
        (self.me, LoadGuard::new(&self.threads[self.me].load))
    }

    /// Routes a connection accepted on this thread: `Some` (the stream and its count) when
    /// this thread is to serve it, `None` when it has been handed to another thread (or,
    /// rarely, could not be detached and was closed).
    pub(crate) fn route(
        &mut self,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> Option<(TcpStream, LoadGuard)> {
        let (index, load) = self.claim_least_loaded();
        if index == self.me {
            return Some((stream, load));
        }
        // Detach from this runtime: the chosen thread registers it with its own.
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(%peer, %error, "cannot hand the connection over; closed");
                return None;
            }
        };
        let handoff = Handoff { stream, peer, load };
        match self.threads[index].handoff.send(handoff) {
            Ok(()) => None,
            Err(mpsc::error::SendError(back)) => {
                // That thread's serving loop has ended (its runtime stopped): serve here.
                tracing::warn!("a serving thread has stopped; serving its connection here");
                match TcpStream::from_std(back.stream) {
                    Ok(stream) => Some((stream, LoadGuard::new(&self.threads[self.me].load))),
                    Err(error) => {
                        tracing::debug!(%peer, %error, "cannot serve the connection; closed");
                        None
                    }
                }
            }
        }
    }
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
    fn a_load_guard_counts_until_dropped() {
        let load = Arc::new(AtomicUsize::new(0));
        let first = LoadGuard::new(&load);
        let second = LoadGuard::new(&load);
        assert_eq!(load.load(Ordering::Relaxed), 2);
        drop(first);
        assert_eq!(load.load(Ordering::Relaxed), 1);
        drop(second);
        assert_eq!(load.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_claim_on_a_count_that_moved_fails() {
        let load = Arc::new(AtomicUsize::new(0));
        let first = LoadGuard::claim(&load, 0).expect("count as seen");
        assert!(
            LoadGuard::claim(&load, 0).is_none(),
            "another thread got there first"
        );
        let second = LoadGuard::claim(&load, 1).expect("seen again");
        assert_eq!(load.load(Ordering::Relaxed), 2);
        drop((first, second));
        assert_eq!(load.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn eight_connections_spread_four_and_four_over_two_threads() {
        let threads: Vec<Arc<AtomicUsize>> =
            (0..2).map(|_| Arc::new(AtomicUsize::new(0))).collect();
        let mut guards = Vec::new();
        let mut next = 0;
        for _ in 0..8 {
            let loads: Vec<usize> = threads.iter().map(|l| l.load(Ordering::Relaxed)).collect();
            let index = least_loaded(&loads, next).expect("two threads");
            next = (index + 1) % threads.len();
            guards.push(LoadGuard::new(&threads[index]));
        }
        assert_eq!(threads[0].load(Ordering::Relaxed), 4);
        assert_eq!(threads[1].load(Ordering::Relaxed), 4);
    }
}
