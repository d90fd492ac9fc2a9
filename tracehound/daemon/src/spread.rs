//! Which serving thread serves an accepted Unix-socket connection: the one with the
//! fewest open connections, which may be another thread than the one that accepted it.
//!
//! Why: every serving thread of [`crate::percore`] accepts on the shared listener, and the
//! thread that happens to be awake when a burst of connections arrives accepts all of
//! them. A connection stays on the thread that serves it, so a client opening a few
//! long-lived connections at once (a connection pool, a load generator) could put them
//! all on one core: `tracehoundd --threads 2` with 8 unary clients did so in 3 runs of 3.
//! Routing by open connections spreads them whatever the timing, while accepting stays on
//! every thread. A connection is handed over at most once, when accepted; one that stays
//! on the accepting thread is not handed at all.
//!
//! The reverse proxy routes its TCP connections the same way (`tracehound-proxy`'s
//! `dispatch.rs`); the counting and the choice are `tracehound-spread`'s.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};
use tonic::transport::server::{Connected, UdsConnectInfo};
use tracehound_spread::{Load, LoadGuard, Picker};

/// An accepted connection served by this thread, counted against it until dropped (tonic
/// drops it when the connection ends).
#[derive(Debug)]
pub(crate) struct Counted {
    stream: UnixStream,
    _load: LoadGuard,
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

impl Connected for Counted {
    type ConnectInfo = UdsConnectInfo;

    /// The socket's own (peer address and credentials), as tonic gives for a bare
    /// `UnixStream`.
    fn connect_info(&self) -> UdsConnectInfo {
        self.stream.connect_info()
    }
}

/// A connection on its way to the thread that serves it.
#[derive(Debug)]
pub(crate) struct Handoff {
    /// Detached from the accepting thread's runtime (non-blocking).
    stream: std::os::unix::net::UnixStream,
    load: LoadGuard,
}

/// A serving thread as the others see it: where to hand connections, and its count.
#[derive(Debug)]
struct Peer {
    handoff: mpsc::UnboundedSender<Handoff>,
}

/// What one serving thread routes with and takes handed connections from.
#[derive(Debug)]
pub(crate) struct Routing {
    spreader: Spreader,
    handed: mpsc::UnboundedReceiver<Handoff>,
}

/// Everything for `threads` serving threads: each one's [`Routing`] (in thread order),
/// and each one's open-connection count.
pub(crate) fn threads(threads: usize) -> (Vec<Routing>, Vec<Load>) {
    let loads: Arc<[Load]> = (0..threads).map(|_| Load::default()).collect();
    let (peers, receivers): (Vec<Peer>, Vec<_>) = (0..threads)
        .map(|_| {
            let (handoff, receiver) = mpsc::unbounded_channel();
            (Peer { handoff }, receiver)
        })
        .unzip();
    let peers: Arc<[Peer]> = peers.into();
    let each = receivers
        .into_iter()
        .enumerate()
        .map(|(me, handed)| Routing {
            spreader: Spreader {
                peers: Arc::clone(&peers),
                picker: Picker::new(Arc::clone(&loads), me),
            },
            handed,
        })
        .collect();
    (each, loads.to_vec())
}

/// One serving thread's view of all of them: routes the connections it accepts.
#[derive(Debug)]
pub(crate) struct Spreader {
    peers: Arc<[Peer]>,
    picker: Picker,
}

impl Spreader {
    /// Routes a connection accepted on this thread: `Some` when this thread is to serve
    /// it, `None` when it has been handed to another thread (or, rarely, could not be
    /// detached and was closed).
    fn route(&mut self, stream: UnixStream) -> Option<Counted> {
        let (index, load) = self.picker.pick();
        if index == self.picker.me() {
            return Some(Counted {
                stream,
                _load: load,
            });
        }
        // Detach from this runtime: the chosen thread registers it with its own.
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(%error, "cannot hand a connection over; closed");
                return None;
            }
        };
        match self.peers[index].handoff.send(Handoff { stream, load }) {
            Ok(()) => None,
            Err(mpsc::error::SendError(back)) => {
                // The chosen thread takes no more connections (it has stopped, was cut,
                // or could not start). Served here rather than closed: this thread is
                // still accepting (it has not taken the stop yet), so it can serve the
                // connection and drain it at the stop like any of its own, whereas
                // closing it would fail a client whose connection the daemon accepted.
                tracing::debug!("a serving thread has stopped; serving its connection here");
                self.picker.retire(index);
                drop(back.load);
                register(back.stream, self.picker.count_here())
            }
        }
    }
}

