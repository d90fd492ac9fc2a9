//! An open-loop, fixed-rate HTTP/1.1 load generator, used by `scripts/bench-proxy` when
//! `BENCH_RATE` is set.
//!
//! `cargo run --release -p tracehound-proxy --example http_openloop -- --url http://127.0.0.1:3000/ --rate 5000`
//!
//! Request `i` is scheduled at `start + i / rate`, whatever happened to the requests
//! before it. At its scheduled time it goes out on a free keep-alive connection (the
//! connections are used in turn, round-robin); when none is free it waits for one.
//! Latency is measured from the *scheduled* send time to the end of the response body,
//! so a slow answer that holds up later requests is charged to them too (no coordinated
//! omission). The output also gives the send lag (how late requests left, from the
//! generator's timer or from waiting for a connection) and the service time (from the
//! actual send), to tell the generator's delays from the server's.
//!
//! Single-threaded: one tokio current-thread runtime. Requests are paced with a
//! `timerfd` (tokio's own timer rounds to whole milliseconds, far coarser than the
//! gaps between requests), so the generator sleeps between sends instead of spinning.
//!
//! Every request is accounted for: a 2xx answer is a latency sample, a non-2xx answer,
//! an I/O error, a request that took longer than `--timeout`, or one that could not be
//! sent before the run gave up is an error. Errors are printed and make the exit status
//! non-zero. The achieved rate counts the answered requests of the measured part over
//! its length, stretched to the last answer when the server fell behind.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Parser;
use http::{header, Request, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::{JoinSet, LocalSet};

#[derive(Debug, Parser)]
#[command(
    name = "http_openloop",
    about = "Open-loop HTTP/1.1 load at a fixed rate; latency from the scheduled send time"
)]
struct Args {
    /// `http://HOST:PORT/PATH` to GET.
    #[arg(long)]
    url: Uri,
    /// Requests per second, over all connections.
    #[arg(long)]
    rate: f64,
    /// Keep-alive connections; requests go out on them in turn.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Seconds of measured load.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before the measured part (counted for errors, not for latency).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds a request may take before it counts as an error (its connection is
    /// then replaced).
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Where to connect and what to ask for.
struct Target {
    addr: String,
    authority: String,
    path: String,
}

impl Target {
    fn new(url: &Uri) -> anyhow::Result<Target> {
        if url.scheme_str() != Some("http") {
            bail!("only http:// URLs are supported, not {url}");
        }
        let authority = url.authority().context("the URL has no host")?;
        let port = authority.port_u16().unwrap_or(80);
        Ok(Target {
            addr: format!("{}:{port}", authority.host()),
            authority: authority.as_str().to_owned(),
            path: url
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        })
    }

    fn request(&self) -> anyhow::Result<Request<Empty<Bytes>>> {
        Ok(Request::get(self.path.as_str())
            .header(header::HOST, self.authority.as_str())
            .body(Empty::new())?)
    }
}

/// Sleeps until an `Instant` with microsecond precision, on a `timerfd` watched by the
/// runtime's reactor.
struct PreciseTimer {
    fd: AsyncFd<OwnedFd>,
}

impl PreciseTimer {
    fn new() -> io::Result<PreciseTimer> {
        // SAFETY: a plain system call with constant arguments.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: the `AsyncFd` owns `fd`, which stays open until the `AsyncFd` is
        // dropped (deregistering it first).
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE)? };
        Ok(PreciseTimer { fd })
    }

    async fn sleep_until(&self, deadline: Instant) -> io::Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: left.as_secs() as libc::time_t,
                tv_nsec: left.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: `spec` is a valid `itimerspec`; the old value is not asked for.
        let set =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if set < 0 {
            return Err(io::Error::last_os_error());
        }
        loop {
            let mut guard = self.fd.readable().await?;
            let mut expirations = [0u8; 8];
            // SAFETY: `expirations` is 8 writable bytes, what a timerfd read needs.
            let read = unsafe {
                libc::read(
                    guard.get_inner().as_raw_fd(),
                    expirations.as_mut_ptr().cast(),
                    expirations.len(),
                )
            };
            // Either way the descriptor has nothing more to read until it is re-armed.
            guard.clear_ready();
            if read == 8 {
                return Ok(());
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::WouldBlock {
                return Err(error);
            }
        }
    }
}

/// One keep-alive connection; `None` after an error until the next request reopens it.
struct Conn {
    sender: Option<SendRequest<Empty<Bytes>>>,
}

async fn connect(addr: &str) -> anyhow::Result<SendRequest<Empty<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    // A connection's failure surfaces in the request it breaks, which counts it.
    tokio::task::spawn_local(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    Ok,
    Non2xx,
    Io,
    Timeout,
}

