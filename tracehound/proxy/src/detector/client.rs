//! The HTTP callout to a detector endpoint, bounded by a deadline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tracehound_core::types::ThreatSignal;

use super::wire::{parse_answer, AnswerError, DetectorQuery, MAX_ANSWER_BYTES};
use crate::error::ConfigError;

/// Why a detector call gave no verdict. The request it was about passes (fail-open).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No complete answer before the deadline.
    #[error("detector gave no answer within {0:?}")]
    Timeout(Duration),
    /// The query could not be encoded (not expected: it is plain strings).
    #[error("detector query could not be encoded: {0}")]
    Encode(#[source] serde_json::Error),
    /// Connecting or exchanging the request failed.
    #[error("detector request failed: {0}")]
    Request(#[source] hyper_util::client::legacy::Error),
    /// The endpoint answered with a non-2xx status.
    #[error("detector answered HTTP {0}")]
    Status(StatusCode),
    /// The answer body could not be read, or was longer than the cap.
    #[error("detector answer unreadable: {0}")]
    Body(String),
    /// The answer was not a verdict.
    #[error(transparent)]
    Answer(#[from] AnswerError),
}

/// Counters of the detector callout. Calls that are neither flagged, failed nor timed
/// out were answered clean or abandoned by the layer's deadline.
#[derive(Debug, Default)]
pub struct DetectorStats {
    calls: AtomicU64,
    flagged: AtomicU64,
    timeouts: AtomicU64,
    errors: AtomicU64,
}

impl DetectorStats {
    /// Calls started.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
    /// Answers that flagged the request.
    pub fn flagged(&self) -> u64 {
        self.flagged.load(Ordering::Relaxed)
    }
    /// Calls that ran past this callout's own deadline. Inside the proxy the layer's
    /// deadline lies just before it, so a slow endpoint is normally cut off (and counted)
    /// by the layer: see `LayerStats::detector_timeouts`.
    pub fn timeouts(&self) -> u64 {
        self.timeouts.load(Ordering::Relaxed)
    }
    /// Calls that failed otherwise (connection, status, malformed answer).
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

/// A detector endpoint reached over HTTP/1.1 with a pooled client.
#[derive(Clone)]
pub struct HttpDetector {
    client: Client<HttpConnector, Full<Bytes>>,
    url: Uri,
    timeout: Duration,
    stats: Arc<DetectorStats>,
}

impl std::fmt::Debug for HttpDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpDetector")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpDetector {
    /// A detector at `url` (plain `http://`) answering within `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<HttpDetector, ConfigError> {
        let bad = |reason: &str| ConfigError::Detector {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            return Err(bad("expected http://host[:port]/path"));
        }
        if timeout.is_zero() {
            return Err(ConfigError::Range {
                field: "detector timeout",
                reason: "must be positive",
            });
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(HttpDetector {
            client,
            url: uri,
            timeout,
            stats: Arc::new(DetectorStats::default()),
        })
    }

    /// The detector's counters.
    pub fn stats(&self) -> &Arc<DetectorStats> {
        &self.stats
    }

    /// The deadline of one call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Asks the endpoint about one request; counts the outcome.
    pub async fn ask(&self, query: &DetectorQuery<'_>) -> Result<Option<ThreatSignal>, CallError> {
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        let outcome = match tokio::time::timeout(self.timeout, self.exchange(query)).await {
            Ok(result) => result,
            Err(_) => Err(CallError::Timeout(self.timeout)),
        };
        match &outcome {
            Ok(Some(_)) => self.stats.flagged.fetch_add(1, Ordering::Relaxed),
            Ok(None) => 0,
            Err(CallError::Timeout(_)) => self.stats.timeouts.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.stats.errors.fetch_add(1, Ordering::Relaxed),
        };
        outcome
    }

    async fn exchange(&self, query: &DetectorQuery<'_>) -> Result<Option<ThreatSignal>, CallError> {
        let body = serde_json::to_vec(query).map_err(CallError::Encode)?;
        let mut request = Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.url.clone();
        request.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let response = self
            .client
            .request(request)
            .await
            .map_err(CallError::Request)?;
        let status = response.status();
        if !status.is_success() {
            return Err(CallError::Status(status));
        }
        let bytes = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| CallError::Body(e.to_string()))?
            .to_bytes();
        Ok(parse_answer(&bytes)?)
    }
}