/// Registers a detached connection with this thread's runtime.
fn register(stream: std::os::unix::net::UnixStream, load: LoadGuard) -> Option<Counted> {
    match UnixStream::from_std(stream) {
        Ok(stream) => Some(Counted {
            stream,
            _load: load,
        }),
        Err(error) => {
            tracing::warn!(%error, "cannot serve a handed connection; closed");
            None
        }
    }
}

/// State of one thread's [`incoming`] stream.
struct Incoming {
    /// `Some` until the stop (when there is a listener): accepting and routing.
    accepting: Option<(UnixListener, Spreader)>,
    handed: mpsc::UnboundedReceiver<Handoff>,
    stop: watch::Receiver<bool>,
    stopped: bool,
}

/// One serving thread's connections, for tonic's `serve_with_incoming_shutdown`: those it
/// accepts and keeps and those handed to it, each counted until it closes.
///
/// At the stop (`stop` turns true or its sender is dropped) it stops accepting, closes its
/// hand-off channel, yields what was handed to it before that, and ends. Its end is what
/// starts tonic's graceful drain: give tonic a shutdown signal that never fires, or tonic
/// could stop taking connections before those handed over in time are taken. A thread
/// that hands a connection here after the close gets it back and serves it itself (see
/// [`Spreader::route`]).
///
/// Without a listener (it could not be registered) the thread still serves what others
/// hand over.
pub(crate) fn incoming(
    listener: Option<UnixListener>,
    Routing { spreader, handed }: Routing,
    stop: watch::Receiver<bool>,
) -> impl Stream<Item = io::Result<Counted>> {
    let state = Incoming {
        accepting: listener.map(|listener| (listener, spreader)),
        handed,
        stop,
        stopped: false,
    };
    futures_util::stream::unfold(state, next)
}

async fn next(mut state: Incoming) -> Option<(io::Result<Counted>, Incoming)> {
    loop {
        if state.stopped {
            // What was handed before the close, then the end.
            let handoff = state.handed.recv().await?;
            if let Some(conn) = register(handoff.stream, handoff.load) {
                return Some((Ok(conn), state));
            }
            continue;
        }
        let stop = &mut state.stop;
        tokio::select! {
            accepted = accept(state.accepting.as_ref()) => match accepted {
                Ok(stream) => {
                    let routed = state.accepting.as_mut().and_then(|(_, s)| s.route(stream));
                    if let Some(conn) = routed {
                        return Some((Ok(conn), state));
                    }
                }
                Err(error) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(handoff) = state.handed.recv() => {
                if let Some(conn) = register(handoff.stream, handoff.load) {
                    return Some((Ok(conn), state));
                }
            }
            () = async {
                // A dropped sender (the daemon went away) also means stop.
                let _ = stop.wait_for(|stop| *stop).await;
            } => {
                // Closes this thread's descriptor of the listener, and the channel: from
                // now on a hand-over to this thread fails and goes back to its sender.
                state.accepting = None;
                state.handed.close();
                state.stopped = true;
            }
        }
    }
}

/// Accepts one connection, or never resolves without a listener.
async fn accept(accepting: Option<&(UnixListener, Spreader)>) -> io::Result<UnixStream> {
    match accepting {
        Some((listener, _)) => listener.accept().await.map(|(stream, _)| stream),
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_handed_to_a_stopped_thread_is_served_where_accepted() {
        let (mut each, loads) = threads(2);
        let mut handed_1 = each.pop().expect("thread 1").handed;
        let mut spreader_0 = each.pop().expect("thread 0").spreader;
        let counts = |loads: &[Load]| -> Vec<usize> { loads.iter().map(Load::get).collect() };
        let (first, _peer_1) = UnixStream::pair().expect("socket pair");
        let first = spreader_0.route(first).expect("kept: all counts equal");
        assert_eq!(counts(&loads), vec![1, 0]);
        // Thread 1, the least loaded, has stopped taking connections.
        handed_1.close();
        let (second, _peer_2) = UnixStream::pair().expect("socket pair");
        let second = spreader_0
            .route(second)
            .expect("served by the accepting thread");
        assert_eq!(counts(&loads), vec![2, 0]);
        assert!(handed_1.try_recv().is_err(), "nothing reached thread 1");
        assert!(loads[1].is_retired(), "passed over from now on");
        drop((first, second));
        assert_eq!(counts(&loads), vec![0, 0]);
    }
}
