//! [`TracehoundService`]: the per-request path.
//!
//! Fast path (no detector, no trusted WAF verdict): the intercept runs synchronously in
//! `call` with a `null` payload (the core never reads a clean scent's payload), and the
//! inner future is returned unboxed; the body is not touched. Slow path (a detector is
//! installed or the WAF flagged the request): one boxed future reads the body prefix,
//! asks the detector, intercepts, then forwards or answers.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::FutureExt as _;
use http::request::Parts;
use http::{HeaderMap, HeaderName, Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower::Service;
use tracehound_core::types::ThreatSignal;

use crate::body::{read_prefix, InspectedBody, ResponseBody};
use crate::cidr::canonical;
use crate::config::ForwardedHeader;
use crate::detector::RequestView;
use crate::headers::{client_from_forwarded, client_from_x_forwarded_for, waf_verdict, WafVerdict};
use crate::layer::{peer_addr, Shared};
use crate::scent::{build_scent, source_key};
use crate::stats::Counter;

/// The service a [`TracehoundLayer`](crate::TracehoundLayer) wraps around `S`.
///
/// The inner service receives `Request<InspectedBody<B>>` (the original body, with any
/// prefix the layer read replayed first) and its response body is wrapped in
/// [`ResponseBody`], which also carries the layer's own 403 / 429 / 413 answers.
/// `B` must be `Unpin` (hyper's `Incoming` and axum's `Body` are); `S` must be `Clone`
/// (the slow path takes the ready service into its future).
#[derive(Clone)]
pub struct TracehoundService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> std::fmt::Debug for TracehoundService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracehoundService").finish_non_exhaustive()
    }
}

impl<S> TracehoundService<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        TracehoundService { inner, shared }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

type BoxedResponse<ResBody, E> =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody<ResBody>>, E>> + Send>>;

pin_project! {
    /// The future of [`TracehoundService`]: our own answer, the inner service's future
    /// (fast path), or the boxed slow path.
    pub struct ResponseFuture<F, ResBody, E> {
        #[pin]
        state: State<F, ResBody, E>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, ResBody, E> {
        Answered { response: Option<Response<ResponseBody<ResBody>>> },
        Inner { #[pin] fut: F },
        Slow { fut: BoxedResponse<ResBody, E> },
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F, ResBody, E>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            // Polled again after completion (a caller bug): stay pending rather than panic.
            StateProj::Answered { response } => match response.take() {
                Some(r) => Poll::Ready(Ok(r)),
                None => Poll::Pending,
            },
            StateProj::Inner { fut } => fut
                .poll(cx)
                .map(|r| r.map(|resp| resp.map(ResponseBody::inner))),
            StateProj::Slow { fut } => fut.as_mut().poll(cx),
        }
    }
}

impl<S, B, ResBody> Service<Request<B>> for TracehoundService<S>
where
    S: Service<Request<InspectedBody<B>>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let shared = &*self.shared;
        shared.bump(Counter::Requests);
        let Some(peer) = peer_addr(req.extensions()) else {
            shared.bump(Counter::MissingPeer);
            shared.bump(Counter::FailOpenInternal);
            shared.bump(Counter::Passed);
            return self.forward(req);
        };
        let config = &shared.config;
        let (client, waf) = client_and_waf(shared, peer, req.headers());

        if waf.is_none() && shared.detector.is_none() {
            let scent = build_scent(
                &shared.agent,
                source_key(client, config.ipv6_source_prefix),
                None,
                None,
            );
            let result = shared.agent.intercept(&scent);
            return match shared.answer(&result) {
                Some(response) => ResponseFuture {
                    state: State::Answered {
                        response: Some(response),
                    },
                },
                None => self.forward(req),
            };
        }

        // The slow path owns the service that was polled ready; a clone takes its place.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let fut = slow_path(Arc::clone(&self.shared), inner, req, peer, client, waf);
        ResponseFuture {
            state: State::Slow { fut: Box::pin(fut) },
        }
    }
}

