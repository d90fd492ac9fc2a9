//! Real servers and clients over loopback for the proxy tests: a recording upstream, a
//! detector endpoint with selectable behaviour, and HTTP/1.1 and HTTP/2 clients.
#![allow(dead_code)] // each test binary uses a different subset

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tracehound_proxy::{Proxy, ProxyConfig, RunningProxy};

/// Bound for anything a test waits on; only reached when something is broken (a
/// deadlock), never a performance threshold.
pub const STUCK: Duration = Duration::from_secs(20);

/// What the upstream saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub uri: String,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// An HTTP/1.1 upstream on 127.0.0.1:0 that records every request and echoes its body.
/// On `/stream` it reports each data frame's size on `frames` while the body is still
/// arriving; on `/slow` it reports 0 on `frames` and answers 300 ms later; on `/close`
/// it closes the connection after answering. `accepted` counts connections.
pub struct Upstream {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub frames: tokio::sync::Mutex<mpsc::UnboundedReceiver<usize>>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("upstream addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (frame_tx, frame_rx) = mpsc::unbounded_channel();
        let record = Arc::clone(&seen);
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let record = Arc::clone(&record);
                let frame_tx = frame_tx.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let record = Arc::clone(&record);
                        let frame_tx = frame_tx.clone();
                        async move { Ok::<_, Infallible>(echo(req, record, frame_tx).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream {
            addr,
            accepted,
            seen,
            frames: tokio::sync::Mutex::new(frame_rx),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

async fn echo(
    req: Request<Incoming>,
    record: Arc<Mutex<Vec<Seen>>>,
    frames: mpsc::UnboundedSender<usize>,
) -> Response<Full<Bytes>> {
    let (parts, mut body) = req.into_parts();
    let mut collected = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return status(StatusCode::BAD_REQUEST);
        };
        if let Ok(data) = frame.into_data() {
            if parts.uri.path() == "/stream" {
                let _ = frames.send(data.len());
            }
            collected.extend_from_slice(&data);
        }
    }
    if parts.uri.path() == "/slow" {
        // Tell the test the request is in flight, then take a while to answer.
        let _ = frames.send(0);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let body = Bytes::from(collected);
    record.lock().expect("lock").push(Seen {
        method: parts.method.clone(),
        uri: parts.uri.to_string(),
        version: parts.version,
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    let mut response = Response::new(Full::new(body));
    let headers = response.headers_mut();
    headers.insert("x-upstream", "echo".parse().expect("valid"));
    // A hop-by-hop header named by Connection: the proxy must not pass it back.
    if parts.uri.path() == "/close" {
        headers.insert("connection", "close".parse().expect("valid"));
    } else {
        headers.insert("connection", "x-hop".parse().expect("valid"));
        headers.insert("x-hop", "1".parse().expect("valid"));
    }
    response
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = code;
    r
}

/// How the detector endpoint behaves.
#[derive(Debug, Clone, Copy)]
pub enum DetectorMode {
    /// Never answers (holds the connection open).
    Hang,
    /// Answers 200 with a body that is not JSON.
    Garbage,
    /// Flags every request whose body contains "attack" as injection/high.
    FlagAttacks,
}

/// A detector endpoint on 127.0.0.1:0; `calls` counts the requests it received and
/// `last` keeps the last query (parsed JSON).
pub struct DetectorEndpoint {
    pub url: String,
    pub calls: Arc<AtomicUsize>,
    pub last: Arc<Mutex<Option<serde_json::Value>>>,
}

impl DetectorEndpoint {
    pub async fn start(mode: DetectorMode) -> DetectorEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind detector");
        let addr = listener.local_addr().expect("detector addr");
        let calls = Arc::new(AtomicUsize::new(0));
        let last = Arc::new(Mutex::new(None));
        let (c, l) = (Arc::clone(&calls), Arc::clone(&last));
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (c, l) = (Arc::clone(&c), Arc::clone(&l));
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let (c, l) = (Arc::clone(&c), Arc::clone(&l));
                        async move {
                            c.fetch_add(1, Ordering::SeqCst);
                            let body = req.into_body().collect().await.map(|b| b.to_bytes());
                            let query: Option<serde_json::Value> =
                                body.ok().and_then(|b| serde_json::from_slice(&b).ok());
                            let flag = query
                                .as_ref()
                                .and_then(|q| q["body_base64"].as_str())
                                .map(|b64| b64_contains(b64, b"attack"))
                                .unwrap_or(false);
                            *l.lock().expect("lock") = query;
                            let answer: &'static str = match mode {
                                DetectorMode::Hang => {
                                    tokio::time::sleep(Duration::from_secs(3600)).await;
                                    ""
                                }
                                DetectorMode::Garbage => "<html>not json",
                                DetectorMode::FlagAttacks if flag => {
                                    r#"{"threat": {"category": "injection", "severity": "high"}}"#
                                }
                                DetectorMode::FlagAttacks => r#"{"threat": null}"#,
                            };
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                                answer.as_bytes(),
                            ))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        DetectorEndpoint {
            url: format!("http://{addr}/judge"),
            calls,
            last,
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn b64_contains(b64: &str, needle: &[u8]) -> bool {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
        .unwrap_or(false)
}

/// A request body fed from a channel, so a test controls when each chunk is sent.
pub struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl ChannelBody {
    pub fn new() -> (mpsc::Sender<Bytes>, ChannelBody) {
        let (tx, rx) = mpsc::channel(4);
        (tx, ChannelBody { rx })
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}

/// A request being answered on its own task.
pub type Pending =
    tokio::task::JoinHandle<Result<Response<Incoming>, hyper_util::client::legacy::Error>>;

/// Starts a `POST /stream` to `addr` over `version` whose body the test feeds through the
/// returned sender, chunk by chunk; the body ends when the sender is dropped.
pub fn streaming_post(addr: SocketAddr, version: Version) -> (mpsc::Sender<Bytes>, Pending) {
    let (tx, body) = ChannelBody::new();
    let client = client::<ChannelBody>(version);
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{addr}/stream"))
        .body(body)
        .expect("request");
    (
        tx,
        tokio::spawn(async move { client.request(request).await }),
    )
}

/// An HTTP/1.1 client, or an HTTP/2 client speaking prior knowledge (h2c).
pub fn client<B>(version: Version) -> Client<HttpConnector, B>
where
    B: Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = Client::builder(TokioExecutor::new());
    if version == Version::HTTP_2 {
        builder.http2_only(true);
    }
    builder.build(HttpConnector::new())
}

/// HTTP/1.1 for even `i`, HTTP/2 for odd: for tests that cover both in one loop.
pub fn alternating_version(i: usize) -> Version {
    if i.is_multiple_of(2) {
        Version::HTTP_11
    } else {
        Version::HTTP_2
    }
}

/// Sends `method path` with `body` through a fresh client of `version`; returns status,
/// headers and the whole answer body.
pub async fn send(
    addr: SocketAddr,
    version: Version,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> (StatusCode, HeaderMap, Bytes) {
    let client = client::<Full<Bytes>>(version);
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .version(version);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Full::new(body)).expect("request");
    let response = tokio::time::timeout(STUCK, client.request(req))
        .await
        .expect("proxy answered")
        .expect("request succeeded");
    assert_eq!(
        response.version(),
        version,
        "answered in the request's version"
    );
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("answer body").to_bytes();
    (parts.status, parts.headers, body)
}

/// A proxy in front of `upstream` with `adjust` applied to the default configuration.
pub async fn proxy(upstream: &Upstream, adjust: impl FnOnce(&mut ProxyConfig)) -> RunningProxy {
    let mut config = ProxyConfig::new("127.0.0.1:0".parse().expect("addr"), upstream.url());
    adjust(&mut config);
    Proxy::bind(config).await.expect("proxy starts")
}