/// Sends one request on `conn` (reopening it if it is gone) and reads the whole answer.
async fn send_one(conn: &mut Conn, target: &Target, reconnects: &RefCell<u64>) -> Outcome {
    if conn.sender.as_ref().is_none_or(SendRequest::is_closed) {
        *reconnects.borrow_mut() += 1;
        match connect(&target.addr).await {
            Ok(sender) => conn.sender = Some(sender),
            Err(_) => {
                conn.sender = None;
                return Outcome::Io;
            }
        }
    }
    let Some(sender) = conn.sender.as_mut() else {
        return Outcome::Io;
    };
    if sender.ready().await.is_err() {
        conn.sender = None;
        return Outcome::Io;
    }
    let Ok(request) = target.request() else {
        return Outcome::Io;
    };
    let response = match sender.send_request(request).await {
        Ok(response) => response,
        Err(_) => {
            conn.sender = None;
            return Outcome::Io;
        }
    };
    let status = response.status();
    if response.into_body().collect().await.is_err() {
        conn.sender = None;
        return Outcome::Io;
    }
    if status.is_success() {
        Outcome::Ok
    } else {
        Outcome::Non2xx
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    ok: u64,
    non_2xx: u64,
    io: u64,
    timeout: u64,
    not_sent: u64,
}

impl Counts {
    fn errors(&self) -> u64 {
        self.non_2xx + self.io + self.timeout + self.not_sent
    }

    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Non2xx => self.non_2xx += 1,
            Outcome::Io => self.io += 1,
            Outcome::Timeout => self.timeout += 1,
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "total": self.errors(),
            "non_2xx": self.non_2xx,
            "io": self.io,
            "timeout": self.timeout,
            "not_sent": self.not_sent,
        })
    }
}

#[derive(Default)]
struct Stats {
    warmup: Counts,
    measured: Counts,
    /// Measured 2xx requests, nanoseconds: scheduled send → end of body.
    latency: Vec<u64>,
    /// Actual send → end of body.
    service: Vec<u64>,
    /// Scheduled send → actual send.
    lag: Vec<u64>,
    /// When the last measured request finished.
    last_done: Option<Instant>,
}

/// Nearest-rank percentiles of sorted nanoseconds, in microseconds.
struct Percentiles {
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

impl Percentiles {
    fn of(samples: &mut [u64]) -> Percentiles {
        samples.sort_unstable();
        let at = |q: f64| -> f64 {
            if samples.is_empty() {
                return f64::NAN;
            }
            let rank = (q * samples.len() as f64).ceil() as usize;
            samples[rank.clamp(1, samples.len()) - 1] as f64 / 1000.0
        };
        Percentiles {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: at(1.0),
        }
    }

    fn line(&self) -> String {
        format!(
            "p50 {:.1} p90 {:.1} p99 {:.1} p999 {:.1} max {:.1}",
            self.p50, self.p90, self.p99, self.p999, self.max
        )
    }