impl<S> TracehoundService<S> {
    fn forward<B, ResBody>(
        &mut self,
        req: Request<B>,
    ) -> ResponseFuture<S::Future, ResBody, S::Error>
    where
        S: Service<Request<InspectedBody<B>>, Response = Response<ResBody>>,
        B: Body,
    {
        ResponseFuture {
            state: State::Inner {
                fut: self.inner.call(req.map(InspectedBody::new)),
            },
        }
    }
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The client address and the WAF's verdict. Both come from headers only when the peer
/// is a trusted proxy; a WAF header from anyone else is counted and ignored.
fn client_and_waf(
    shared: &Shared,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> (IpAddr, Option<ThreatSignal>) {
    let config = &shared.config;
    if !config.is_trusted(peer.ip()) {
        if headers.contains_key(&config.waf_header) {
            shared.bump(Counter::UntrustedWafHeaders);
        }
        return (canonical(peer.ip()), None);
    }
    let trusted = |ip| config.is_trusted(ip);
    let forwarded = match config.forwarded_header {
        ForwardedHeader::XForwardedFor => {
            client_from_x_forwarded_for(headers.get_all(X_FORWARDED_FOR), trusted)
        }
        ForwardedHeader::Forwarded => {
            client_from_forwarded(headers.get_all(http::header::FORWARDED), trusted)
        }
        ForwardedHeader::None => None,
    };
    let client = forwarded.unwrap_or_else(|| canonical(peer.ip()));
    let waf = match waf_verdict(headers.get_all(&config.waf_header)) {
        WafVerdict::Absent => None,
        WafVerdict::Invalid => {
            shared.bump(Counter::InvalidWafHeaders);
            None
        }
        WafVerdict::Threat(signal) => {
            shared.bump(Counter::WafFlagged);
            Some(signal)
        }
    };
    (client, waf)
}

async fn slow_path<S, B, ResBody>(
    shared: Arc<Shared>,
    mut inner: S,
    req: Request<B>,
    peer: SocketAddr,
    client: IpAddr,
    waf: Option<ThreatSignal>,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<InspectedBody<B>>, Response = Response<ResBody>>,
    B: Body<Data = Bytes> + Unpin,
{
    let (parts, body) = req.into_parts();
    let limit = shared.config.max_body_bytes;
    let body = if limit == 0 || body.is_end_stream() {
        InspectedBody::new(body)
    } else {
        let read = read_prefix(body, limit).await;
        if read.failed {
            shared.bump(Counter::BodyReadErrors);
            shared.bump(Counter::FailOpenInternal);
            shared.bump(Counter::Passed);
            return call_inner(&mut inner, parts, read.body).await;
        }
        read.body
    };
    // A refcounted handle: the body keeps its own to replay to the inner service.
    let prefix = body.prefix().cloned().unwrap_or_default();
    let view_bytes = prefix.get(..limit).unwrap_or(&prefix);
    let truncated = view_bytes.len() < prefix.len() || body.rest_pending();

    let threat = match waf {
        Some(signal) => Some(signal),
        None => {
            let view = RequestView::new(
                &parts.method,
                &parts.uri,
                &parts.headers,
                &shared.config.selected_headers,
                client,
                peer,
                view_bytes,
                truncated,
            );
            // `detect` catches the detector's panics itself; this catches ours (a runtime
            // without timers makes the deadline panic), which fail open like the rest.
            match AssertUnwindSafe(detect(&shared, &view))
                .catch_unwind()
                .await
            {
                Ok(signal) => signal,
                Err(_panic) => {
                    shared.bump(Counter::FailOpenInternal);
                    None
                }
            }
        }
    };
    let scent = build_scent(
        &shared.agent,
        source_key(client, shared.config.ipv6_source_prefix),
        threat,
        Some((&parts, &shared.config.selected_headers, &prefix, limit)),
    );
    let result = shared.agent.intercept(&scent);
    drop(scent);
    match shared.answer(&result) {
        Some(response) => Ok(response),
        None => call_inner(&mut inner, parts, body).await,
    }
}

async fn call_inner<S, B, ResBody>(
    inner: &mut S,
    parts: Parts,
    body: InspectedBody<B>,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<InspectedBody<B>>, Response = Response<ResBody>>,
    B: Body,
{
    let response = inner.call(Request::from_parts(parts, body)).await?;
    Ok(response.map(ResponseBody::inner))
}

/// Runs the detector under the deadline, catching panics (in the call and in the
/// future). Every failure lets the request pass unjudged, counted.
async fn detect(shared: &Shared, view: &RequestView<'_>) -> Option<ThreatSignal> {
    let detector = shared.detector.as_ref()?;
    let started = std::panic::catch_unwind(AssertUnwindSafe(|| detector.inspect(view)));
    let outcome = match started {
        Err(_panic) => Ok(Err(())),
        Ok(fut) => tokio::time::timeout(
            shared.config.detector_timeout(),
            AssertUnwindSafe(fut).catch_unwind(),
        )
        .await
        .map(|caught| caught.map_err(|_panic| ())),
    };
    match outcome {
        Err(_elapsed) => {
            shared.bump(Counter::DetectorTimeouts);
            None
        }
        Ok(Err(())) => {
            shared.bump(Counter::DetectorErrors);
            shared.bump(Counter::DetectorPanics);
            None
        }
        Ok(Ok(Err(_error))) => {
            shared.bump(Counter::DetectorErrors);
            None
        }
        Ok(Ok(Ok(signal))) => {
            if signal.is_some() {
                shared.bump(Counter::DetectorFlagged);
            }
            signal
        }
    }
}
