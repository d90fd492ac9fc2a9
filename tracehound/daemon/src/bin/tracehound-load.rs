//! `tracehound-load`: drives a running tracehoundd and reports throughput and latency.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use tracehound_daemon::load::{run_tuned, ClientKind, LoadOptions, Mode, Tuning};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModeArg {
    Unary,
    Batch,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ClientArg {
    /// The tonic client over a `Channel`, as applications use it.
    Channel,
    /// gRPC framing over `h2`, the connection driven in the client's own task.
    Lean,
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
    /// Unary client: `lean` costs the generator less CPU per call, leaving more to the
    /// daemon when both share the machine.
    #[arg(long, value_enum, default_value = "channel")]
    client: ClientArg,
    /// Generator threads, each with a single-threaded runtime (clients dealt
    /// round-robin); 0: one multi-threaded runtime for all clients.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// The daemon's pid, to report its CPU time per call alongside the generator's.
    #[arg(long, value_name = "PID")]
    daemon_pid: Option<u32>,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let duration = Duration::try_from_secs_f64(a.duration).context("--duration")?;
    let options = LoadOptions {
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
    };
    let tuning = Tuning {
        client: match a.client {
            ClientArg::Channel => ClientKind::Channel,
            ClientArg::Lean => ClientKind::Lean,
        },
        threads: a.threads,
        daemon_pid: a.daemon_pid,
    };
    let report = run_tuned(options, tuning).await?;
    let l = report.latency;
    let unit = if report.mode == Mode::Batch {
        "batch round trip"
    } else {
        "call"
    };
    println!(
        "{:?} client={:?} threads={} clients={} batch={} intercepts={} in {:.2}s: {:.0} ops/s; {unit} p50={}us p99={}us p999={}us max={}us; failures={}",
        report.mode, report.client, report.threads, report.clients, report.batch_size, report.intercepts, report.seconds,
        report.ops_per_sec, l.p50_us, l.p99_us, l.p999_us, l.max_us, report.failures
    );
    if let Some(cpu) = report.cpu {
        print!(
            "cpu: generator {:.1}us/call ({:.2} cores)",
            cpu.generator_us_per_call, cpu.generator_cores
        );
        if let (Some(us), Some(cores)) = (cpu.daemon_us_per_call, cpu.daemon_cores) {
            print!(", daemon {us:.1}us/call ({cores:.2} cores)");
        }
        println!();
    }
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
