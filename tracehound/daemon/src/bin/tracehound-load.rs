//! `tracehound-load`: drives a running tracehoundd and reports throughput and latency.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use tracehound_daemon::load::{run, LoadOptions, Mode};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModeArg {
    Unary,
    Batch,
}

/// Load generator for tracehoundd.
#[derive(Debug, Parser)]
#[command(name = "tracehound-load", version)]
struct Args {
    /// The daemon: a socket path, `unix:PATH` or `http://127.0.0.1:PORT`.
    #[arg(long)]
    socket: String,
    /// Unary `Intercept` calls or the `InterceptBatch` stream.
    #[arg(long, value_enum, default_value = "unary")]
    mode: ModeArg,
    /// Concurrent clients (one connection each).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Requests per batch round trip (batch mode).
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Fraction of requests flagged as threats.
    #[arg(long, default_value_t = 0.01)]
    threat_ratio: f64,
    /// Distinct sources (0: one per request, so the rate limiter never rejects).
    #[arg(long, default_value_t = 0)]
    sources: u64,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let duration = Duration::try_from_secs_f64(a.duration).context("--duration")?;
    let report = run(LoadOptions {
        target: a.socket,
        mode: match a.mode {
            ModeArg::Unary => Mode::Unary,
            ModeArg::Batch => Mode::Batch,
        },
        clients: a.clients,
        duration,
        batch_size: a.batch_size,
        threat_ratio: a.threat_ratio,
        sources: a.sources,
    })
    .await?;
    let l = report.latency;
    let unit = if report.mode == Mode::Batch {
        "batch round trip"
    } else {
        "call"
    };
    println!(
        "{:?} clients={} batch={} intercepts={} in {:.2}s: {:.0} ops/s; {unit} p50={}us p99={}us p999={}us max={}us; failures={}",
        report.mode, report.clients, report.batch_size, report.intercepts, report.seconds,
        report.ops_per_sec, l.p50_us, l.p99_us, l.p999_us, l.max_us, report.failures
    );
    for e in &report.errors {
        eprintln!("error: {e}");
    }
    if let Some(path) = a.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    if report.failures > 0 {
        std::process::exit(1);
    }
    Ok(())
}
