//! Audit chain benchmarks: append throughput and verify throughput over 100 000 records.
//!
//! Run: `cargo bench -p tracehound-core --bench audit`
//! (v1 on this machine type: append ≈ 250 000/s, verify ≈ 357 000 records/s; spec §27.2.)

use std::time::{Duration, Instant};

mod support;

use criterion::{black_box, criterion_group, Criterion, Throughput};
use support::thread_cpu_ns;
use tracehound_core::audit::{AuditChain, RecordKind};

/// Realistic ids (45 chars) and signatures (`category:` + 64 hex), precomputed.
fn corpus(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            (
                format!("0190a6b2-7c3e-7000-8000-{i:012x}-{:08x}", i * 7919),
                format!("injection:{:064x}", (i as u128) * 0x9e37_79b9_7f4a_7c15),
            )
        })
        .collect()
}

fn append(c: &mut Criterion) {
    let ids = corpus(1024);
    let mut g = c.benchmark_group("audit");
    g.throughput(Throughput::Elements(1));
    g.bench_function("append", |b| {
        b.iter_custom(|iters| {
            // Fresh chains of at most 1M records, so memory stays bounded however many
            // iterations criterion asks for; only the appends are timed.
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(1_000_000);
                let mut chain = AuditChain::with_capacity(n as usize, 120);
                let start = Instant::now();
                for i in 0..n {
                    let (id, sig) = &ids[(i % 1024) as usize];
                    chain.append(
                        RecordKind::Neutralization,
                        id,
                        sig,
                        1_700_000_000_000.0 + i as f64,
                    );
                }
                total += start.elapsed();
                black_box(chain.last_hash());
                left -= n;
            }
            total
        })
    });
    let mut chain = AuditChain::new();
    for (i, (id, sig)) in corpus(100_000).iter().enumerate() {
        chain.append(
            RecordKind::Neutralization,
            id,
            sig,
            1_700_000_000_000.0 + i as f64,
        );
    }
    g.throughput(Throughput::Elements(100_000));
    g.bench_function("verify_100k", |b| b.iter(|| black_box(&chain).verify()));
    g.finish();
}

/// One long run of appends then one verify, reporting wall-clock and on-CPU rates.
fn report(n: usize) {
    let ids = corpus(1024);
    let mut chain = AuditChain::with_capacity(n, 120);
    let (t0, c0) = (Instant::now(), thread_cpu_ns());
    for i in 0..n {
        let (id, sig) = &ids[i % 1024];
        chain.append(
            RecordKind::Neutralization,
            id,
            sig,
            1_700_000_000_000.0 + i as f64,
        );
    }
    let (wall, cpu) = (t0.elapsed(), thread_cpu_ns().zip(c0).map(|(a, b)| a - b));
    let (t1, c1) = (Instant::now(), thread_cpu_ns());
    assert!(chain.verify().is_ok());
    let (vwall, vcpu) = (t1.elapsed(), thread_cpu_ns().zip(c1).map(|(a, b)| a - b));
    let rate = |d: f64| n as f64 / d;
    let cpu_rate = |ns: Option<u64>| {
        ns.map_or("n/a".to_owned(), |ns| {
            format!("{:.0}/s", rate(ns as f64 / 1e9))
        })
    };
    println!(
        "audit, {n} records: append {:.0}/s wall, {} on-CPU; verify {:.0} records/s wall, {} on-CPU",
        rate(wall.as_secs_f64()),
        cpu_rate(cpu),
        rate(vwall.as_secs_f64()),
        cpu_rate(vcpu),
    );
}

criterion_group!(benches, append);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo bench` passes --bench; under `cargo test --benches` run a token-sized loop.
    let benching = std::env::args().any(|a| a == "--bench");
    report(if benching { 1_000_000 } else { 1_000 });
}
