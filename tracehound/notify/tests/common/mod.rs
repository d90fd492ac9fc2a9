//! Loopback HTTP receivers for the sink tests: a hyper server on 127.0.0.1:0 that
//! records every request and answers through a handler, and a "hanging" receiver that
//! accepts connections and never answers.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tracehound_core::notify::{threat_detected_payload, Event, EventType};
use tracehound_core::types::{Severity, ThreatCategory};

/// One received request.
#[derive(Debug, Clone)]
pub struct Captured {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Answers a request given everything received so far (the request is the last one).
pub type Handler = Arc<dyn Fn(&[Captured]) -> (u16, String) + Send + Sync>;

/// A recording receiver.
pub struct Receiver {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<Captured>>>,
}

impl Receiver {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn received(&self) -> Vec<Captured> {
        self.requests.lock().clone()
    }

    pub fn on_path(&self, path: &str) -> Vec<Captured> {
        self.received()
            .into_iter()
            .filter(|c| c.path() == path)
            .collect()
    }
}

/// Always 200 with an empty JSON object.
pub fn ok() -> Handler {
    Arc::new(|_| (200, "{}".into()))
}

/// Starts a receiver on the current runtime.
pub async fn receiver(handler: Handler) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let requests: Arc<Mutex<Vec<Captured>>> = Arc::default();
    let log = Arc::clone(&requests);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let log = Arc::clone(&log);
            let handler = Arc::clone(&handler);
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let log = Arc::clone(&log);
                    let handler = Arc::clone(&handler);
                    async move {
                        let method = req.method().to_string();
                        let target = req
                            .uri()
                            .path_and_query()
                            .map(|p| p.to_string())
                            .unwrap_or_default();
                        let headers = req
                            .headers()
                            .iter()
                            .map(|(n, v)| {
                                (
                                    n.to_string(),
                                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                                )
                            })
                            .collect();
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|c| c.to_bytes().to_vec())
                            .unwrap_or_default();
                        let (status, reply) = {
                            let mut all = log.lock();
                            all.push(Captured {
                                method,
                                target,
                                headers,
                                body,
                            });
                            handler(&all)
                        };
                        let resp = hyper::Response::builder()
                            .status(status)
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from(reply)))
                            .expect("response");
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Receiver { addr, requests }
}

/// A receiver that accepts connections, reads nothing and never answers. Returns its
/// address and the number of connections accepted so far.
pub async fn hanging() -> (SocketAddr, Arc<Mutex<usize>>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let accepted: Arc<Mutex<usize>> = Arc::default();
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            *count.lock() += 1;
            held.push(stream);
        }
    });
    (addr, accepted)
}

/// Polls `cond` until it holds; panics with `what` after a generous deadline (a hang
/// guard, not a performance assertion).
pub async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A `threat.detected` event as the core emits it.
pub fn threat(n: u64, source: &str) -> Event {
    Event::new(
        EventType::ThreatDetected,
        1_700_000_000_000 + n,
        threat_detected_payload(
            &format!("scent-{n}"),
            ThreatCategory::Injection,
            Severity::High,
            source,
        ),
        format!("evt-{n}"),
    )
}

/// An `evidence.quarantined` event as the core emits it.
pub fn quarantined(n: u64, signature: &str) -> Event {
    Event::new(
        EventType::EvidenceQuarantined,
        1_700_000_000_000 + n,
        json!({"signature": signature, "size": 1050, "severity": "critical"}),
        format!("evt-{n}"),
    )
}
