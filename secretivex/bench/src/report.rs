//! Results of a load run: the report structure and its JSON, CSV and table forms.
//!
//! The CSV columns are the JSON fields flattened (`latency_us.p50` → `latency_us_p50`,
//! `params.clients` → `clients`), so both always carry the same figures.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::args::{value_name, ConnectMode, Mode, RsaHash, RunArgs};
use crate::stats::{Counters, LatencySummary};

/// Version tag of the report format.
pub const SCHEMA: &str = "secretivex-bench/1";

/// The parameters a run was started with.
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    /// Agent socket.
    pub socket: String,
    /// Request type.
    pub mode: Mode,
    /// Connection use.
    pub connect: ConnectMode,
    /// Concurrent clients.
    pub clients: u32,
    /// Planned duration in seconds (`None` when bounded by `requests`).
    pub duration_s: Option<f64>,
    /// Total request budget (`None` when bounded by time).
    pub requests: Option<u64>,
    /// Size of the signed data.
    pub payload_bytes: u32,
    /// Connect timeout.
    pub connect_timeout_ms: u64,
    /// Request timeout.
    pub request_timeout_ms: u64,
    /// Spread of client starts.
    pub ramp_ms: u64,
    /// Whether sampled replies were verified.
    pub verify: bool,
    /// Sampling period of verification.
    pub verify_every: u64,
    /// Generator threads.
    pub threads: u16,
    /// Hash requested for RSA keys.
    pub rsa_hash: RsaHash,
    /// Agent process observed in /proc.
    pub agent_pid: Option<u32>,
}

impl Params {
    /// The parameters of `args`, with the socket and duration actually used.
    pub fn new(args: &RunArgs, socket: &Path, duration_s: Option<f64>) -> Params {
        Params {
            socket: socket.display().to_string(),
            mode: args.mode,
            connect: args.connect,
            clients: args.clients,
            duration_s,
            requests: args.requests,
            payload_bytes: args.payload_bytes,
            connect_timeout_ms: args.connect_timeout_ms,
            request_timeout_ms: args.request_timeout_ms,
            ramp_ms: args.ramp_ms,
            verify: args.verify,
            verify_every: args.verify_every,
            threads: args.threads,
            rsa_hash: args.rsa_hash,
            agent_pid: args.agent_pid,
        }
    }
}

/// The key the run used.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    /// `SHA256:…` fingerprint.
    pub fingerprint: String,
    /// Key type name (`ssh-ed25519`, …).
    #[serde(rename = "type")]
    pub key_type: String,
    /// Comment as listed by the agent.
    pub comment: String,
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// `--label`.
    pub label: Option<String>,
    /// Run parameters.
    pub params: Params,
    /// Key used (absent in list mode against an empty agent).
    pub key: Option<KeyInfo>,
    /// Wall time from the first client's start to the last client's end.
    pub elapsed_s: f64,
    /// Successful operations per second of `elapsed_s`.
    pub ops_per_sec: f64,
    /// Operation, failure and connection counts.
    #[serde(flatten)]
    pub counters: Counters,
    /// Latency of successful operations (connect included when one was made).
    pub latency_us: LatencySummary,
    /// Agent CPU time (user + system) during the run.
    pub agent_cpu_ms: Option<f64>,
    /// Agent CPU time per successful operation.
    pub agent_cpu_us_per_op: Option<f64>,
    /// Highest agent RSS seen while sampling every 100 ms.
    pub agent_rss_peak_kib: Option<u64>,
    /// The generator's own CPU time per successful operation.
    pub bench_cpu_us_per_op: Option<f64>,
    /// First distinct error messages.
    pub errors: Vec<String>,
}