    fn json(&self) -> serde_json::Value {
        let num = |v: f64| (v * 10.0).round() / 10.0;
        serde_json::json!({
            "p50": num(self.p50),
            "p90": num(self.p90),
            "p99": num(self.p99),
            "p999": num(self.p999),
            "max": num(self.max),
        })
    }
}

/// CPU time this process has used (user + system).
fn cpu_time() -> Duration {
    // SAFETY: `getrusage` fills the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !(args.rate.is_finite() && args.rate > 0.0) {
        bail!("--rate must be a positive number of requests per second");
    }
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    for (name, value) in [
        ("--duration", args.duration),
        ("--warmup", args.warmup),
        ("--timeout", args.timeout),
    ] {
        if !(value.is_finite() && value >= 0.0) {
            bail!("{name} must be a non-negative number of seconds");
        }
    }
    if args.duration == 0.0 || args.timeout == 0.0 {
        bail!("--duration and --timeout must be more than zero");
    }
    let target = Rc::new(Target::new(&args.url)?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = LocalSet::new();
    local.block_on(&runtime, run(args, target))
}

async fn run(args: Args, target: Rc<Target>) -> anyhow::Result<()> {
    let (free_tx, mut free_rx) = mpsc::unbounded_channel::<Conn>();
    for _ in 0..args.connections {
        let sender = connect(&target.addr).await?;
        free_tx
            .send(Conn {
                sender: Some(sender),
            })
            .ok()
            .context("connection queue closed")?;
    }
    let timer = PreciseTimer::new().context("creating a timerfd")?;
    let stats = Rc::new(RefCell::new(Stats::default()));
    let reconnects = Rc::new(RefCell::new(0u64));
    let request_timeout = Duration::from_secs_f64(args.timeout);
    let period_ns = 1e9 / args.rate;
    let start = Instant::now() + Duration::from_millis(10);
    let measure_start = start + Duration::from_secs_f64(args.warmup);
    let end = measure_start + Duration::from_secs_f64(args.duration);
    // Requests still waiting for a connection this long after the end are not sent.
    let give_up = tokio::time::Instant::from_std(end + request_timeout);
    let scheduled_at = |i: u64| start + Duration::from_nanos((i as f64 * period_ns) as u64);

    let cpu_start = cpu_time();
    let mut cpu_measure_start = None;
    let mut tasks = JoinSet::new();
    let mut measured_scheduled = 0u64;
    let mut next = 0u64;
    loop {
        let at = scheduled_at(next);
        if at >= end {
            break;
        }
        timer.sleep_until(at).await?;
        let measured = at >= measure_start;
        if measured && cpu_measure_start.is_none() {
            cpu_measure_start = Some(cpu_time());
        }
        let conn = match tokio::time::timeout_at(give_up, free_rx.recv()).await {
            Ok(Some(conn)) => conn,
            Ok(None) => bail!("connection queue closed"),
            Err(_) => break,
        };
        measured_scheduled += u64::from(measured);
        next += 1;
        let (target, stats, reconnects, free_tx) = (
            Rc::clone(&target),
            Rc::clone(&stats),
            Rc::clone(&reconnects),
            free_tx.clone(),
        );
        tasks.spawn_local(async move {
            let mut conn = conn;
            let sent = Instant::now();
            let outcome =
                tokio::time::timeout(request_timeout, send_one(&mut conn, &target, &reconnects))
                    .await
                    .unwrap_or(Outcome::Timeout);
            let done = Instant::now();
            if outcome == Outcome::Timeout {
                conn.sender = None;
            }
            let mut stats = stats.borrow_mut();
            if measured {
                stats.measured.add(outcome);
                stats.last_done = Some(done);
                if outcome == Outcome::Ok {
                    stats.latency.push((done - at).as_nanos() as u64);
                    stats.service.push((done - sent).as_nanos() as u64);
                    stats.lag.push((sent - at).as_nanos() as u64);
                }
            } else {
                stats.warmup.add(outcome);
            }
            drop(stats);
            let _ = free_tx.send(conn);
        });
        // Reap finished tasks so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    // Anything scheduled that never got a connection is an error, not a gap.
    loop {
        let at = scheduled_at(next);
        if at >= end {
            break;
        }
        let mut stats = stats.borrow_mut();
        if at >= measure_start {
            stats.measured.not_sent += 1;
            measured_scheduled += 1;
        } else {
            stats.warmup.not_sent += 1;
        }
        next += 1;
    }
    while tasks.join_next().await.is_some() {}
    let cpu_end = cpu_time();

    let mut stats = stats.borrow_mut();
    let measured = stats.measured;
    let warmup = stats.warmup;
    let answered = measured.ok + measured.non_2xx;
    let window = stats
        .last_done
        .map_or(Duration::ZERO, |done| {
            done.saturating_duration_since(measure_start)
        })
        .max(end - measure_start);
    let achieved = answered as f64 / window.as_secs_f64();
    let cpu_measured = cpu_end - cpu_measure_start.unwrap_or(cpu_start);
    let cpu_per_request = if measured.ok > 0 {
        cpu_measured.as_secs_f64() * 1e6 / measured.ok as f64
    } else {
        f64::NAN
    };
    let latency = Percentiles::of(&mut stats.latency);
    let service = Percentiles::of(&mut stats.service);
    let lag = Percentiles::of(&mut stats.lag);
    let reconnects = *reconnects.borrow();

    println!(
        "target: {} at {} req/s over {} connections, {} s measured after {} s warm-up",
        args.url, args.rate, args.connections, args.duration, args.warmup
    );
    println!(
        "requests: {measured_scheduled} scheduled, {} ok, achieved {achieved:.1} req/s answered",
        measured.ok
    );
    println!(
        "errors: {} (non-2xx {}, i/o {}, timeout {}, not sent {}); warm-up errors {}; reconnects {reconnects}",
        measured.errors(),
        measured.non_2xx,
        measured.io,
        measured.timeout,
        measured.not_sent,
        warmup.errors()
    );
    println!("latency from scheduled send (us): {}", latency.line());
    println!("send lag behind schedule (us): {}", lag.line());
    println!("service time from actual send (us): {}", service.line());
    println!("generator CPU: {cpu_per_request:.1} us/request");

    if let Some(path) = &args.json {
        let report = serde_json::json!({
            "url": args.url.to_string(),
            "rate": args.rate,
            "connections": args.connections,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "scheduled": measured_scheduled,
            "ok": measured.ok,
            "achieved_rate": (achieved * 10.0).round() / 10.0,
            "errors": measured.json(),
            "warmup_errors": warmup.json(),
            "reconnects": reconnects,
            "latency_us": latency.json(),
            "send_lag_us": lag.json(),
            "service_us": service.json(),
            "generator_cpu_us_per_request": (cpu_per_request * 10.0).round() / 10.0,
        });
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let errors = measured.errors() + warmup.errors();
    if errors > 0 {
        bail!("{errors} requests failed (see errors above)");
    }
    Ok(())
}
