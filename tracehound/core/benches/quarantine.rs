//! Quarantine insert into a full 10 000-entry store, evicting on every call (1 KB
//! evidence), plus a per-insert latency distribution from a plain timing loop.
//!
//! Run: `cargo bench -p tracehound-core --bench quarantine`
//! (v1 on this machine type: ≈ 1 300 inserts/s once full, p99 1.7–5 ms; spec §27.2.)

use std::time::Instant;

mod support;

use criterion::{black_box, BatchSize, Criterion, Throughput};
use serde_json::json;
use support::thread_cpu_ns;
use tracehound_core::evidence::{Evidence, EvidenceFactory};
use tracehound_core::quarantine::{InsertOutcome, QuarantineConfig, QuarantineStore};
use tracehound_core::types::{Severity, ThreatCategory, ThreatSignal};

const FULL: usize = 10_000;

/// 1 KB-class evidence (canonical payload ≈ 1 050 bytes), built as the agent would.
fn make(factory: &EvidenceFactory, i: u64) -> Evidence {
    let payload = json!({ "i": i, "attack": "sqli", "data": "x".repeat(1000) });
    let severity = Severity::ALL[(i % 4) as usize];
    let threat = ThreatSignal {
        category: ThreatCategory::Injection,
        severity,
    };
    factory
        .create_from(&payload, threat, i as f64, 1_000_000)
        .expect("payload encodes")
}

/// A quarantine already holding 10 000 items, so every further insert evicts one.
fn full_store(factory: &EvidenceFactory) -> (QuarantineStore, u64) {
    let mut q = QuarantineStore::new(QuarantineConfig {
        max_count: FULL,
        max_bytes: 100_000_000,
    });
    for i in 0..FULL as u64 {
        q.insert(make(factory, i), 0.0);
    }
    (q, FULL as u64)
}

fn insert_bench(c: &mut Criterion) {
    let factory = EvidenceFactory::new();
    let (mut q, mut next) = full_store(&factory);
    let mut g = c.benchmark_group("quarantine");
    g.throughput(Throughput::Elements(1));
    g.bench_function("insert_full_10k_1kb_evicting", |b| {
        b.iter_batched(
            || {
                next += 1;
                make(&factory, next)
            },
            |ev| match q.insert(ev, 1.0) {
                InsertOutcome::Inserted { evicted, .. } => black_box(evicted.len()),
                InsertOutcome::Duplicate { .. } => unreachable!("unique payloads"),
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
    assert_eq!(q.len(), FULL);
}

/// Times each insert individually (pre-built evidence), prints ops/s and percentiles.
fn latency_report(n: usize) {
    let factory = EvidenceFactory::new();
    let (mut q, start) = full_store(&factory);
    let batch: Vec<Evidence> = (0..n as u64).map(|i| make(&factory, start + i)).collect();
    let mut nanos: Vec<u64> = Vec::with_capacity(n);
    let (t0, c0) = (Instant::now(), thread_cpu_ns());
    for ev in batch {
        let t = Instant::now();
        let out = q.insert(ev, 2.0);
        nanos.push(t.elapsed().as_nanos() as u64);
        black_box(out);
    }
    let total = t0.elapsed();
    let cpu = thread_cpu_ns().zip(c0).map(|(a, b)| a - b);
    nanos.sort_unstable();
    let pct = |p: f64| nanos[((nanos.len() as f64 * p) as usize).min(nanos.len() - 1)];
    println!(
        "quarantine insert (full 10k, 1 KB, evicting every call), {n} timed inserts: {:.0} ops/s wall, {} on-CPU, p50 {:.2} µs, p99 {:.2} µs, p99.9 {:.2} µs, max {:.2} µs",
        n as f64 / total.as_secs_f64(),
        cpu.map_or("n/a".to_owned(), |ns| format!("{:.0} ops/s", n as f64 / (ns as f64 / 1e9))),
        pct(0.50) as f64 / 1e3,
        pct(0.99) as f64 / 1e3,
        pct(0.999) as f64 / 1e3,
        *nanos.last().unwrap_or(&0) as f64 / 1e3,
    );
    assert_eq!(q.len(), FULL);
    assert_eq!(q.audit().len(), n);
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    insert_bench(&mut c);
    c.final_summary();
    // `cargo bench` passes --bench; under `cargo test --benches` run a token-sized loop.
    let benching = std::env::args().any(|a| a == "--bench");
    latency_report(if benching { 200_000 } else { 100 });
}
