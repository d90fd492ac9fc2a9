//! The opt-in metrics listener: a minimal HTTP/1.1 responder answering `GET /metrics`
//! (and `GET /`) with the Prometheus text format, then closing the connection.
//!
//! It listens on a loopback TCP address or a Unix socket only: the page tells how busy the
//! agent is and which key types it uses, which is nobody else's business. Requests are
//! small and bounded: a request head over 8 KiB, or not complete within 5 s, is dropped;
//! at most 16 scrapes are served at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::Agent;

/// Longest request head accepted.
const MAX_HEAD: usize = 8 * 1024;
/// Time a scraper has to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Scrapes served at once.
const MAX_SCRAPES: usize = 16;

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
                    answer(s, &agent).await;
                    drop(permit);
                });
            }),
            MetricsListener::Unix(l) => l.accept().await.map(|(s, _)| {
                tokio::spawn(async move {
                    answer(s, &agent).await;
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

/// Reads one request head and answers it.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, agent: &Agent) {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(Some(head)) => head,
        _ => return,
    };
    let response = respond(&head, agent);
    let _ = stream.write_all(&response).await;
    let _ = stream.shutdown().await;
}

/// Reads until the blank line ending the head; `None` on EOF, error or a head too long.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(chunk.get(..n)?);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Some(head);
        }
        if head.len() > MAX_HEAD {
            return None;
        }
    }
}

/// The full HTTP response to a request head.
fn respond(head: &[u8], agent: &Agent) -> Vec<u8> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next(), parts.next());
    let (status, content_type, body) = match (method, target) {
        (Some("GET"), Some("/metrics" | "/")) => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            agent.metrics.render(),
        ),
        (Some("GET"), Some(_)) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET\n".to_string(),
        ),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
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

    #[tokio::test]
    async fn answers_get_metrics_and_refuses_others() {
        let agent = Agent::try_new(Config {
            signer_threads: 1,
            ..Config::default()
        })
        .unwrap();
        agent.metrics.opened();
        let ok = respond(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &agent);
        let ok = String::from_utf8(ok).unwrap();
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(ok.contains("secretivex_agent_connections_total 1"));
        let missing = String::from_utf8(respond(b"GET /x HTTP/1.1\r\n\r\n", &agent)).unwrap();
        assert!(missing.starts_with("HTTP/1.1 404"));
        let post = String::from_utf8(respond(b"POST /metrics HTTP/1.1\r\n\r\n", &agent)).unwrap();
        assert!(post.starts_with("HTTP/1.1 405"));
        let junk = String::from_utf8(respond(b"\xff\xfe\r\n\r\n", &agent)).unwrap();
        assert!(junk.starts_with("HTTP/1.1 405"));
    }
}
