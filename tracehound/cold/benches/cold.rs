//! Cold-store throughput on the local directory store (the embedded default).
//!
//! `cargo bench -p tracehound-cold --bench cold`
//!
//! * `put/{1KiB,64KiB}` — seal (gzip + SHA-256) and write one envelope;
//! * `get/{1KiB,64KiB}` — read, verify (envelope hash, inflate, payload hash) one object;
//! * `evacuate/1000x1KiB` — 1 000 evidence through a one-slot quarantine: 999 evictions queued and written.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tracehound_cold::{ColdStore, EvacuationConfig, Evacuator};
use tracehound_core::evidence::{Evidence, EvidenceFactory};
use tracehound_core::quarantine::{Quarantine, QuarantineConfig};
use tracehound_core::types::{Severity, ThreatCategory, ThreatSignal};

/// Evidence of about `size` canonical bytes: JSON with mildly repetitive text, roughly
/// like request bodies (compresses about 3:1).
fn evidence(n: u64, size: usize) -> Evidence {
    let words = [
        "select", "union", "from", "where", "admin", "' or 1=1", "--", "%27",
    ];
    let mut text = String::with_capacity(size);
    let mut i = n as usize;
    while text.len() < size {
        text.push_str(words[i % words.len()]);
        text.push_str(&(i * 7919 % 1000).to_string());
        i += 1;
    }
    let payload = serde_json::json!({ "n": n, "body": text });
    let threat = ThreatSignal {
        category: ThreatCategory::Injection,
        severity: Severity::High,
    };
    EvidenceFactory::new()
        .create_from(&payload, threat, n as f64, 1 << 24)
        .expect("evidence")
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ColdStore::local(dir.path(), "tracehound/evidence").expect("store");

    let mut group = c.benchmark_group("cold_local");
    for (label, size) in [("1KiB", 1024), ("64KiB", 64 * 1024)] {
        let ev = evidence(1, size);
        group.throughput(Throughput::Bytes(ev.size() as u64));
        group.bench_function(BenchmarkId::new("put", label), |b| {
            b.to_async(&rt)
                .iter(|| async { store.put(&ev).await.expect("put") })
        });
        let sig = ev.signature().to_owned();
        group.bench_function(BenchmarkId::new("get", label), |b| {
            b.to_async(&rt)
                .iter(|| async { store.get(&sig).await.expect("get") })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("cold_evacuate");
    group.sample_size(10);
    group.throughput(Throughput::Elements(999));
    let mut round = 0u64;
    group.bench_function("1000x1KiB", |b| {
        b.iter_batched(
            || {
                round += 1;
                (0..1000)
                    .map(|i| evidence(round * 1_000_000 + i, 1024))
                    .collect::<Vec<_>>()
            },
            |batch| {
                let evac = Evacuator::start(
                    store.clone(),
                    EvacuationConfig {
                        queue_capacity: 1000,
                        ..EvacuationConfig::default()
                    },
                    rt.handle(),
                );
                let q = Arc::new(Quarantine::new(QuarantineConfig {
                    max_count: 1,
                    max_bytes: usize::MAX,
                }));
                evac.install(&q);
                for ev in batch {
                    q.insert(ev, 0.0);
                }
                let stats = rt.block_on(evac.shutdown());
                assert_eq!(stats.objects_written, 999);
            },
            criterion::BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
