//! SHA-256 of one audit-chain hash input (≈ 251 bytes): sha2 (the crate in use) against
//! aws-lc-rs, to check which is faster here.
//!
//! Run: `cargo bench -p tracehound-core --bench digest`

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use sha2::{Digest, Sha256};

fn input() -> Vec<u8> {
    let mut s = String::from(
        r#"{"id":"018bcfe5-6800-733c-8b71-81aa855932cb-5b7f69b3","signature":"injection:"#,
    );
    s.push_str(&"ab".repeat(32));
    s.push_str(r#"","timestamp":1700000000000,"previousHash":""#);
    s.push_str(&"0".repeat(64));
    s.push_str("\"}");
    s.into_bytes()
}

fn digest(c: &mut Criterion) {
    let data = input();
    println!("input: {} bytes", data.len());
    let mut g = c.benchmark_group("sha256_audit_input");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sha2", |b| {
        b.iter(|| <[u8; 32]>::from(Sha256::digest(black_box(&data))))
    });
    g.bench_function("aws_lc_rs", |b| {
        b.iter(|| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, black_box(&data)))
    });
    g.finish();
}

criterion_group!(benches, digest);
criterion_main!(benches);
