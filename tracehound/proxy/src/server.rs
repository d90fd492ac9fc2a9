//! A serving thread's loop: accepts on the shared listener, serves HTTP/1.1 or HTTP/2
//! (prior knowledge) on the connections routed to this thread, tags every request with the
//! peer address, and stops gracefully.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;
use tracehound_tower::PeerAddr;

use crate::affinity::UpstreamSlot;
use crate::busy_poll::{Activity, BusyPolling};
use crate::dispatch::{Handoff, LoadGuard, Router};
use crate::forward::BoxError;

/// The service stack a serving thread runs (the Tracehound layer around the forwarder),
/// with everything the serving loop, its connections and hyper need of it, said once.
pub(crate) trait Stack:
    tower::Service<
        Request<Incoming>,
        Response = Response<Self::Body>,
        Future: Send + 'static,
        Error: Into<BoxError>,
    > + Clone
    + Send
    + 'static
{
    /// The answers' body type.
    type Body: Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static;
}

impl<S, B> Stack for S
where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Body = B;
}

/// What one serving thread needs: the shared listener, its router and its hand-off
/// receiver (see [`crate::dispatch`]), the service stack and the stop signal.
pub(crate) struct ServingLoop<S> {
    /// A clone of the shared listener (non-blocking); registered with this thread's
    /// runtime when the loop starts.
    pub(crate) listener: std::net::TcpListener,
    pub(crate) router: Router,
    pub(crate) handed: mpsc::UnboundedReceiver<Handoff>,
    pub(crate) service: S,
    pub(crate) stop: watch::Receiver<bool>,
    /// How long open connections may finish after the stop.
    pub(crate) grace: Duration,
    /// With it, this thread polls its sockets for one window after each request event
    /// instead of sleeping ([`crate::busy_poll`]); it must then be a current-thread
    /// runtime.
    pub(crate) busy_poll: Option<BusyPolling>,
}

impl<S: Stack> ServingLoop<S> {
    /// Accepts on the listener and serves, on this thread, the connections its router
    /// keeps here and those other threads hand over, until `stop` turns true; then takes
    /// what is still being handed over, lets open connections finish for up to `grace`
    /// and closes the rest.
    pub(crate) async fn run(self) {
        let ServingLoop {
            listener,
            mut router,
            mut handed,
            service,
            mut stop,
            grace,
            busy_poll,
        } = self;
        let listener = match TcpListener::from_std(listener) {
            Ok(listener) => Some(listener),
            Err(error) => {
                // Still serve what other threads hand over.
                tracing::warn!(%error, "a serving thread cannot listen");
                None
            }
        };
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // The timer enables hyper's HTTP/1 header read timeout (30 s by default): without
        // it a client could hold a connection open forever by sending headers byte by byte.
        builder.http1().timer(TokioTimer::new());
        builder.http2().timer(TokioTimer::new());
        let poller = busy_poll.as_ref().map(BusyPolling::spawn);
        let mut conns = Connections {
            builder,
            graceful: GracefulShutdown::new(),
            tasks: JoinSet::new(),
            service,
            activity: poller.as_ref().map(|p| Arc::clone(p.activity())),
        };
        loop {
            tokio::select! {
                accepted = accept(listener.as_ref()) => match accepted {
                    Ok((stream, peer)) => {
                        if let Some((stream, load)) = router.route(stream, peer) {
                            conns.serve(stream, peer, load);
                        }
                    }
                    Err(error) => {
                        // Out of file descriptors and similar: back off instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(handoff) = handed.recv() => conns.serve_handed(handoff),
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        break;
                    }
                }
            }
        }
        drop(listener);
        // Every thread drops its router at the stop: the channel closes once all have, and
        // what they handed over until then is served here. One deadline for that and for
        // the open connections, so a thread that never stops cannot hold this one.
        drop(router);
        let deadline = tokio::time::Instant::now() + grace;
        let taken = tokio::time::timeout_at(deadline, async {
            while let Some(handoff) = handed.recv().await {
                conns.serve_handed(handoff);
            }
        })
        .await;
        if taken.is_err() {
            tracing::warn!("a serving thread did not stop within the grace period");
        }
        let Connections {
            graceful,
            mut tasks,
            ..
        } = conns;
        if tokio::time::timeout_at(deadline, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                ?grace,
                "connections still open after the grace period; closed"
            );
        }
        // Closes what outlived the grace period, and waits until it is closed: this runtime
        // may be the caller's, which would otherwise keep serving them after `shutdown`
        // returned.
        tasks.shutdown().await;
        drop(poller);
    }
}

/// Accepts one connection, or never resolves without a listener.
async fn accept(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// One thread's connections: how they are served and watched for the graceful stop.
struct Connections<S> {
    builder: auto::Builder<TokioExecutor>,
    graceful: GracefulShutdown,
    /// The connections' tasks; dropping the set aborts those still running.
    tasks: JoinSet<()>,
    service: S,
    activity: Option<Arc<Activity>>,
}

impl<S: Stack> Connections<S> {
    /// Registers a connection handed over by another thread and serves it.
    fn serve_handed(&mut self, Handoff { stream, peer, load }: Handoff) {
        match TcpStream::from_std(stream) {
            Ok(stream) => self.serve(stream, peer, load),
            Err(error) => tracing::warn!(%peer, %error, "cannot serve a handed connection"),
        }
    }

    /// Serves one connection on a task of this thread; `load` counts it until it ends.
    fn serve(&mut self, stream: TcpStream, peer: SocketAddr, load: LoadGuard) {
        // Request/response sized writes: Nagle would hold back the last segment.
        let _ = stream.set_nodelay(true);
        let conn_service = ConnService {
            inner: self.service.clone(),
            peer,
            upstream: UpstreamSlot::new(),
            activity: self.activity.clone(),
        };
        let conn = self
            .builder
            .serve_connection(TokioIo::new(stream), conn_service)
            .into_owned();
        let conn = self.graceful.watch(conn);
        // Forget the connections that have ended (the set keeps their outcomes until
        // then).
        while let Some(ended) = self.tasks.try_join_next() {
            if let Err(error) = ended {
                tracing::warn!(%error, "a connection's task failed");
            }
        }
        self.tasks.spawn(async move {
            if let Err(error) = conn.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop(load);
        });
    }
}

/// The per-connection hyper service: adds the peer address and the connection's
/// upstream slot, then calls the shared stack.
#[derive(Clone)]
struct ConnService<S> {
    inner: S,
    peer: SocketAddr,
    upstream: UpstreamSlot,
    /// This thread's activity clock when busy polling is on.
    activity: Option<Arc<Activity>>,
}

impl<S: Stack> hyper::service::Service<Request<Incoming>> for ConnService<S> {
    type Response = Response<S::Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<S::Body>, BoxError>> + Send>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(PeerAddr(self.peer));
        req.extensions_mut().insert(self.upstream.clone());
        let inner = self.inner.clone();
        // Busy polling's two request events: now, and when the answer's head is ready
        // (or the request is abandoned), when the guard drops.
        let in_flight = self.activity.as_ref().map(Activity::begin);
        Box::pin(async move {
            let response = inner.oneshot(req).await.map_err(Into::into);
            drop(in_flight);
            response
        })
    }
}
