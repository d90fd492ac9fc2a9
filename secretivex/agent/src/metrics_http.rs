//! The opt-in metrics listener: an HTTP/1.1 server (hyper) answering `GET /metrics` (and
//! `GET /`) with the Prometheus text format, one request per connection.
//!
//! It listens on a loopback TCP address or a Unix socket only: the page tells how busy the
//! agent is and which key types it uses, which is nobody else's business. Requests are
//! small and bounded: a request head over 8 KiB, or not complete within 5 s, is dropped;
//! a connection lasts at most 15 s in all; at most 16 scrapes are served at once.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;

use crate::Agent;

/// Largest read buffer, hence longest request head accepted (hyper's minimum).
const MAX_HEAD: usize = 8 * 1024;
/// Time a scraper has to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a whole connection may take, so a scraper that stops reading frees its slot.
const CONN_TIMEOUT: Duration = Duration::from_secs(15);
/// Scrapes served at once.
const MAX_SCRAPES: usize = 16;
/// Content type of the Prometheus text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Where metrics are served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsListen {
    /// A loopback TCP address.
    Tcp(SocketAddr),
    /// A Unix socket path.
    Unix(PathBuf),
}

/// Why a `--metrics-listen` value was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ListenError {
    #[error("{0} is not a loopback address; metrics are served on loopback only")]
    NotLoopback(SocketAddr),
    #[error("expected HOST:PORT with a loopback IP, or unix:PATH")]
    Syntax,
    #[error("unix: needs a socket path")]
    EmptyPath,
}

impl FromStr for MetricsListen {
    type Err = ListenError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(ListenError::EmptyPath);
            }
            return Ok(MetricsListen::Unix(PathBuf::from(path)));
        }
        let addr: SocketAddr = s.parse().map_err(|_| ListenError::Syntax)?;
        if !addr.ip().is_loopback() {
            return Err(ListenError::NotLoopback(addr));
        }
        Ok(MetricsListen::Tcp(addr))
    }
}

/// A bound metrics listener.
pub enum MetricsListener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

impl MetricsListener {
    /// Binds `at`. A Unix socket goes through the same checks as the agent's own socket
    /// (private directory, mode 0600, stale sockets replaced).
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn bind(at: &MetricsListen) -> std::io::Result<MetricsListener> {
        match at {
            MetricsListen::Tcp(addr) => Ok(MetricsListener::Tcp(
                tokio::net::TcpListener::bind(addr).await?,
            )),
            MetricsListen::Unix(path) => {
                let std = crate::socket::bind_listener(path, 64).map_err(std::io::Error::other)?;
                Ok(MetricsListener::Unix(tokio::net::UnixListener::from_std(
                    std,
                )?))
            }
        }
    }

    /// The TCP address actually bound (port 0 picks a free one), for tests and logs.
    pub fn local_tcp_addr(&self) -> Option<SocketAddr> {
        match self {
            MetricsListener::Tcp(l) => l.local_addr().ok(),
            MetricsListener::Unix(_) => None,
        }
    }
}

