//! A load generator for the daemon (binary `tracehound-load`; tests reuse it).
//!
//! Each client has its own connection. `unary` clients call `Intercept` back to back;
//! `batch` clients send `batch_size` requests on one `InterceptBatch` stream and read the
//! replies, again and again. Latencies go into an HDR histogram (every sample counted).
//!
//! The generator shares the machine with the daemon, so what it spends per call is CPU
//! the daemon lacks. [`Tuning`] chooses the unary client (tonic's `Channel`, or the lean
//! [`tracehound_rpc::direct`] caller that drives its connection in its own task) and
//! where clients run (the caller's runtime, or one single-threaded runtime per thread so
//! a client and its connection never wake each other across threads). With
//! [`Tuning::daemon_pid`] the report also gives the CPU time per call of both processes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

mod cpu;

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tracehound_rpc::direct::{self, DirectClient};
use tracehound_rpc::{pb, status_name};

pub use cpu::CpuUse;

/// Unary calls or the batch stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One `Intercept` call per request.
    Unary,
    /// `InterceptBatch` streams.
    Batch,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Where the daemon listens (`unix:PATH`, a path, or `http://127.0.0.1:PORT`).
    pub target: String,
    /// Unary or batch.
    pub mode: Mode,
    /// Concurrent clients, one connection each.
    pub clients: usize,
    /// How long to run.
    pub duration: Duration,
    /// Requests per batch round trip (batch mode).
    pub batch_size: usize,
    /// Fraction of requests flagged as threats (each with a distinct payload).
    pub threat_ratio: f64,
    /// Number of distinct sources; 0: every request its own source, so the rate limiter
    /// never rejects and the measurement is of the intercept path.
    pub sources: u64,
}

/// Which unary client the generator uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientKind {
    /// The tonic client over a `Channel`, as applications use it.
    #[default]
    Channel,
    /// [`tracehound_rpc::direct`]: gRPC framing over `h2`, the connection polled in the
    /// client's own task (unary mode only; batch mode always uses the tonic client).
    Lean,
}

/// How the generator runs, beyond what to run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tuning {
    /// The unary client.
    pub client: ClientKind,
    /// 0: clients are tasks of the caller's runtime. N: N threads, each with a
    /// single-threaded runtime, clients dealt round-robin.
    pub threads: usize,
    /// The daemon's process id, to report its CPU time per call (Linux `/proc`).
    pub daemon_pid: Option<u32>,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Worst.
    pub max_us: u64,
}

