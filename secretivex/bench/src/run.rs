//! A load run: pick the key, start the clients on a small tokio runtime, gather counters,
//! latencies and the agent's CPU time.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use parking_lot::Mutex;
use secretivex_proto::{sign_flags, Request, Response};
use tokio::time::Instant;

use crate::args::{Mode, RsaHash, RunArgs};
use crate::client::{self, Plan, Stop, TargetKey};
use crate::conn;
use crate::proc_stat;
use crate::report::{KeyInfo, Params, Report};
use crate::stats::{Counters, Latencies, LatencySummary};

/// Run length when neither --duration nor --requests is given.
const DEFAULT_DURATION_S: f64 = 5.0;
/// How often the agent's RSS is sampled during the run.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// Runs the load described by `args` and returns its report.
///
/// The generator runs on a tokio current-thread runtime unless `--threads` asks for more:
/// on a 2-core machine one core is then left to the agent under test, and the clients'
/// tasks are served in FIFO order by one scheduler, which adds no unfairness of its own.
pub fn execute(args: &RunArgs) -> anyhow::Result<Report> {
    let socket = agent_socket(args.socket.as_ref())?;
    let builder = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(usize::from(args.threads));
        b
    };
    build_runtime(builder, args.clients)?.block_on(run(args, socket))
}

/// `--socket`, or `SSH_AUTH_SOCK` when it is not given.
pub(crate) fn agent_socket(socket: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    match socket {
        Some(s) => Ok(s.clone()),
        None => std::env::var_os("SSH_AUTH_SOCK")
            .map(PathBuf::from)
            .context("no --socket and SSH_AUTH_SOCK is not set"),
    }
}

/// Finishes `builder` for `clients` clients. Every client may sit in a blocking connect on
/// a full backlog at the same time (see `conn::connect`); those threads sleep in the
/// kernel and cost no CPU, so the blocking pool is sized for all of them.
pub(crate) fn build_runtime(
    mut builder: tokio::runtime::Builder,
    clients: u32,
) -> anyhow::Result<tokio::runtime::Runtime> {
    let clients = usize::try_from(clients).unwrap_or(usize::MAX);
    builder
        .enable_all()
        .max_blocking_threads(clients.saturating_add(16).max(512))
        .thread_stack_size(256 * 1024)
        .build()
        .context("starting the tokio runtime")
}

async fn run(args: &RunArgs, socket: PathBuf) -> anyhow::Result<Report> {
    let connect_timeout = Duration::from_millis(args.connect_timeout_ms);
    let (target, key_info) = choose_key(&socket, connect_timeout, args).await?;
    if target.is_none() && args.mode != Mode::List {
        bail!("the agent lists no identities, so there is nothing to sign with");
    }
    let duration = match (args.duration, args.requests) {
        (Some(d), _) => Some(d),
        (None, None) => Some(DEFAULT_DURATION_S),
        (None, Some(_)) => None,
    };

    let agent_pid = args.agent_pid.map(|p| p.to_string());
    let agent_cpu_before = agent_pid.as_deref().map(proc_stat::cpu_time).transpose()?;
    let bench_cpu_before = proc_stat::cpu_time("self").ok();

    let t0 = Instant::now();
    let stop = match (duration, args.requests) {
        (Some(d), _) => Stop::Deadline(t0 + Duration::from_secs_f64(d)),
        (None, Some(n)) => Stop::Budget(AtomicU64::new(n)),
        (None, None) => Stop::Budget(AtomicU64::new(0)),
    };
    let plan = Arc::new(Plan {
        socket: socket.clone(),
        mode: args.mode,
        connect: args.connect,
        connect_timeout,
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        key: target,
        payload_bytes: usize::try_from(args.payload_bytes).unwrap_or(128),
        verify: args.verify,
        verify_every: args.verify_every,
        stop,
        latencies: Latencies::new().context("creating latency histograms")?,
        errors: Mutex::new(Vec::new()),
    });

    let rss_peak = Arc::new(AtomicU64::new(0));
    let sampler = agent_pid.clone().map(|pid| {
        let peak = Arc::clone(&rss_peak);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RSS_SAMPLE_EVERY);
            loop {
                tick.tick().await;
                if let Ok(kib) = proc_stat::rss_kib(&pid) {
                    peak.fetch_max(kib, std::sync::atomic::Ordering::Relaxed);
                }
            }
        })
    });

    let clients = usize::try_from(args.clients).unwrap_or(1);
    let ramp = Duration::from_millis(args.ramp_ms);
    let mut tasks = tokio::task::JoinSet::new();
    for id in 0..clients {
        let offset = ramp.mul_f64(id as f64 / clients as f64);
        let plan = Arc::clone(&plan);
        tasks.spawn(async move { client::run_client(id, t0 + offset, &plan).await });
    }
    let mut counters = Counters::default();
    while let Some(done) = tasks.join_next().await {
        counters.merge(&done.context("a client task failed")?);
    }
    let elapsed = t0.elapsed();
    if let Some(s) = sampler {
        s.abort();
    }

    let mut errors = plan.errors.lock().clone();
    // An agent that died during the run still gets its report, without a CPU figure.
    let agent_cpu = match (&agent_pid, agent_cpu_before) {
        (Some(pid), Some(before)) => match proc_stat::cpu_time(pid) {
            Ok(after) => Some(after.saturating_sub(before)),
            Err(e) => {
                errors.push(format!("agent CPU: {e:#}"));
                None
            }
        },
        _ => None,
    };
    let bench_cpu = bench_cpu_before.and_then(|b| {
        proc_stat::cpu_time("self")
            .ok()
            .map(|a| a.saturating_sub(b))
    });
    let per_op =
        |cpu: Duration| (counters.ops > 0).then(|| cpu.as_secs_f64() * 1e6 / counters.ops as f64);
    let latency = LatencySummary::of(&plan.latencies.merged());
    let elapsed_s = elapsed.as_secs_f64();
    let peak = rss_peak.load(std::sync::atomic::Ordering::Relaxed);

    Ok(Report {
        schema: crate::report::SCHEMA,
        label: args.label.clone(),
        params: Params::new(args, &socket, duration),
        key: key_info,
        elapsed_s,
        ops_per_sec: if elapsed_s > 0.0 {
            counters.ops as f64 / elapsed_s
        } else {
            0.0
        },
        counters,
        latency_us: latency,
        agent_cpu_ms: agent_cpu.map(|c| c.as_secs_f64() * 1e3),
        agent_cpu_us_per_op: agent_cpu.and_then(per_op),
        agent_rss_peak_kib: (peak > 0).then_some(peak),
        bench_cpu_us_per_op: bench_cpu.and_then(per_op),
        errors,
    })
}

