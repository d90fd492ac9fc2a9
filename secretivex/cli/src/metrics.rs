//! `secretivex metrics`: scrape a SecretiveX agent's metrics listener (`--metrics-listen`)
//! over HTTP/1.1 (hyper's client connection, on a single-threaded tokio runtime) and print a
//! summary: signs by key type, latency and queue-wait quantiles (bucket upper bounds),
//! connections, failures by reason.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::header::{CONNECTION, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

use crate::Outcome;

/// Longest wait for the whole scrape (connect, request, answer).
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest page accepted.
const MAX_PAGE: usize = 16 * 1024 * 1024;
/// Prefix of every series the agent exports.
const PREFIX: &str = "secretivex_agent_";

/// Where to scrape.
pub enum Target<'a> {
    /// `http://HOST:PORT[/PATH]`.
    Url(&'a str),
    /// The Unix socket given to `--metrics-listen unix:PATH`.
    Unix(&'a Path),
}

/// Scrapes `target` and prints the summary (or the raw page with `raw`).
pub fn run(target: Target<'_>, raw: bool) -> Result<Outcome> {
    // One request: a current-thread runtime is all it needs, and only this command pays for it.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("start the I/O runtime")?;
    let page = runtime
        .block_on(async { tokio::time::timeout(TIMEOUT, scrape(target)).await })
        .map_err(|_| anyhow!("no answer from the metrics listener within {TIMEOUT:?}"))??;
    if raw {
        print!("{page}");
    } else {
        print!("{}", Summary::parse(&page).render());
    }
    Ok(Outcome::Ok)
}

/// Connects to `target` and fetches its page.
async fn scrape(target: Target<'_>) -> Result<String> {
    match target {
        Target::Url(url) => {
            let (host_port, path) = split_url(url)?;
            let stream = TcpStream::connect(host_port)
                .await
                .with_context(|| format!("connect to {host_port}"))?;
            fetch(stream, host_port, path).await
        }
        Target::Unix(path) => {
            let stream = UnixStream::connect(path)
                .await
                .with_context(|| format!("connect to {}", path.display()))?;
            fetch(stream, "localhost", "/metrics").await
        }
    }
}

/// `http://host:port/path` → (`host:port`, `/path`); the path defaults to `/metrics`.
fn split_url(url: &str) -> Result<(&str, &str)> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!("only http:// URLs are supported (the agent serves plain HTTP on loopback)");
    };
    Ok(match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/metrics"),
    })
}

/// Sends a GET over `stream` and returns the body of a 200 answer, at most [`MAX_PAGE`] long.
async fn fetch<S>(stream: S, host: &str, path: &str) -> Result<String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake")?;
    // The connection future does the actual I/O; its errors also reach `send_request`.
    let driver = tokio::spawn(conn);
    let request = Request::get(path)
        .header(HOST, host)
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .with_context(|| format!("bad request path {path:?}"))?;
    let result = async {
        let response = sender.send_request(request).await.context("send request")?;
        let status = response.status();
        if status != StatusCode::OK {
            bail!("metrics listener answered: {status}");
        }
        let body = Limited::new(response.into_body(), MAX_PAGE)
            .collect()
            .await
            .map_err(|e| anyhow!("read answer: {e}"))?
            .to_bytes();
        String::from_utf8(body.to_vec()).context("the page is not UTF-8")
    }
    .await;
    driver.abort();
    result
}

/// A histogram: cumulative counts per upper bound, and the count.
#[derive(Debug, Default, PartialEq)]
struct Hist {
    buckets: Vec<(f64, f64)>,
    count: f64,
    sum: f64,
}

impl Hist {
    /// Upper bound of the bucket holding quantile `q` (None without observations).
    fn quantile_bound(&self, q: f64) -> Option<f64> {
        if self.count <= 0.0 {
            return None;
        }
        let rank = q * self.count;
        self.buckets
            .iter()
            .find(|(_, cum)| *cum >= rank)
            .map(|(le, _)| *le)
    }
}