/// The outcome of a run.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Mode.
    pub mode: Mode,
    /// Clients.
    pub clients: usize,
    /// Batch size (1 for unary).
    pub batch_size: usize,
    /// Seconds actually run.
    pub seconds: f64,
    /// Intercepts answered.
    pub intercepts: u64,
    /// Intercepts per second.
    pub ops_per_sec: f64,
    /// Failed calls or streams plus `STATUS_ERROR`/unspecified answers.
    pub failures: u64,
    /// Answers by status name.
    pub statuses: BTreeMap<String, u64>,
    /// Per-call latency (unary) or per-batch round trip (batch).
    pub latency: Latency,
    /// First failure messages (at most 5), for diagnosis.
    pub errors: Vec<String>,
    /// The unary client used.
    pub client: ClientKind,
    /// Generator threads (0: the caller's runtime).
    pub threads: usize,
    /// CPU time spent by the generator (and the daemon, when its pid was given).
    pub cpu: Option<CpuUse>,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A client could not connect.
    #[error(transparent)]
    Connect(#[from] tracehound_rpc::RpcError),
    /// A lean client could not connect.
    #[error(transparent)]
    ConnectDirect(#[from] direct::DirectConnectError),
    /// Bad options.
    #[error("{0}")]
    Options(String),
    /// A generator thread's runtime could not be built.
    #[error("cannot start a generator runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

struct ClientResult {
    hist: Histogram<u64>,
    statuses: BTreeMap<String, u64>,
    failures: u64,
    errors: Vec<String>,
}

impl ClientResult {
    fn new() -> Result<Self, LoadError> {
        Ok(ClientResult {
            hist: Histogram::new_with_bounds(1, 120_000_000, 3)
                .map_err(|e| LoadError::Options(e.to_string()))?,
            statuses: BTreeMap::new(),
            failures: 0,
            errors: Vec::new(),
        })
    }

    fn failed(&mut self, n: u64, why: String) {
        self.failures += n;
        if self.errors.len() < 5 {
            self.errors.push(why);
        }
    }

    fn answer(&mut self, reply: &pb::InterceptReply) {
        let status = reply.status();
        if matches!(status, pb::Status::Error | pb::Status::Unspecified) {
            self.failed(1, format!("{}: {}", reply.error_code, reply.error_message));
        }
        *self
            .statuses
            .entry(status_name(status).to_owned())
            .or_insert(0) += 1;
    }

    fn record(&mut self, started: Instant) {
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        // Saturate rather than fail on an outlier beyond the histogram's range.
        let _ = self.hist.record(us.clamp(1, self.hist.high()));
    }
}

/// Builds request `i` of client `c`.
fn request(opts: &LoadOptions, c: usize, i: u64) -> pb::InterceptRequest {
    let source = if opts.sources == 0 {
        format!("load-{c}-{i}")
    } else {
        format!(
            "load-{}",
            (i.wrapping_mul(31).wrapping_add(c as u64)) % opts.sources
        )
    };
    // A fixed multiplicative hash spreads threats evenly without a random generator.
    let bucket = i.wrapping_mul(2_654_435_761).wrapping_add(c as u64 * 97) % 10_000;
    let threat = (bucket as f64) < opts.threat_ratio * 10_000.0;
    pb::InterceptRequest {
        source,
        payload_json: format!("{{\"path\":\"/api/items/{i}\",\"client\":{c},\"q\":\"x\"}}"),
        threat: threat.then(|| pb::Threat {
            category: "injection".into(),
            severity: "medium".into(),
        }),
        sequence: i,
        ..Default::default()
    }
}

async fn unary_client(
    opts: LoadOptions,
    c: usize,
    deadline: Instant,
) -> Result<ClientResult, LoadError> {
    let mut client = tracehound_rpc::connect(&opts.target).await?;
    let mut out = ClientResult::new()?;
    let mut i = 0u64;
    while Instant::now() < deadline {
        let req = request(&opts, c, i);
        i += 1;
        let started = Instant::now();
        match client.intercept(req).await {
            Ok(reply) => {
                out.record(started);
                out.answer(reply.get_ref());
            }
            Err(status) => out.failed(1, status.to_string()),
        }
    }
    Ok(out)
}

/// Unary calls through [`DirectClient`], the connection driven in this same task.
async fn lean_unary_client(
    opts: LoadOptions,
    c: usize,
    deadline: Instant,
) -> Result<ClientResult, LoadError> {
    let (mut client, mut driver): (DirectClient, direct::Driver) =
        direct::connect_direct(&opts.target).await?;
    let mut out = ClientResult::new()?;
    let calls = async {
        let mut i = 0u64;
        while Instant::now() < deadline {
            let req = request(&opts, c, i);
            i += 1;
            let started = Instant::now();
            match client.intercept(&req).await {
                Ok(reply) => {
                    out.record(started);
                    out.answer(&reply);
                }
                Err(e) => out.failed(1, e.to_string()),
            }
        }
    };
    // Both futures live in this task: the connection's reads and writes wake the call
    // directly, with no other task or thread in between.
    let ended = tokio::select! {
        () = calls => None,
        ended = &mut driver => Some(ended),
    };
    match ended {
        None => {}
        Some(Ok(())) => out.failed(1, "the daemon closed the connection".into()),
        Some(Err(e)) => out.failed(1, format!("connection failed: {e}")),
    }
    Ok(out)
}

async fn batch_client(
    opts: LoadOptions,
    c: usize,
    deadline: Instant,
) -> Result<ClientResult, LoadError> {
    let mut client = tracehound_rpc::connect(&opts.target).await?;
    let mut out = ClientResult::new()?;
    let n = opts.batch_size.max(1);
    let (tx, rx) = mpsc::channel(n * 2);
    let mut replies = match client.intercept_batch(ReceiverStream::new(rx)).await {
        Ok(r) => r.into_inner(),
        Err(status) => {
            out.failed(1, status.to_string());
            return Ok(out);
        }
    };
    let mut i = 0u64;
    'run: while Instant::now() < deadline {
        let started = Instant::now();
        for _ in 0..n {
            if tx.send(request(&opts, c, i)).await.is_err() {
                out.failed(n as u64, "request stream closed".into());
                break 'run;
            }
            i += 1;
        }
        for _ in 0..n {
            match replies.message().await {
                Ok(Some(reply)) => out.answer(&reply),
                Ok(None) => {
                    out.failed(1, "reply stream ended early".into());
                    break 'run;
                }
                Err(status) => {
                    out.failed(1, status.to_string());
                    break 'run;
                }
            }
        }
        out.record(started);
    }
    drop(tx);
    // Drain the end of the stream so the daemon sees a clean close.
    while let Ok(Some(reply)) = replies.message().await {
        out.answer(&reply);
    }
    Ok(out)
}

/// One client, as `mode` and `client` say.
async fn client(
    opts: LoadOptions,
    kind: ClientKind,
    c: usize,
    deadline: Instant,
) -> Result<ClientResult, LoadError> {
    match (opts.mode, kind) {
        (Mode::Unary, ClientKind::Channel) => unary_client(opts, c, deadline).await,
        (Mode::Unary, ClientKind::Lean) => lean_unary_client(opts, c, deadline).await,
        (Mode::Batch, _) => batch_client(opts, c, deadline).await,
    }
}

type Outcome = Result<Result<ClientResult, LoadError>, String>;

/// Runs clients `t`, `t + threads`, ... on a single-threaded runtime of this thread.
fn run_thread(
    opts: &LoadOptions,
    kind: ClientKind,
    t: usize,
    threads: usize,
    deadline: Instant,
) -> Vec<Outcome> {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return vec![Ok(Err(LoadError::Runtime(e)))],
    };
    runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for c in (t..opts.clients).step_by(threads) {
            tasks.spawn(client(opts.clone(), kind, c, deadline));
        }
        let mut outcomes = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            outcomes.push(joined.map_err(|e| format!("client task failed: {e}")));
        }
        outcomes
    })
}

