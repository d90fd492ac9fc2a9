//! The accepting side: one accept loop hands every connection to the serving thread with
//! the fewest open connections.
//!
//! Why not let every serving thread accept on the shared listener: the thread that happens
//! to be awake when a burst of connections arrives accepts all of them, and since a
//! connection stays on the thread that serves it, a client that opens a few long-lived
//! keep-alive connections at once (a load balancer, a benchmark, a connection pool) can end
//! up on one core while the others idle. Measured with wrk `-c8` on two cores: all eight
//! connections on one thread, half the throughput. Choosing by open connections spreads
//! them evenly whatever the timing; the price is one hand-off per connection (not per
//! request).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

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
}

impl Drop for LoadGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A serving thread as the accept loop sees it: where to send connections, and how many
/// it has open.
#[derive(Debug)]
pub(crate) struct ServingThread {
    handoff: mpsc::UnboundedSender<Handoff>,
    load: Arc<AtomicUsize>,
}

impl ServingThread {
    /// A serving thread's two ends: this one for the accept loop, the receiver for the
    /// thread's own serving loop. The serving loop ends once the accept loop has dropped
    /// this end and every handed connection has been taken.
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

/// Accepts connections on `listener` until `stop` turns true, handing each to the serving
/// thread with the fewest open connections. Dropping `threads` on return ends their
/// serving loops once they have taken what was handed to them.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    mut threads: Vec<ServingThread>,
    mut stop: watch::Receiver<bool>,
) {
    let mut next = 0;
    let mut loads = Vec::with_capacity(threads.len());
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Detach from this runtime: the chosen thread registers it with its own.
                    let stream = match stream.into_std() {
                        Ok(stream) => stream,
                        Err(error) => {
                            tracing::debug!(%peer, %error, "cannot hand the connection over");
                            continue;
                        }
                    };
                    loads.clear();
                    loads.extend(threads.iter().map(|t| t.load.load(Ordering::Relaxed)));
                    let Some(index) = least_loaded(&loads, next) else {
                        return; // no serving thread: nothing can serve the connection
                    };
                    next = (index + 1) % threads.len();
                    let handoff = Handoff {
                        stream,
                        peer,
                        load: LoadGuard::new(&threads[index].load),
                    };
                    if threads[index].handoff.send(handoff).is_err() {
                        // That thread's serving loop is gone (its runtime ended): stop
                        // choosing it; the connection is dropped (closed).
                        tracing::warn!("a serving thread has stopped; serving on without it");
                        threads.swap_remove(index);
                        next = 0;
                    }
                }
                Err(error) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
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
