//! `secretivex-bench idle`: what idle connections cost an agent in resident memory.
//!
//! Reads the agent's `VmRSS`, opens `--clients` connections, has each one list the
//! identities once (so the agent has accepted it and set up whatever it keeps per
//! connection), then holds them all open and idle for `--hold-secs`, sampling the RSS.
//! At the end every connection lists once more, to count how many the agent still serves,
//! and all are closed.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use secretivex_proto::{Request, Response};
use serde::Serialize;

use crate::args::IdleArgs;
use crate::conn::{self, Conn};
use crate::proc_stat;
use crate::run;

/// How often the RSS is sampled while the connections are held.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// Pause after the last connection was set up, before the "held" reading, so the agent
/// has finished with the listing requests.
const SETTLE: Duration = Duration::from_millis(300);

/// Results of `idle`.
#[derive(Debug, Clone, Serialize)]
pub struct IdleReport {
    /// Free-form label from `--label`.
    pub label: Option<String>,
    /// Agent socket.
    pub socket: String,
    /// Agent process observed.
    pub agent_pid: u32,
    /// Connections asked for.
    pub clients: u32,
    /// Connections opened and answered once.
    pub connected: u64,
    /// Connections that failed to open or to answer the first listing.
    pub failed: u64,
    /// Seconds the connections were held idle.
    pub hold_s: f64,
    /// Connections that still answered a listing after the hold.
    pub served_after_hold: u64,
    /// Agent RSS before any connection was opened.
    pub agent_rss_before_kib: u64,
    /// Agent RSS with every connection open and idle, after settling.
    pub agent_rss_held_kib: u64,
    /// Highest agent RSS seen while the connections were open.
    pub agent_rss_peak_kib: u64,
    /// (peak − before) / connected.
    pub agent_rss_per_connection_kib: f64,
    /// Agent RSS shortly after all connections were closed.
    pub agent_rss_after_close_kib: u64,
}

impl IdleReport {
    /// A human-readable summary.
    pub fn table(&self) -> String {
        let mib = |kib: u64| kib as f64 / 1024.0;
        format!(
            "idle: {} of {} connections open and idle for {:.1} s, {} still served after\n  \
             agent RSS MiB   before {:.1}  held {:.1}  peak {:.1}  after close {:.1}\n  \
             agent RSS per idle connection  {:.1} KiB (peak − before)\n",
            self.connected,
            self.clients,
            self.hold_s,
            self.served_after_hold,
            mib(self.agent_rss_before_kib),
            mib(self.agent_rss_held_kib),
            mib(self.agent_rss_peak_kib),
            mib(self.agent_rss_after_close_kib),
            self.agent_rss_per_connection_kib,
        )
    }
}

/// Runs the measurement on a current-thread runtime.
pub fn execute(args: &IdleArgs) -> anyhow::Result<IdleReport> {
    let socket = run::agent_socket(args.socket.as_ref())?;
    let builder = tokio::runtime::Builder::new_current_thread();
    run::build_runtime(builder, args.clients)?.block_on(run(args, socket))
}

async fn run(args: &IdleArgs, socket: PathBuf) -> anyhow::Result<IdleReport> {
    let pid = args.agent_pid.to_string();
    let before = proc_stat::rss_kib(&pid).context("agent RSS before")?;
    let connect_timeout = Duration::from_millis(args.connect_timeout_ms);
    let request_timeout = Duration::from_millis(args.request_timeout_ms);
    let mut list_frame = Vec::new();
    Request::RequestIdentities.encode_frame(&mut list_frame);

    // Open and list on every connection, all at once (as a fan-out burst does).
    let opened: Vec<Option<Conn>> = {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..args.clients {
            let socket = socket.clone();
            let frame = list_frame.clone();
            tasks.spawn(async move {
                let mut retries = 0;
                let mut c = conn::connect(&socket, connect_timeout, &mut retries)
                    .await
                    .ok()?;
                list_once(&mut c, &frame, request_timeout)
                    .await
                    .then_some(c)
            });
        }
        let mut all = Vec::with_capacity(usize::try_from(args.clients).unwrap_or(0));
        while let Some(done) = tasks.join_next().await {
            all.push(done.context("a connecting task failed")?);
        }
        all
    };
    let mut conns: Vec<Conn> = opened.into_iter().flatten().collect();
    let connected = conns.len() as u64;
    let failed = u64::from(args.clients).saturating_sub(connected);

    tokio::time::sleep(SETTLE).await;
    let held = proc_stat::rss_kib(&pid).context("agent RSS while held")?;
    let peak = Arc::new(AtomicU64::new(held));
    let hold = Duration::from_secs_f64(args.hold_secs);
    let deadline = tokio::time::Instant::now() + hold;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(SAMPLE_EVERY).await;
        if let Ok(kib) = proc_stat::rss_kib(&pid) {
            peak.fetch_max(kib, Ordering::Relaxed);
        }
    }

    let mut served_after_hold = 0u64;
    for c in &mut conns {
        if list_once(c, &list_frame, request_timeout).await {
            served_after_hold += 1;
        }
    }
    if let Ok(kib) = proc_stat::rss_kib(&pid) {
        peak.fetch_max(kib, Ordering::Relaxed);
    }
    drop(conns);
    tokio::time::sleep(SETTLE).await;
    let after = proc_stat::rss_kib(&pid).context("agent RSS after close")?;
    let peak = peak.load(Ordering::Relaxed);
    if connected == 0 {
        bail!("no connection could be opened to {}", socket.display());
    }
    Ok(IdleReport {
        label: args.label.clone(),
        socket: socket.display().to_string(),
        agent_pid: args.agent_pid,
        clients: args.clients,
        connected,
        failed,
        hold_s: hold.as_secs_f64(),
        served_after_hold,
        agent_rss_before_kib: before,
        agent_rss_held_kib: held,
        agent_rss_peak_kib: peak,
        agent_rss_per_connection_kib: peak.saturating_sub(before) as f64 / connected as f64,
        agent_rss_after_close_kib: after,
    })
}

/// One REQUEST_IDENTITIES round trip; true if the agent answered with an identities list.
async fn list_once(c: &mut Conn, frame: &[u8], timeout: Duration) -> bool {
    let mut rbuf = Vec::new();
    match tokio::time::timeout(timeout, c.roundtrip(frame, &mut rbuf)).await {
        Ok(Ok(body)) => matches!(Response::decode(body), Ok(Response::Identities(_))),
        _ => false,
    }
}
