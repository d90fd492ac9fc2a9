//! The innermost service: sends a request to the upstream over HTTP/1.1 and streams the
//! answer back. Requests from a downstream HTTP/1.1 connection use that connection's own
//! upstream connection ([`UpstreamSlot`]); HTTP/2 requests (and requests without a slot)
//! go through a shared pool. An upstream that cannot be reached or answers garbage
//! yields `502 Bad Gateway` (the upstream's failure); this service itself never fails.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode, Version};
use http_body::Body;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tracehound_tower::PeerAddr;

use crate::affinity::UpstreamSlot;
use crate::headers::{append_forwarded, client_host, strip_hop_by_hop};
use crate::upstream::Upstream;

/// Boxed error of a streamed body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The request body as the client sends it to the upstream.
pub(crate) type UpstreamBody = UnsyncBoxBody<Bytes, BoxError>;

/// What the proxy answers: the upstream's streamed body, or a short body of its own.
pub type ProxyBody = Either<Incoming, Full<Bytes>>;

/// Counters of the forwarder, readable while the proxy runs.
#[derive(Debug, Default)]
pub struct ForwardStats {
    forwarded: AtomicU64,
    bad_gateway: AtomicU64,
}

impl ForwardStats {
    /// Requests whose upstream answer (any status) was passed back.
    pub fn forwarded(&self) -> u64 {
        self.forwarded.load(Ordering::Relaxed)
    }

    /// Requests answered 502 because the upstream failed.
    pub fn bad_gateway(&self) -> u64 {
        self.bad_gateway.load(Ordering::Relaxed)
    }
}

/// Forwards requests to one upstream. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct Forwarder {
    client: Client<HttpConnector, UpstreamBody>,
    upstream: Arc<Upstream>,
    connect_timeout: Duration,
    stats: Arc<ForwardStats>,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}

impl Forwarder {
    /// A forwarder with its own connection pool to `upstream`.
    pub fn new(upstream: Upstream, connect_timeout: Duration) -> Forwarder {
        let mut connector = HttpConnector::new();
        // Small request/response exchanges: Nagle would add up to 40 ms per round trip.
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(connect_timeout));
        connector.enforce_http(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_timer(TokioTimer::new())
            .build(connector);
        Forwarder {
            client,
            upstream: Arc::new(upstream),
            connect_timeout,
            stats: Arc::new(ForwardStats::default()),
        }
    }

    /// The forwarder's counters.
    pub fn stats(&self) -> &Arc<ForwardStats> {
        &self.stats
    }

    /// Rewrites `req` for the upstream and sends it.
    async fn forward<B>(self, req: Request<B>) -> Response<ProxyBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let (mut parts, body) = req.into_parts();
        // HTTP/2 multiplexes many requests on one client connection: those share the pool.
        let slot = match parts.version {
            Version::HTTP_2 => None,
            _ => parts.extensions.remove::<UpstreamSlot>(),
        };
        let uri = match &slot {
            Some(_) => self.upstream.origin_target(&parts.uri),
            None => self.upstream.target(&parts.uri),
        };
        let uri = match uri {
            Ok(uri) => uri,
            // The client's target did not fit a URI once joined to the base path.
            Err(_) => return plain(StatusCode::BAD_REQUEST, "bad request target\n"),
        };
        let host = client_host(&parts.headers, &parts.uri);
        let peer = parts.extensions.get::<PeerAddr>().map(|c| c.0);

        strip_hop_by_hop(&mut parts.headers);
        if let Some(peer) = peer {
            append_forwarded(&mut parts.headers, peer, host.as_ref());
        }
        match host {
            // HTTP/2 clients carry the host in `:authority`; HTTP/1.1 needs the header.
            Some(host) => {
                parts.headers.insert(header::HOST, host);
            }
            // A client without any host (HTTP/1.0): name the upstream, as the pool does.
            None if slot.is_some() => {
                if let Ok(host) = http::HeaderValue::from_str(self.upstream.authority().as_str()) {
                    parts.headers.insert(header::HOST, host);
                }
            }
            None => {}
        }
        parts.uri = uri;
        parts.version = Version::HTTP_11;

        let body = UnsyncBoxBody::new(body.map_err(Into::into));
        let outgoing = Request::from_parts(parts, body);
        let answer = match slot {
            Some(slot) => slot
                .send(self.upstream.connect_addr(), self.connect_timeout, outgoing)
                .await
                .map_err(BoxError::from),
            None => self.client.request(outgoing).await.map_err(BoxError::from),
        };
        match answer {
            Ok(response) => {
                self.stats.forwarded.fetch_add(1, Ordering::Relaxed);
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, Either::Left(body))
            }
            Err(error) => {
                self.stats.bad_gateway.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(upstream = %self.upstream.authority(), %error, "upstream failed");
                plain(StatusCode::BAD_GATEWAY, "upstream unavailable\n")
            }
        }
    }
}

/// A short `text/plain` answer produced by the proxy itself.
pub fn plain(status: StatusCode, text: &'static str) -> Response<ProxyBody> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::from_static(
        text.as_bytes(),
    ))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

impl<B> tower::Service<Request<B>> for Forwarder
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The pool queues requests itself; there is no back-pressure to signal here.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.forward(req).await) })
    }
}