/// The figures the summary shows.
#[derive(Debug, Default, PartialEq)]
struct Summary {
    signs: BTreeMap<String, f64>,
    failures: BTreeMap<String, f64>,
    refused: BTreeMap<String, f64>,
    connections_current: f64,
    connections_total: f64,
    latency: Hist,
    queue_wait: Hist,
}

/// `(label, value)` pairs of one series.
type LabelPairs<'a> = Vec<(&'a str, &'a str)>;

/// Splits `name{a="x",b="y"} value` into the name, its labels and the value.
fn parse_line(line: &str) -> Option<(&str, LabelPairs<'_>, f64)> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => {
            let inner = rest.strip_suffix('}')?;
            let labels = inner
                .split(',')
                .filter(|p| !p.is_empty())
                .filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    Some((k, v.trim_matches('"')))
                })
                .collect();
            (name, labels)
        }
        None => (series, Vec::new()),
    };
    Some((name, labels, value))
}

fn label<'a>(labels: &[(&str, &'a str)], key: &str) -> &'a str {
    labels
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("", |(_, v)| *v)
}

impl Summary {
    fn parse(page: &str) -> Summary {
        let mut s = Summary::default();
        for line in page.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, labels, value)) = parse_line(line) else {
                continue;
            };
            let Some(name) = name.strip_prefix(PREFIX) else {
                continue;
            };
            match name {
                "signs_total" => {
                    *s.signs
                        .entry(label(&labels, "key_type").to_string())
                        .or_default() += value;
                }
                "failures_total" => {
                    s.failures
                        .insert(label(&labels, "reason").to_string(), value);
                }
                "connections_refused_total" => {
                    s.refused
                        .insert(label(&labels, "reason").to_string(), value);
                }
                "connections_current" => s.connections_current = value,
                "connections_total" => s.connections_total = value,
                _ => {
                    for (base, hist) in [
                        ("sign_latency_seconds", &mut s.latency),
                        ("sign_queue_wait_seconds", &mut s.queue_wait),
                    ] {
                        let Some(part) = name.strip_prefix(base) else {
                            continue;
                        };
                        match part {
                            "_bucket" => {
                                let le = label(&labels, "le");
                                let bound = if le == "+Inf" {
                                    f64::INFINITY
                                } else {
                                    le.parse().unwrap_or(f64::INFINITY)
                                };
                                hist.buckets.push((bound, value));
                            }
                            "_count" => hist.count = value,
                            "_sum" => hist.sum = value,
                            _ => {}
                        }
                    }
                }
            }
        }
        s
    }

    fn render(&self) -> String {
        let total = |m: &BTreeMap<String, f64>| m.values().sum::<f64>();
        let breakdown = |m: &BTreeMap<String, f64>| {
            let parts: Vec<String> = m
                .iter()
                .filter(|(_, v)| **v > 0.0)
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            if parts.is_empty() {
                String::new()
            } else {
                format!(" ({})", parts.join(", "))
            }
        };
        let mut out = String::new();
        out.push_str(&format!(
            "signs:        {}{}\n",
            total(&self.signs),
            breakdown(&self.signs)
        ));
        for (name, h) in [
            ("sign latency", &self.latency),
            ("queue wait  ", &self.queue_wait),
        ] {
            let ms = |v: Option<f64>| match v {
                Some(v) if v.is_finite() => format!("≤{:.3} ms", v * 1e3),
                Some(_) => "above the last bucket".to_string(),
                None => "-".to_string(),
            };
            let mean = if h.count > 0.0 {
                format!("{:.3} ms", h.sum / h.count * 1e3)
            } else {
                "-".to_string()
            };
            out.push_str(&format!(
                "{name}: mean {mean}, p50 {}, p99 {}\n",
                ms(h.quantile_bound(0.5)),
                ms(h.quantile_bound(0.99))
            ));
        }
        out.push_str(&format!(
            "connections:  {} open, {} served, {} refused{}\n",
            self.connections_current,
            self.connections_total,
            total(&self.refused),
            breakdown(&self.refused)
        ));
        out.push_str(&format!(
            "failures:     {}{}\n",
            total(&self.failures),
            breakdown(&self.failures)
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "\
# HELP secretivex_agent_signs Signatures made
# TYPE secretivex_agent_signs counter
secretivex_agent_signs_total{key_type=\"ed25519\",store=\"memory\"} 30
secretivex_agent_signs_total{key_type=\"rsa\",store=\"memory\"} 2
secretivex_agent_sign_latency_seconds_sum 0.032
secretivex_agent_sign_latency_seconds_count 32
secretivex_agent_sign_latency_seconds_bucket{le=\"0.00001\"} 0
secretivex_agent_sign_latency_seconds_bucket{le=\"0.00002\"} 20
secretivex_agent_sign_latency_seconds_bucket{le=\"0.005\"} 32
secretivex_agent_sign_latency_seconds_bucket{le=\"+Inf\"} 32
secretivex_agent_connections_current 1
secretivex_agent_connections_total 40
secretivex_agent_connections_refused_total{reason=\"max_connections\"} 3
secretivex_agent_failures_total{reason=\"sign_timeout\"} 4
secretivex_agent_failures_total{reason=\"unknown_key\"} 0
# EOF
";

    #[test]
    fn summary_adds_up_the_series() {
        let s = Summary::parse(PAGE);
        assert_eq!(s.signs.get("ed25519"), Some(&30.0));
        assert_eq!(s.signs.get("rsa"), Some(&2.0));
        assert_eq!(s.latency.count, 32.0);
        assert_eq!(s.latency.quantile_bound(0.5), Some(0.00002));
        assert_eq!(s.latency.quantile_bound(0.99), Some(0.005));
        assert_eq!(s.queue_wait.quantile_bound(0.5), None);
        let text = s.render();
        assert!(
            text.contains("signs:        32 (ed25519 30, rsa 2)"),
            "{text}"
        );
        assert!(text.contains("1 open, 40 served, 3 refused"), "{text}");
        assert!(text.contains("failures:     4 (sign_timeout 4)"), "{text}");
    }

    #[test]
    fn urls() {
        assert_eq!(
            split_url("http://127.0.0.1:9100").unwrap(),
            ("127.0.0.1:9100", "/metrics")
        );
        assert_eq!(split_url("http://[::1]:9/x").unwrap(), ("[::1]:9", "/x"));
        assert!(split_url("https://127.0.0.1:9100").is_err());
    }

    /// Runs [`fetch`] against a peer that answers `answer` verbatim; returns the result
    /// and the request head the peer received.
    fn fetch_from(answer: Vec<u8>) -> (Result<String>, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let (client, mut server) = tokio::io::duplex(64 * 1024);
            let peer = tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if server.read(&mut byte).await.unwrap() == 0 {
                        break;
                    }
                    head.extend_from_slice(&byte);
                }
                // The client may hang up early (page too long): that is its right.
                let _ = server.write_all(&answer).await;
                let _ = server.shutdown().await;
                String::from_utf8(head).unwrap()
            });
            let result = fetch(client, "localhost", "/metrics").await;
            (result, peer.await.unwrap())
        })
    }

    #[test]
    fn fetch_returns_the_page_of_a_200() {
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{PAGE}",
            PAGE.len()
        );
        let (page, head) = fetch_from(answer.into_bytes());
        assert_eq!(page.unwrap(), PAGE);
        let head = head.to_ascii_lowercase();
        assert!(head.starts_with("get /metrics http/1.1\r\n"), "{head}");
        assert!(head.contains("host: localhost\r\n"), "{head}");
    }

    #[test]
    fn fetch_refuses_errors_and_oversized_pages() {
        let (missing, _) =
            fetch_from(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec());
        let missing = missing.unwrap_err().to_string();
        assert!(missing.contains("404"), "{missing}");
        let mut huge = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_PAGE + 1
        )
        .into_bytes();
        huge.resize(huge.len() + MAX_PAGE + 1, b'a');
        let (huge, _) = fetch_from(huge);
        assert!(huge.is_err());
    }
}
