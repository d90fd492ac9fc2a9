//! Done-when 6: "with a receiver that hangs, intercept throughput stays within 5 % of no
//! sinks".
//!
//! Run: `cargo bench -p tracehound-notify --bench hanging_sinks -- --noplot`
//!
//! Two agents built the way `tracehoundd` builds its agent (core `Agent` with
//! `RuntimeHooks` holding a `SecurityState`), intercepting flagged scents with unique
//! ≈1 KB payloads into a quarantine of 10 000 entries (full: every call encodes, hashes,
//! inserts, evicts and appends audit records):
//! * `no_sinks` — `RuntimeHooks.notifications` is `None`;
//! * `five_hanging_sinks` — an emitter in the hooks, and a `Notifier` subscribed to it with
//!   all five sink kinds (webhook, splunk_hec, elasticsearch, datadog, ocsf_http) pointed
//!   at one loopback receiver that accepts connections and never answers. Each intercept
//!   emits `threat.detected`, `evidence.quarantined` and `evidence.evicted`; the notifier
//!   coalesces and queues them, the queues fill and drop, and once they have stayed full
//!   for a coalescing window (the bench waits that long) the emitter sheds events at
//!   the source (counted, never built) until a sink has room again;
//! * `emitter_without_subscriber` (interleaved part only) — the core's emitter in the
//!   hooks with nobody subscribed: the cost of emitting alone, without any sink.
//!
//! `main` first runs the variants interleaved (rounds of `ROUND` intercepts, the order
//! rotated every round, so machine noise hits all alike) and prints each one's median
//! per-intercept time and its median per-round ratio to `no_sinks` — the figure for the
//! target; then criterion measures two variants one after the other. Without `--bench` (as under
//! `cargo test --benches`) only a tiny smoke run happens.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion};
use serde_json::json;
use tracehound_core::agent::{Agent, AgentConfig, RuntimeHooks};
use tracehound_core::notify::{NotificationEmitter, NotifyConfig};
use tracehound_core::quarantine::QuarantineConfig;
use tracehound_core::rate_limit::RateLimitConfig;
use tracehound_core::state::{SecurityState, SecurityStateConfig};
use tracehound_core::types::{Scent, Severity, ThreatCategory};
use tracehound_notify::{Notifier, NotifierConfig, SinkConfig, SinkKind};

/// The allocator `tracehoundd` runs with: the notifier thread frees what intercepting
/// threads allocated, and glibc's malloc serialises such frees on the arena lock.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const FULL: usize = 10_000;
const ROUND: usize = 2_000;
const ROUNDS: usize = 101;

/// A loopback receiver that accepts and never answers (connections are held open).
fn hanging_receiver() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    format!("http://{addr}")
}

fn agent(emitter: Option<Arc<NotificationEmitter>>) -> Agent {
    let config = AgentConfig {
        max_payload_size: 1_000_000,
        rate_limit: RateLimitConfig {
            window_ms: 1,
            max_requests: 1_000_000,
            block_duration_ms: 0,
            max_sources: 100_000,
            shards: 64,
        },
        quarantine: QuarantineConfig {
            max_count: FULL,
            max_bytes: 100_000_000,
        },
    };
    let hooks = RuntimeHooks {
        state: Some(Arc::new(SecurityState::new(SecurityStateConfig::default()))),
        notifications: emitter,
        quarantine_max_bytes: 100_000_000,
        ..RuntimeHooks::default()
    };
    Agent::new(config)
        .expect("valid config")
        .with_observer(Arc::new(hooks))
}

fn notifier(emitter: &NotificationEmitter, base: &str) -> Notifier {
    let sinks = SinkKind::ALL
        .into_iter()
        .map(|k| {
            let url = match k {
                SinkKind::Webhook | SinkKind::OcsfHttp => format!("{base}/hook"),
                _ => base.to_owned(),
            };
            let mut s = SinkConfig::new(k.as_str(), k, url);
            if k.requires_secret() {
                s.secret = Some(zeroize::Zeroizing::new("bench".into()));
            }
            s
        })
        .collect();
    Notifier::start(
        NotifierConfig {
            sinks,
            ..NotifierConfig::default()
        },
        Some(emitter),
    )
    .expect("notifier starts")
}

fn scent(i: u64, data: &str) -> Scent {
    let severity = Severity::ALL[(i % 4) as usize];
    Scent::new(
        format!("t{i}"),
        "203.0.113.9",
        1_700_000_000_000.0,
        json!({"i": i, "attack": "sqli", "data": data}),
    )
    .with_threat(ThreatCategory::Injection, severity)
}