/// Every client's outcome, from tasks of this runtime or from generator threads.
async fn run_clients(opts: &LoadOptions, tuning: Tuning, deadline: Instant) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    if tuning.threads == 0 {
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..opts.clients {
            tasks.spawn(client(opts.clone(), tuning.client, c, deadline));
        }
        while let Some(joined) = tasks.join_next().await {
            outcomes.push(joined.map_err(|e| format!("client task failed: {e}")));
        }
        return outcomes;
    }
    let threads = tuning.threads.min(opts.clients);
    let mut pending = Vec::with_capacity(threads);
    for t in 0..threads {
        let (tx, rx) = oneshot::channel();
        let o = opts.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("load-{t}"))
            .spawn(move || {
                let _ = tx.send(run_thread(&o, tuning.client, t, threads, deadline));
            });
        match spawned {
            Ok(_) => pending.push(rx),
            Err(e) => outcomes.push(Ok(Err(LoadError::Runtime(e)))),
        }
    }
    for rx in pending {
        match rx.await {
            Ok(mut done) => outcomes.append(&mut done),
            Err(_) => outcomes.push(Err("a generator thread died".into())),
        }
    }
    outcomes
}

/// Runs the load with the default [`Tuning`] (tonic clients on the caller's runtime).
pub async fn run(opts: LoadOptions) -> Result<LoadReport, LoadError> {
    run_tuned(opts, Tuning::default()).await
}

/// Runs the load and merges every client's results.
pub async fn run_tuned(opts: LoadOptions, tuning: Tuning) -> Result<LoadReport, LoadError> {
    if opts.clients == 0 {
        return Err(LoadError::Options("--clients must be at least 1".into()));
    }
    if !(0.0..=1.0).contains(&opts.threat_ratio) {
        return Err(LoadError::Options(
            "--threat-ratio must be within 0..=1".into(),
        ));
    }
    let cpu_before = cpu::Sample::take(tuning.daemon_pid);
    let start = Instant::now();
    let deadline = start + opts.duration;
    let outcomes = run_clients(&opts, tuning, deadline).await;
    let seconds = start.elapsed().as_secs_f64();
    let cpu_after = cpu::Sample::take(tuning.daemon_pid);
    let mut total = ClientResult::new()?;
    for outcome in outcomes {
        match outcome {
            Ok(Ok(r)) => {
                let _ = total.hist.add(&r.hist);
                for (k, v) in r.statuses {
                    *total.statuses.entry(k).or_insert(0) += v;
                }
                total.failures += r.failures;
                for e in r.errors {
                    if total.errors.len() < 5 {
                        total.errors.push(e);
                    }
                }
            }
            Ok(Err(e)) => total.failed(1, e.to_string()),
            Err(e) => total.failed(1, e),
        }
    }
    let intercepts: u64 = total.statuses.values().sum();
    let h = &total.hist;
    Ok(LoadReport {
        mode: opts.mode,
        clients: opts.clients,
        batch_size: if opts.mode == Mode::Batch {
            opts.batch_size.max(1)
        } else {
            1
        },
        seconds,
        intercepts,
        ops_per_sec: if seconds > 0.0 {
            intercepts as f64 / seconds
        } else {
            0.0
        },
        failures: total.failures,
        statuses: total.statuses,
        latency: Latency {
            p50_us: h.value_at_quantile(0.5),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        },
        errors: total.errors,
        client: tuning.client,
        threads: tuning.threads.min(opts.clients),
        cpu: cpu::CpuUse::between(cpu_before, cpu_after, seconds, intercepts),
    })
}
