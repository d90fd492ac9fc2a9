//! Throughput of the audit trail: the agent-side `record` call, and the writer end to end
//! (record a burst, then wait until it is written and synced).
//!
//! `cargo bench -p secretivex-audit --bench record`

use std::time::{Duration, Instant, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use secretivex_audit::{AuditHandle, AuditSpec, Decision, Event, Outcome};

/// A sign decision shaped like the agent's: every field known.
fn decision() -> Decision {
    Decision {
        time: SystemTime::now(),
        event: Event::Sign,
        peer_uid: 1000,
        peer_pid: Some(123_456),
        peer_exe: Some("/usr/bin/ssh".to_owned()),
        key_fingerprint: Some("SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU".to_owned()),
        dest_host_key: Some("SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s".to_owned()),
        dest_user: Some("deploy".to_owned()),
        forwarded: false,
        outcome: Outcome::Allow,
        rule: Some("fleet".to_owned()),
        latency: Duration::from_micros(42),
        data_sha256: Some([7; 32]),
    }
}

/// Decisions per burst: the agent's target rate for one second.
const BURST: u64 = 50_000;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = AuditSpec {
        queue: 65_536,
        keep: 2,
        ..AuditSpec::new(dir.path().join("audit.jsonl"))
    };
    let handle = AuditHandle::open(&spec).expect("open audit log");
    let template = decision();

    let mut group = c.benchmark_group("audit");
    group.throughput(Throughput::Elements(BURST));
    group.sample_size(20);
    // Writer throughput: a burst that fits the queue, then flush (written and fdatasync'd).
    group.bench_function("record_50k_then_flush", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                for _ in 0..BURST {
                    handle.record(template.clone());
                }
                handle.flush();
            }
            start.elapsed()
        })
    });
    group.finish();
    let stats = handle.stats();
    assert_eq!(stats.dropped, 0, "bursts fit the queue: {stats:?}");

    // The caller's cost alone (the writer drains concurrently; drops are reported below).
    let mut group = c.benchmark_group("audit");
    group.throughput(Throughput::Elements(1));
    group.bench_function("record_call", |b| {
        b.iter(|| handle.record(template.clone()));
    });
    group.finish();
    handle.flush();
    let after = handle.stats();
    eprintln!(
        "record_call: written {} dropped {} (queue {})",
        after.written - stats.written,
        after.dropped - stats.dropped,
        spec.queue
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