impl Report {
    /// Writes the report as pretty JSON.
    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(self).context("encoding JSON")?;
        text.push('\n');
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }

    /// Writes the report as CSV: a header line and one row.
    pub fn write_csv(&self, path: &Path) -> anyhow::Result<()> {
        let text = csv_of(&serde_json::to_value(self).context("encoding CSV")?);
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }

    /// A human-readable summary.
    pub fn table(&self) -> String {
        let p = &self.params;
        let c = &self.counters;
        let l = &self.latency_us;
        let mut out = String::new();
        let key = self
            .key
            .as_ref()
            .map(|k| format!("{} {}", k.key_type, k.fingerprint))
            .unwrap_or_else(|| "-".into());
        let bound = match (p.duration_s, p.requests) {
            (Some(d), _) => format!("{d} s"),
            (None, Some(n)) => format!("{n} requests"),
            (None, None) => "-".into(),
        };
        let _ = writeln!(
            out,
            "{}mode {}, connect {}, {} clients, {bound}, key {key}",
            self.label
                .as_deref()
                .map(|l| format!("[{l}] "))
                .unwrap_or_default(),
            value_name(&p.mode),
            value_name(&p.connect),
            p.clients
        );
        let rows: [(&str, String); 12] = [
            ("ops", c.ops.to_string()),
            ("ops/s", format!("{:.0}", self.ops_per_sec)),
            ("elapsed s", format!("{:.3}", self.elapsed_s)),
            (
                "failures",
                format!(
                    "{} (timeouts {}, agent FAILURE {}, i/o {}, protocol {}, connect {}, verify {})",
                    c.failures,
                    c.timeouts,
                    c.agent_failures,
                    c.io_errors,
                    c.protocol_errors,
                    c.connect_errors,
                    c.verify_failures
                ),
            ),
            ("connect retries", c.connect_retries.to_string()),
            ("connects", c.connects.to_string()),
            ("verified", c.verified.to_string()),
            (
                "latency ms",
                format!(
                    "p50 {} p90 {} p99 {} p99.9 {} max {}",
                    ms(l.p50),
                    ms(l.p90),
                    ms(l.p99),
                    ms(l.p999),
                    ms(l.max)
                ),
            ),
            ("agent CPU µs/op", opt(self.agent_cpu_us_per_op)),
            (
                "agent RSS peak MiB",
                self.agent_rss_peak_kib
                    .map(|k| format!("{:.1}", k as f64 / 1024.0))
                    .unwrap_or_else(|| "-".into()),
            ),
            ("bench CPU µs/op", opt(self.bench_cpu_us_per_op)),
            ("errors", self.errors.join("; ")),
        ];
        for (name, value) in rows {
            if name == "errors" && value.is_empty() {
                continue;
            }
            let _ = writeln!(out, "  {name:<20} {value}");
        }
        out
    }
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

fn opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into())
}

/// Flattens a JSON object into a CSV header and one row.
fn csv_of(value: &Value) -> String {
    let mut cols: Vec<(String, String)> = Vec::new();
    if let Value::Object(map) = value {
        flatten("", map, &mut cols);
    }
    let header: Vec<&str> = cols.iter().map(|(k, _)| k.as_str()).collect();
    let row: Vec<String> = cols.iter().map(|(_, v)| csv_field(v)).collect();
    format!("{}\n{}\n", header.join(","), row.join(","))
}

fn flatten(prefix: &str, map: &Map<String, Value>, out: &mut Vec<(String, String)>) {
    for (k, v) in map {
        // Parameters are flat in the CSV: their names do not clash with result names.
        let name = match prefix {
            "" | "params" => k.clone(),
            p => format!("{p}_{k}"),
        };
        match v {
            Value::Object(inner) => {
                let p = if prefix.is_empty() { k.as_str() } else { &name };
                flatten(p, inner, out);
            }
            Value::Array(items) => {
                let joined: Vec<String> = items.iter().map(scalar).collect();
                out.push((name, joined.join("; ")));
            }
            other => out.push((name, scalar(other))),
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_flattens_nested_objects_and_quotes() {
        let v = serde_json::json!({
            "ops": 3,
            "params": {"clients": 2, "socket": "/a,b"},
            "key": {"fingerprint": "SHA256:x"},
            "latency_us": {"p50": 10, "p99": 20},
            "agent_cpu_us_per_op": null,
            "errors": ["a \"b\"", "c"],
        });
        let text = csv_of(&v);
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "ops,clients,socket,key_fingerprint,latency_us_p50,latency_us_p99,agent_cpu_us_per_op,errors"
        );
        assert_eq!(
            lines.next().unwrap(),
            "3,2,\"/a,b\",SHA256:x,10,20,,\"a \"\"b\"\"; c\""
        );
        assert!(lines.next().is_none());
    }
}