/// Lists the agent's identities and picks the key to use: the one whose fingerprint is
/// `--key`, else the first listed.
async fn choose_key(
    socket: &Path,
    connect_timeout: Duration,
    args: &RunArgs,
) -> anyhow::Result<(Option<TargetKey>, Option<KeyInfo>)> {
    let mut retries = 0;
    let mut c = conn::connect(socket, connect_timeout, &mut retries)
        .await
        .with_context(|| format!("connecting to {}", socket.display()))?;
    let mut frame = Vec::new();
    let mut rbuf = Vec::new();
    Request::RequestIdentities.encode_frame(&mut frame);
    let body = tokio::time::timeout(
        Duration::from_millis(args.request_timeout_ms),
        c.roundtrip(&frame, &mut rbuf),
    )
    .await
    .context("listing identities timed out")?
    .context("listing identities")?;
    let ids = match Response::decode(body).context("decoding the identities answer")? {
        Response::Identities(ids) => ids,
        other => bail!("listing identities got reply type {}", other.msg_type()),
    };

    let wanted = args.key.as_deref().map(|k| k.trim_start_matches("SHA256:"));
    let chosen = ids.into_iter().find_map(|id| {
        let fp = secretivex_keys::fingerprint_of_blob(&id.key_blob).ok();
        match (wanted, &fp) {
            (None, _) => Some((id, fp)),
            (Some(w), Some(f)) if f.trim_start_matches("SHA256:") == w => Some((id, fp)),
            _ => None,
        }
    });
    let Some((id, fingerprint)) = chosen else {
        if let Some(k) = &args.key {
            bail!("no identity with fingerprint {k}");
        }
        return Ok((None, None));
    };
    let key_type = secretivex_keys::key_type_of_blob(&id.key_blob).unwrap_or_default();
    let flags = if key_type.contains("rsa") {
        match args.rsa_hash {
            RsaHash::Sha256 => sign_flags::RSA_SHA2_256,
            RsaHash::Sha512 => sign_flags::RSA_SHA2_512,
        }
    } else {
        0
    };
    let info = KeyInfo {
        fingerprint: fingerprint.unwrap_or_else(|| "unknown".into()),
        key_type,
        comment: id.comment,
    };
    Ok((
        Some(TargetKey {
            blob: id.key_blob,
            flags,
        }),
        Some(info),
    ))
}
