//! The [`Detector`] trait: the outside judge that flags requests. Tracehound itself never
//! decides what is malicious.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use tracehound_core::types::ThreatSignal;

/// The future a [`Detector`] returns.
pub type DetectorFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<ThreatSignal>, DetectorError>> + Send + 'a>>;

/// Judges a request. Called once per request (unless a trusted WAF header already flagged
/// it) with the body prefix already read. The layer bounds it by
/// [`detector_timeout_ms`](crate::LayerConfig::detector_timeout_ms) and catches panics;
/// on a timeout, an error or a panic the request passes, counted in
/// [`LayerStats`](crate::LayerStats).
///
/// ```
/// use tracehound_core::types::{Severity, ThreatCategory, ThreatSignal};
/// use tracehound_tower::{Detector, DetectorFuture, RequestView};
///
/// struct Tautology;
/// impl Detector for Tautology {
///     fn inspect<'a>(&'a self, request: &'a RequestView<'a>) -> DetectorFuture<'a> {
///         let hit = request.uri().query().is_some_and(|q| q.contains("1=1"));
///         Box::pin(async move {
///             Ok(hit.then(|| ThreatSignal::new(ThreatCategory::Injection, Severity::High)))
///         })
///     }
/// }
/// ```
pub trait Detector: Send + Sync + 'static {
    /// `Ok(Some(signal))` flags the request, `Ok(None)` lets it pass.
    fn inspect<'a>(&'a self, request: &'a RequestView<'a>) -> DetectorFuture<'a>;
}

/// Why a detector could not judge a request (the request then passes).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DetectorError {
    /// The detector's backend could not be reached or did not answer.
    #[error("detector unavailable: {0}")]
    Unavailable(String),
    /// The backend answered something the detector could not use.
    #[error("detector answer unusable: {0}")]
    InvalidAnswer(String),
    /// Anything else.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

/// A read-only view of the request for a [`Detector`]: method, URI, headers, the client
/// address (after the trusted-proxy rules), the immediate peer, and the body prefix.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    selected: &'a [HeaderName],
    client: IpAddr,
    peer: SocketAddr,
    body_prefix: &'a [u8],
    body_truncated: bool,
}

impl<'a> RequestView<'a> {
    /// A view over borrowed request parts (the layer builds these; public so detectors
    /// can be exercised on their own). `selected` names the headers
    /// [`selected_headers`](RequestView::selected_headers) yields.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        method: &'a Method,
        uri: &'a Uri,
        headers: &'a HeaderMap,
        selected: &'a [HeaderName],
        client: IpAddr,
        peer: SocketAddr,
        body_prefix: &'a [u8],
        body_truncated: bool,
    ) -> Self {
        RequestView {
            method,
            uri,
            headers,
            selected,
            client,
            peer,
            body_prefix,
            body_truncated,
        }
    }

    /// The request method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The request URI (path and query; authority only in absolute-form requests).
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// All request headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The configured [`selected_headers`](crate::LayerConfig::selected_headers) present
    /// on the request, in configuration order (every value of a repeated header).
    pub fn selected_headers(&self) -> impl Iterator<Item = (&'a HeaderName, &'a HeaderValue)> {
        let headers = self.headers;
        self.selected
            .iter()
            .flat_map(move |name| headers.get_all(name).iter().map(move |v| (name, v)))
    }

    /// The client address: the immediate peer, or the rightmost untrusted hop of the
    /// forwarding header when the peer is a trusted proxy.
    pub fn client(&self) -> IpAddr {
        self.client
    }

    /// The immediate peer (the TCP connection's remote end).
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The first bytes of the body: up to
    /// [`max_body_bytes`](crate::LayerConfig::max_body_bytes), or all of it if shorter.
    pub fn body_prefix(&self) -> &'a [u8] {
        self.body_prefix
    }

    /// Whether the body continues past [`body_prefix`](RequestView::body_prefix).
    pub fn body_truncated(&self) -> bool {
        self.body_truncated
    }
}
