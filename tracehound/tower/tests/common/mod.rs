//! A real axum server on 127.0.0.1:0 behind the layer, and a real hyper client.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;
use tracehound_core::agent::{Agent, AgentConfig};
use tracehound_core::types::{Severity, ThreatCategory, ThreatSignal};
use tracehound_tower::{
    Detector, DetectorError, DetectorFuture, LayerConfig, RequestView, TracehoundLayer,
};

/// Where `/observe` reports the body length it read, or the error text.
pub type ObservedTx = mpsc::UnboundedSender<Result<usize, String>>;

/// What the handlers saw.
#[derive(Clone, Default)]
pub struct Seen {
    /// Requests that reached a handler.
    pub hits: Arc<AtomicUsize>,
    /// `/observe`: the body length read, or the error text.
    pub observed: Arc<Mutex<Option<ObservedTx>>>,
}

pub struct Server {
    pub addr: SocketAddr,
    pub seen: Seen,
    pub layer: TracehoundLayer,
    pub observed: mpsc::UnboundedReceiver<Result<usize, String>>,
}

impl Server {
    pub fn hits(&self) -> usize {
        self.seen.hits.load(Ordering::SeqCst)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

async fn hello(State(seen): State<Seen>) -> &'static str {
    seen.hits.fetch_add(1, Ordering::SeqCst);
    "hello"
}

async fn echo(State(seen): State<Seen>, body: Bytes) -> Bytes {
    seen.hits.fetch_add(1, Ordering::SeqCst);
    body
}

/// Reads the body frame by frame and reports what happened (including a body error).
async fn observe(State(seen): State<Seen>, body: Body) -> &'static str {
    seen.hits.fetch_add(1, Ordering::SeqCst);
    let mut body = body;
    let mut total = 0usize;
    let outcome = loop {
        match body.frame().await {
            None => break Ok(total),
            Some(Ok(frame)) => total += frame.data_ref().map_or(0, |d| d.len()),
            Some(Err(e)) => break Err(e.to_string()),
        }
    };
    let sender = seen.observed.lock().unwrap().clone();
    if let Some(tx) = sender {
        let _ = tx.send(outcome);
    }
    "observed"
}

/// Serves the routes behind `layer`; `connect_info` decides whether the peer address is
/// provided (axum's `ConnectInfo`).
pub async fn serve(layer: TracehoundLayer, connect_info: bool) -> Server {
    let (tx, rx) = mpsc::unbounded_channel();
    let seen = Seen::default();
    *seen.observed.lock().unwrap() = Some(tx);
    let app = Router::new()
        .route("/", get(hello))
        .route("/echo", post(echo))
        .route("/observe", post(observe))
        .with_state(seen.clone())
        .layer(layer.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    if connect_info {
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
    } else {
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
    }
    Server {
        addr,
        seen,
        layer,
        observed: rx,
    }
}

pub fn agent(max_requests: usize) -> Arc<Agent> {
    let mut config = AgentConfig::default();
    config.rate_limit.max_requests = max_requests;
    Arc::new(Agent::new(config).unwrap())
}

pub fn trusted_config() -> LayerConfig {
    LayerConfig {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        max_body_bytes: 1024,
        detector_timeout_ms: 30,
        ..LayerConfig::default()
    }
}

pub type ClientBody = BoxBody<Bytes, Infallible>;

pub fn client() -> Client<HttpConnector, ClientBody> {
    Client::builder(TokioExecutor::new()).build_http()
}

pub fn full(data: impl Into<Bytes>) -> ClientBody {
    Full::new(data.into()).boxed()
}

pub fn chunked(chunks: Vec<Bytes>) -> ClientBody {
    let stream = futures_util::stream::iter(
        chunks
            .into_iter()
            .map(|c| Ok::<_, Infallible>(Frame::data(c))),
    );
    StreamBody::new(stream).boxed()
}

pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

pub async fn send(
    client: &Client<HttpConnector, ClientBody>,
    req: http::Request<ClientBody>,
) -> Reply {
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body,
    }
}

/// A test body: `len` bytes of a repeating, position-dependent pattern.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i * 7 % 26) as u8).collect()
}

/// Detectors with a fixed behaviour.
pub enum TestDetector {
    Hang,
    PanicInCall,
    PanicInFuture,
    Fail,
    /// Flags `' OR 1=1` in the query or body.
    Tautology,
    /// Records (prefix length, truncated) and passes.
    Record(Arc<Mutex<Vec<(usize, bool)>>>),
}

impl Detector for TestDetector {
    fn inspect<'a>(&'a self, request: &'a RequestView<'a>) -> DetectorFuture<'a> {
        match self {
            TestDetector::Hang => Box::pin(std::future::pending()),
            TestDetector::PanicInCall => panic!("detector panics in inspect"),
            TestDetector::PanicInFuture => Box::pin(async { panic!("detector panics later") }),
            TestDetector::Fail => {
                Box::pin(async { Err(DetectorError::Unavailable("backend down".into())) })
            }
            TestDetector::Tautology => {
                let needle = "' OR 1=1";
                let query = request
                    .uri()
                    .query()
                    .map(|q| q.replace("%27", "'").replace("%20", " ").replace('+', " "))
                    .unwrap_or_default();
                let hit = query.contains(needle)
                    || String::from_utf8_lossy(request.body_prefix()).contains(needle);
                Box::pin(async move {
                    Ok(hit
                        .then(|| ThreatSignal::new(ThreatCategory::Injection, Severity::Critical)))
                })
            }
            TestDetector::Record(log) => {
                log.lock()
                    .unwrap()
                    .push((request.body_prefix().len(), request.body_truncated()));
                Box::pin(async { Ok(None) })
            }
        }
    }
}
