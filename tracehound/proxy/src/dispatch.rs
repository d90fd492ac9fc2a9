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
//! thread is not handed at all. The counting and the choice are `tracehound-spread`'s,
//! shared with `tracehoundd`.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::mpsc;
pub(crate) use tracehound_spread::LoadGuard;
use tracehound_spread::{Load, Picker};

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

/// A serving thread as the routers see it: where to send connections, and how many it
/// has open.
#[derive(Debug)]
pub(crate) struct ServingThread {
    handoff: mpsc::UnboundedSender<Handoff>,
    load: Load,
}

impl ServingThread {
    /// A serving thread's two ends: this one, shared by every thread's [`Router`], and the
    /// receiver for the thread's own serving loop, which ends once every router has been
    /// dropped and every handed connection taken.
    pub(crate) fn new() -> (ServingThread, mpsc::UnboundedReceiver<Handoff>) {
        let (handoff, receiver) = mpsc::unbounded_channel();
        let thread = ServingThread {
            handoff,
            load: Load::default(),
        };
        (thread, receiver)
    }

    /// The thread's open-connection count, for statistics.
    pub(crate) fn load(&self) -> Load {
        self.load.clone()
    }
}

/// One serving thread's view of all of them: routes the connections it accepts.
#[derive(Debug)]
pub(crate) struct Router {
    threads: Arc<[ServingThread]>,
    picker: Picker,
}

impl Router {
    /// The router of serving thread `me` (an index into `threads`).
    pub(crate) fn new(threads: Arc<[ServingThread]>, me: usize) -> Router {
        let loads: Arc<[Load]> = threads.iter().map(ServingThread::load).collect();
        Router {
            picker: Picker::new(loads, me),
            threads,
        }
    }

    /// Routes a connection accepted on this thread: `Some` (the stream and its count) when
    /// this thread is to serve it, `None` when it has been handed to another thread (or,
    /// rarely, could not be detached and was closed).
    pub(crate) fn route(
        &mut self,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> Option<(TcpStream, LoadGuard)> {
        let (index, load) = self.picker.pick();
        if index == self.picker.me() {
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
                self.picker.retire(index);
                drop(back.load);
                match TcpStream::from_std(back.stream) {
                    Ok(stream) => Some((stream, self.picker.count_here())),
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

    #[tokio::test]
    async fn a_connection_for_a_stopped_thread_is_served_where_accepted() {
        let (zero, _handed_zero) = ServingThread::new();
        let (one, handed_one) = ServingThread::new();
        let threads: Arc<[ServingThread]> = vec![zero, one].into();
        let mut router = Router::new(Arc::clone(&threads), 0);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let counts = || -> Vec<usize> { threads.iter().map(|t| t.load().get()).collect() };
        let accept = || async {
            let _client = tokio::net::TcpStream::connect(addr).await.expect("connect");
            listener.accept().await.expect("accept")
        };
        let (first, peer) = accept().await;
        let kept = router.route(first, peer).expect("kept: all counts equal");
        assert_eq!(counts(), [1, 0]);
        // Thread 1, the least loaded, has stopped taking connections.
        drop(handed_one);
        let (second, peer) = accept().await;
        let second = router.route(second, peer).expect("served where accepted");
        assert_eq!(counts(), [2, 0]);
        // Thread 1 is passed over from now on, though its count stays the lowest.
        assert!(threads[1].load().is_retired());
        let (third, peer) = accept().await;
        let third = router.route(third, peer).expect("kept");
        assert_eq!(counts(), [3, 0]);
        drop((kept, second, third));
        assert_eq!(counts(), [0, 0]);
    }
}
