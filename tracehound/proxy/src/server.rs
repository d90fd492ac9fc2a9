//! The serving side: serves HTTP/1.1 or HTTP/2 (prior knowledge) on each connection the
//! accept loop hands to this thread, tags every request with the peer address, and stops
//! gracefully.

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
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tower::ServiceExt;
use tracehound_tower::PeerAddr;

use crate::affinity::UpstreamSlot;
use crate::busy_poll::{Activity, BusyPolling};
use crate::dispatch::Handoff;
use crate::forward::BoxError;

/// Serves `service` on every connection handed to this thread (see [`crate::dispatch`])
/// until the accept loop has stopped and nothing is left to take, then lets open
/// connections finish for up to `grace`. With `busy_poll`, this thread polls its sockets
/// for one window after each request event instead of sleeping ([`crate::busy_poll`]); it
/// must then run on a current-thread runtime.
pub(crate) async fn serve<S, B>(
    mut handed: mpsc::UnboundedReceiver<Handoff>,
    service: S,
    grace: Duration,
    busy_poll: Option<BusyPolling>,
) where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The timer enables hyper's HTTP/1 header read timeout (30 s by default): without it
    // a client could hold a connection open forever by sending headers byte by byte.
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let poller = busy_poll.as_ref().map(BusyPolling::spawn);
    let activity = poller.as_ref().map(|p| Arc::clone(p.activity()));
    while let Some(Handoff { stream, peer, load }) = handed.recv().await {
        let stream = match TcpStream::from_std(stream) {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%peer, %error, "cannot serve a handed connection");
                continue;
            }
        };
        // Request/response sized writes: Nagle would hold back the last segment.
        let _ = stream.set_nodelay(true);
        let conn_service = ConnService {
            inner: service.clone(),
            peer,
            upstream: UpstreamSlot::new(),
            activity: activity.clone(),
        };
        let conn = builder
            .serve_connection(TokioIo::new(stream), conn_service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(error) = conn.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop(load);
        });
    }
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            ?grace,
            "connections still open after the grace period; dropped"
        );
    }
    drop(poller);
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

impl<S, B> hyper::service::Service<Request<Incoming>> for ConnService<S>
where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
    type Response = Response<B>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<B>, BoxError>> + Send>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(PeerAddr(self.peer));
        req.extensions_mut().insert(self.upstream.clone());
        let inner = self.inner.clone();
        let activity = self.activity.clone();
        if let Some(activity) = &activity {
            activity.touch();
        }
        Box::pin(async move {
            let response = inner.oneshot(req).await.map_err(Into::into);
            if let Some(activity) = &activity {
                activity.touch();
            }
            response
        })
    }
}
