//! Ledger benchmarks: appends under each fsync policy (on the file system holding the
//! target directory, not tmpfs), proof generation and verification on a large tree,
//! checkpoint signing and verification, and reopening (tree rebuild).
//!
//! `CARGO_TARGET_DIR=target/ledger cargo bench -p tracehound-ledger --bench ledger`

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use tracehound_core::audit::RecordKind;
use tracehound_ledger::merkle::{leaf_hash, verify_consistency, verify_inclusion, MerkleTree};
use tracehound_ledger::{
    Checkpoint, CheckpointSigner, FsyncPolicy, Ledger, LedgerConfig, NewRecord,
};

/// Temporary directories next to the build output, so fsync hits a real disk.
fn bench_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(PathBuf::from(env!("CARGO_TARGET_TMPDIR"))).expect("temp dir")
}

const SIG: &str = "injection:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn appends(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    g.sample_size(20).measurement_time(Duration::from_secs(8));
    for (name, fsync) in [
        ("every_append", FsyncPolicy::EveryAppend),
        ("batch_64", FsyncPolicy::Batch(64)),
        (
            "interval_10ms",
            FsyncPolicy::Interval(Duration::from_millis(10)),
        ),
        ("never_sync", FsyncPolicy::Batch(u32::MAX)),
    ] {
        let dir = bench_dir();
        let (mut ledger, _) = Ledger::open(
            dir.path(),
            LedgerConfig {
                max_segment_bytes: 64 << 20,
                fsync,
            },
        )
        .expect("open");
        let mut i = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                let id = format!("018bcfe5-6800-733c-8b71-{i:012x}-5b7f69b3");
                black_box(
                    ledger
                        .append(&NewRecord {
                            kind: RecordKind::Neutralization,
                            id: &id,
                            signature: SIG,
                            timestamp: 1_700_000_000_000.0 + i as f64,
                        })
                        .expect("append"),
                )
            })
        });
    }
    g.finish();
}

fn proofs(c: &mut Criterion) {
    const N: u64 = 1_000_003; // ragged: not a power of two
    let tree = MerkleTree::from_leaf_hashes((0..N).map(|i| leaf_hash(&i.to_le_bytes())));
    let root = tree.root(N).expect("root");
    let mut g = c.benchmark_group("proof_1m");
    let mut i = 0u64;
    g.bench_function("root_at_ragged_size", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            black_box(tree.root(N - i))
        })
    });
    g.bench_function("inclusion_generate", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            black_box(tree.inclusion_proof(i, N).expect("proof"))
        })
    });
    let proof = tree.inclusion_proof(123_457, N).expect("proof");
    let leaf = tree.leaf(123_457).expect("leaf");
    g.bench_function("inclusion_verify", |b| {
        b.iter(|| verify_inclusion(black_box(&leaf), 123_457, N, &proof, &root).expect("verifies"))
    });
    g.bench_function("consistency_generate", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            black_box(tree.consistency_proof(i + 1, N).expect("proof"))
        })
    });
    let first = 654_321;
    let r1 = tree.root(first).expect("root");
    let cproof = tree.consistency_proof(first, N).expect("proof");
    g.bench_function("consistency_verify", |b| {
        b.iter(|| verify_consistency(first, N, black_box(&r1), &root, &cproof).expect("verifies"))
    });
    g.bench_function("tree_build_1m_leaves", |b| {
        b.iter_batched(
            || {
                (0..N)
                    .map(|i| leaf_hash(&i.to_le_bytes()))
                    .collect::<Vec<_>>()
            },
            |leaves| black_box(MerkleTree::from_leaf_hashes(leaves).len()),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn checkpoints(c: &mut Criterion) {
    let signer =
        CheckpointSigner::from_pkcs8("bench", &CheckpointSigner::generate_pkcs8().expect("key"))
            .expect("signer");
    let verifier = signer.verifier();
    let cp = Checkpoint {
        origin: "tracehound.example/audit".into(),
        size: 1_000_003,
        root: [9; 32],
    };
    let note = signer.sign(&cp).expect("sign");
    let mut g = c.benchmark_group("checkpoint");
    g.bench_function("sign", |b| {
        b.iter(|| black_box(signer.sign(&cp).expect("sign")))
    });
    g.bench_function("verify", |b| {
        b.iter(|| black_box(verifier.verify(&note).expect("verify")))
    });
    g.finish();
}

fn reopen(c: &mut Criterion) {
    let dir = bench_dir();
    let cfg = LedgerConfig {
        max_segment_bytes: 64 << 20,
        fsync: FsyncPolicy::Batch(u32::MAX),
    };
    let (mut ledger, _) = Ledger::open(dir.path(), cfg).expect("open");
    for i in 0..100_000u64 {
        let id = format!("018bcfe5-6800-733c-8b71-{i:012x}-5b7f69b3");
        ledger
            .append(&NewRecord {
                kind: RecordKind::Neutralization,
                id: &id,
                signature: SIG,
                timestamp: i as f64,
            })
            .expect("append");
    }
    ledger.sync().expect("sync");
    drop(ledger);
    let mut g = c.benchmark_group("open");
    g.sample_size(10);
    g.bench_function("reopen_100k_entries", |b| {
        b.iter(|| black_box(Ledger::open(dir.path(), cfg).expect("open").0.len()))
    });
    g.bench_function("verify_100k_entries", |b| {
        let (ledger, _) = Ledger::open(dir.path(), cfg).expect("open");
        b.iter(|| black_box(ledger.verify().expect("verify").entries))
    });
    g.finish();
}

criterion_group!(benches, appends, proofs, checkpoints, reopen);
criterion_main!(benches);
