//! `secretivex metrics`: scrape a SecretiveX agent's metrics listener (`--metrics-listen`)
//! over HTTP/1.1 and print a summary: signs by key type, latency and queue-wait quantiles
//! (bucket upper bounds), connections, failures by reason.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::Outcome;

/// Longest wait for the agent's answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest page accepted.
const MAX_PAGE: u64 = 16 * 1024 * 1024;
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
    let page = match target {
        Target::Url(url) => {
            let (host_port, path) = split_url(url)?;
            let stream =
                TcpStream::connect(host_port).with_context(|| format!("connect to {host_port}"))?;
            stream.set_read_timeout(Some(TIMEOUT))?;
            stream.set_write_timeout(Some(TIMEOUT))?;
            fetch(stream, host_port, path)?
        }
        Target::Unix(path) => {
            let stream = UnixStream::connect(path)
                .with_context(|| format!("connect to {}", path.display()))?;
            stream.set_read_timeout(Some(TIMEOUT))?;
            stream.set_write_timeout(Some(TIMEOUT))?;
            fetch(stream, "localhost", "/metrics")?
        }
    };
    if raw {
        print!("{page}");
    } else {
        print!("{}", Summary::parse(&page).render());
    }
    Ok(Outcome::Ok)
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

/// Sends a GET and returns the body of a 200 answer.
fn fetch(mut stream: impl Read + Write, host: &str, path: &str) -> Result<String> {
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .context("send request")?;
    let mut answer = String::new();
    stream
        .take(MAX_PAGE)
        .read_to_string(&mut answer)
        .context("read answer")?;
    let Some((head, body)) = answer.split_once("\r\n\r\n") else {
        bail!("not an HTTP answer");
    };
    let status = head.lines().next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200") && !status.starts_with("HTTP/1.0 200") {
        bail!("metrics listener answered: {status}");
    }
    Ok(body.to_string())
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
}