/// Fills the quarantine so every measured call evicts.
fn prefill(agent: &Agent, data: &str, next: &mut u64) {
    for _ in 0..FULL {
        agent.intercept(&scent(*next, data));
        *next += 1;
    }
}

/// Per agent: the median ns per intercept over `rounds` interleaved rounds, and the
/// median over rounds of its time divided by the first agent's in the same round (a
/// paired ratio: slow drifts of the machine hit both sides of each ratio alike).
fn interleaved(agents: &[&Agent], data: &str, rounds: usize, next: &mut u64) -> Vec<(f64, f64)> {
    let mut times = vec![Vec::new(); agents.len()];
    for round in 0..rounds {
        // Rotate the order each round, so every variant follows every other equally
        // often (the notifier drains its backlog while the next variant runs).
        for offset in 0..agents.len() {
            let i = (round + offset) % agents.len();
            let (agent, out) = (agents[i], &mut times[i]);
            let scents: Vec<Scent> = (0..ROUND).map(|k| scent(*next + k as u64, data)).collect();
            *next += ROUND as u64;
            let start = Instant::now();
            for s in &scents {
                criterion::black_box(agent.intercept(s));
            }
            out.push(start.elapsed().as_nanos() as f64 / ROUND as f64);
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let ratios: Vec<f64> = times
        .iter()
        .map(|t| median(t.iter().zip(&times[0]).map(|(x, base)| x / base).collect()))
        .collect();
    times.into_iter().map(median).zip(ratios).collect()
}

fn main() {
    let full_run = std::env::args().any(|a| a == "--bench");
    let data = "x".repeat(1000);
    let base = hanging_receiver();
    let emitter = Arc::new(NotificationEmitter::new(NotifyConfig {
        subscriber_capacity: 8192,
        ..NotifyConfig::default()
    }));
    let n = notifier(&emitter, &base);
    let plain = agent(None);
    let notified = agent(Some(Arc::clone(&emitter)));
    // The core's emitter with nobody subscribed: what emitting alone costs.
    let emit_only = agent(Some(Arc::new(NotificationEmitter::new(
        NotifyConfig::default(),
    ))));
    // A second agent without emitter: the spread between identical agents (A/A).
    let plain_again = agent(None);
    let mut next = 0u64;
    for a in [&plain, &notified, &emit_only, &plain_again] {
        prefill(a, &data, &mut next);
    }

    if !full_run {
        let t = interleaved(&[&plain, &notified], &data, 1, &mut next);
        println!(
            "smoke: no_sinks {:.0} ns, five_hanging_sinks {:.0} ns",
            t[0].0, t[1].0
        );
        for a in [&plain, &notified, &emit_only] {
            println!("  {:?}", a.stats());
        }
        return;
    }

    // The steady state of a hang: a coalesced type is shed only once every sink for it
    // has been full for a whole coalescing window (the prefill filled them).
    let settle = NotifierConfig::default().coalesce.window_ms + 200;
    println!("waiting {settle} ms: one coalescing window with every sink full");
    std::thread::sleep(Duration::from_millis(settle));
    let t = interleaved(
        &[&plain, &notified, &emit_only, &plain_again],
        &data,
        ROUNDS,
        &mut next,
    );
    let pct = |ratio: f64| (ratio - 1.0) * 100.0;
    println!(
        "interleaved ({ROUNDS} rounds x {ROUND}, rotating order; medians, and in brackets the median \
         of per-round ratios to no_sinks): no_sinks {:.0} ns/intercept, five_hanging_sinks {:.0} ns \
         ({:+.1} %), emitter_without_subscriber {:.0} ns ({:+.1} %), no_sinks_again {:.0} ns ({:+.1} %)",
        t[0].0,
        t[1].0,
        pct(t[1].1),
        t[2].0,
        pct(t[2].1),
        t[3].0,
        pct(t[3].1)
    );
    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    let mut g = c.benchmark_group("hanging_sinks");
    for (name, agent) in [("no_sinks", &plain), ("five_hanging_sinks", &notified)] {
        g.bench_function(name, |bench| {
            bench.iter_batched(
                || {
                    next += 1;
                    scent(next, &data)
                },
                |s| agent.intercept(&s),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();

    let s = n.stats();
    println!(
        "notifier: emitter events {}, collected {}, coalesced {}, overflow {}, input drops {} (of which shed at the source {})",
        emitter.stats().total_emitted,
        s.coalesce.events_in,
        s.coalesce.merged,
        s.coalesce.overflow,
        s.input_dropped,
        s.shed
    );
    for k in &s.sinks {
        println!(
            "  {:<14} queued {} in flight {} sent {} dropped {}",
            k.name, k.queued, k.inflight, k.sent, k.dropped
        );
    }
    n.request_stop();
}
