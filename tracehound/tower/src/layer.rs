//! [`TracehoundLayer`]: the shared state behind every service it produces, and the mapping
//! of the core's results to answers.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use http::{Extensions, Response, StatusCode};
use tower::Layer;
use tracehound_core::agent::{Agent, InterceptResult};

use crate::body::ResponseBody;
use crate::config::LayerConfig;
use crate::detector::Detector;
use crate::service::TracehoundService;
use crate::stats::{Counter, Counters, LayerStats};

/// The immediate peer of a request (the TCP connection's remote end), put in the request
/// extensions by whoever accepts connections (the reverse proxy does; with axum,
/// `into_make_service_with_connect_info::<SocketAddr>()` provides `ConnectInfo` instead,
/// which the layer also reads). `PeerAddr` wins when both are present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddr(pub SocketAddr);

/// A `tower::Layer` that runs every request through a Tracehound [`Agent`].
///
/// Cloning is cheap (one `Arc`); every clone and every service it produces share the
/// agent, the detector and the counters.
///
/// ```
/// use std::sync::Arc;
/// use tracehound_core::agent::{Agent, AgentConfig};
/// use tracehound_tower::{LayerConfig, TracehoundLayer};
///
/// let agent = Arc::new(Agent::new(AgentConfig::default())?);
/// let layer = TracehoundLayer::new(agent, LayerConfig::default());
/// let app: axum::Router = axum::Router::new()
///     .route("/", axum::routing::get(|| async { "hello" }))
///     .layer(layer.clone());
/// assert_eq!(layer.stats().requests, 0);
/// # Ok::<(), tracehound_core::error::TracehoundError>(())
/// ```
#[derive(Clone)]
pub struct TracehoundLayer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TracehoundLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracehoundLayer")
            .field("config", &self.shared.config)
            .field("detector", &self.shared.detector.is_some())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// What every service of one layer shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) agent: Arc<Agent>,
    pub(crate) config: LayerConfig,
    pub(crate) detector: Option<Arc<dyn Detector>>,
    pub(crate) counters: Arc<Counters>,
}

impl TracehoundLayer {
    /// A layer over `agent` with `config` and no detector (threats then only come from a
    /// trusted WAF header).
    pub fn new(agent: Arc<Agent>, config: LayerConfig) -> Self {
        TracehoundLayer {
            shared: Arc::new(Shared {
                agent,
                config,
                detector: None,
                counters: Arc::new(Counters::default()),
            }),
        }
    }

    /// The same layer judging requests with `detector` as well (a trusted WAF verdict
    /// takes precedence and skips the detector). Counters stay shared with `self`.
    pub fn with_detector(self, detector: Arc<dyn Detector>) -> Self {
        let mut shared = (*self.shared).clone();
        shared.detector = Some(detector);
        TracehoundLayer {
            shared: Arc::new(shared),
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> LayerStats {
        self.shared.counters.snapshot()
    }

    /// The agent (its quarantine holds the evidence of answered threats).
    pub fn agent(&self) -> &Arc<Agent> {
        &self.shared.agent
    }

    /// The configuration in use.
    pub fn config(&self) -> &LayerConfig {
        &self.shared.config
    }
}

impl<S> Layer<S> for TracehoundLayer {
    type Service = TracehoundService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TracehoundService::new(inner, Arc::clone(&self.shared))
    }
}

/// The peer from [`PeerAddr`] or axum's `ConnectInfo<SocketAddr>`.
pub(crate) fn peer_addr(extensions: &Extensions) -> Option<SocketAddr> {
    if let Some(PeerAddr(addr)) = extensions.get::<PeerAddr>() {
        return Some(*addr);
    }
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0);
    }
    None
}

const FORBIDDEN_BODY: &str = "{\"error\":\"Forbidden\"}";
const TOO_MANY_BODY: &str = "{\"error\":\"Too Many Requests\"}";
const TOO_LARGE_BODY: &str = "{\"error\":\"Payload Too Large\"}";

impl Shared {
    pub(crate) fn bump(&self, c: Counter) {
        self.counters.bump(c);
    }

    /// Our own answer for `result`, or `None` when the request goes to the inner service
    /// (clean, and every internal error: fail open).
    pub(crate) fn answer<B>(&self, result: &InterceptResult) -> Option<Response<ResponseBody<B>>> {
        match result {
            InterceptResult::Clean => {
                self.bump(Counter::Passed);
                None
            }
            InterceptResult::Error { .. } => {
                self.bump(Counter::FailOpenInternal);
                self.bump(Counter::Passed);
                None
            }
            InterceptResult::RateLimited { retry_after_ms } => {
                self.bump(Counter::RateLimited);
                let mut response = own(StatusCode::TOO_MANY_REQUESTS, TOO_MANY_BODY);
                let seconds = retry_after_ms.div_ceil(1000);
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(seconds));
                Some(response)
            }
            InterceptResult::PayloadTooLarge { .. } => {
                self.bump(Counter::PayloadTooLarge);
                Some(own(StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE_BODY))
            }
            InterceptResult::Quarantined { .. } => {
                self.bump(Counter::Quarantined);
                Some(own(self.config.quarantine_status, FORBIDDEN_BODY))
            }
            InterceptResult::Ignored { .. } => {
                self.bump(Counter::Duplicates);
                Some(own(self.config.quarantine_status, FORBIDDEN_BODY))
            }
        }
    }
}

fn own<B>(status: StatusCode, body: &'static str) -> Response<ResponseBody<B>> {
    let mut response = Response::new(ResponseBody::full(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