/// Serves scrapes until the task is dropped. Accept errors are logged and waited out.
pub async fn serve_metrics(listener: MetricsListener, agent: Arc<Agent>) {
    let slots = Arc::new(Semaphore::new(MAX_SCRAPES));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let agent = agent.clone();
        let accepted = match &listener {
            MetricsListener::Tcp(l) => l.accept().await.map(|(s, _)| {
                tokio::spawn(async move {
                    answer(s, agent).await;
                    drop(permit);
                });
            }),
            MetricsListener::Unix(l) => l.accept().await.map(|(s, _)| {
                tokio::spawn(async move {
                    answer(s, agent).await;
                    drop(permit);
                });
            }),
        };
        if let Err(e) = accepted {
            tracing::warn!(error = %e, "metrics accept failed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Serves one request on `stream` with hyper, then closes it. Malformed requests get
/// hyper's own 400; a slow or silent client is dropped by the timeouts.
async fn answer<S>(stream: S, agent: Arc<Agent>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let response = respond(req.method(), req.uri().path(), &agent);
        async move { Ok::<_, Infallible>(response) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(READ_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        // One scrape per connection, as Prometheus opens a new one each time anyway.
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(CONN_TIMEOUT, conn).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "metrics connection ended with an error"),
        Err(_) => tracing::debug!("metrics connection timed out"),
    }
}

/// The response to `method` on `path`: the page, 404 for other paths, 405 for other methods.
fn respond(method: &Method, path: &str, agent: &Agent) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (method, path) {
        (&Method::GET, "/metrics" | "/") => (StatusCode::OK, TEXT_FORMAT, agent.metrics.render()),
        (&Method::GET, _) => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_string(),
        ),
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET\n".to_string(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    #[test]
    fn loopback_and_unix_only() {
        assert_eq!(
            "127.0.0.1:9100".parse(),
            Ok(MetricsListen::Tcp("127.0.0.1:9100".parse().unwrap()))
        );
        assert!(matches!(
            "[::1]:9100".parse::<MetricsListen>(),
            Ok(MetricsListen::Tcp(_))
        ));
        assert!(matches!(
            "0.0.0.0:9100".parse::<MetricsListen>(),
            Err(ListenError::NotLoopback(_))
        ));
        assert!(matches!(
            "192.168.1.2:9100".parse::<MetricsListen>(),
            Err(ListenError::NotLoopback(_))
        ));
        assert_eq!(
            "localhost:9100".parse::<MetricsListen>(),
            Err(ListenError::Syntax)
        );
        assert_eq!(
            "unix:".parse::<MetricsListen>(),
            Err(ListenError::EmptyPath)
        );
        assert_eq!(
            "unix:/run/m.sock".parse(),
            Ok(MetricsListen::Unix(PathBuf::from("/run/m.sock")))
        );
    }

    fn test_agent() -> Arc<Agent> {
        Agent::try_new(Config {
            signer_threads: 1,
            ..Config::default()
        })
        .unwrap()
    }

    /// Sends `request` as raw bytes through [`answer`] and returns everything written back.
    async fn exchange(agent: &Arc<Agent>, request: &[u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let served = tokio::spawn(answer(server, agent.clone()));
        client.write_all(request).await.unwrap();
        let mut out = Vec::new();
        client.read_to_end(&mut out).await.unwrap();
        served.await.unwrap();
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn answers_get_metrics_and_refuses_others() {
        let agent = test_agent();
        agent.metrics.opened();
        let ok = exchange(&agent, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains(TEXT_FORMAT), "{ok}");
        assert!(ok.contains("secretivex_agent_connections_total 1"), "{ok}");
        let root = exchange(&agent, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(root.starts_with("HTTP/1.1 200 OK\r\n"), "{root}");
        let missing = exchange(&agent, b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        let post = exchange(&agent, b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(post.starts_with("HTTP/1.1 405"), "{post}");
        let junk = exchange(&agent, b"\xff\xfe\r\n\r\n").await;
        assert!(junk.starts_with("HTTP/1.1 400"), "{junk}");
    }

    #[tokio::test]
    async fn oversized_head_is_refused() {
        let agent = test_agent();
        let mut request = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
        request.extend(std::iter::repeat_n(b'a', 2 * MAX_HEAD));
        request.extend_from_slice(b"\r\n\r\n");
        let answer = exchange(&agent, &request).await;
        assert!(!answer.contains("200 OK"), "{answer}");
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    }

    #[tokio::test(start_paused = true)]
    async fn silent_client_is_dropped() {
        let agent = test_agent();
        // Half a head and then nothing. Time is paused (virtual, so no wall-clock
        // threshold): it jumps to the next timer once the runtime is idle.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, server) = tokio::io::duplex(1024);
        client
            .write_all(b"GET /metrics HTTP/1.1\r\n")
            .await
            .unwrap();
        let started = tokio::time::Instant::now();
        let ended = tokio::time::timeout(4 * CONN_TIMEOUT, answer(server, agent)).await;
        assert!(ended.is_ok(), "the connection was never dropped");
        // The head timeout, not the whole-connection one, ended it.
        assert!(started.elapsed() < CONN_TIMEOUT, "{:?}", started.elapsed());
        let mut out = Vec::new();
        client.read_to_end(&mut out).await.unwrap();
        assert!(!String::from_utf8_lossy(&out).contains("200 OK"));
    }
}
