//! gzip codec benchmarks, comparable with v1's table in spec §27.2 (case d).
//!
//! Run: `cargo bench -p tracehound-core --bench codec`
//! (quick look: append `-- --warm-up-time 1 --measurement-time 3`).
//!
//! Payloads:
//! - `json_like_1k`: v1's "JSON-like text" — repeated `{"k<n>":"v<base36 n>"},` chunks,
//!   cut to 1 024 bytes (v1 measured 21 879 encode+decode/s on it);
//! - `request_1k`: a 1 KB canonical-JSON scent payload as an HTTP adapter would capture
//!   it (method, path, headers, query with an SQL-injection string, JSON body);
//! - `random_1k`: 1 024 bytes of v1's `lcg32` (seed 7), incompressible;
//! - `json_like_64k` / `random_64k`: the same generators at 65 536 bytes.
//!
//! Groups: `gzip_encode_decode` (v1's level 6, the default), `gzip_1k_json_like` (encode,
//! decode, integrity envelope), `gzip_level_encode_decode` (the 1 KB payloads at levels
//! 1..=6, sizes printed: the hot path's level-1 trade-off), `gzip_fixed_cost` (an empty
//! encode: the compressor reset). Then a plain loop prints wall and on-CPU rates of 1 KB
//! encode+decode at levels 1 and 6.

mod support;

use std::time::Instant;

use criterion::{black_box, criterion_group, BenchmarkId, Criterion, Throughput};
use support::{lcg32, thread_cpu_ns};
use tracehound_core::codec::{
    decode_with_integrity, encode_with_integrity, verify, GzipCodec, GzipConfig,
};

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

fn json_like(len: usize) -> Vec<u8> {
    let mut s = String::new();
    let mut n = 0u64;
    while s.len() < len {
        s.push_str(&format!("{{\"k{n}\":\"v{}\"}},", base36(n * 7919)));
        n += 1;
    }
    s.truncate(len);
    s.into_bytes()
}

fn request_1k() -> Vec<u8> {
    let mut s = String::from(
        r#"{"body":{"comment":"SELECT * FROM users WHERE name = '' OR '1'='1'; --","items":[{"id":1,"qty":2},{"id":17,"qty":1}],"user":"alice"},"headers":{"accept":"application/json","accept-encoding":"gzip, deflate, br","content-type":"application/json","cookie":"session=8f14e45fceea167a5a36dedd4bea2543; theme=dark","host":"api.example.com","user-agent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36","x-forwarded-for":"203.0.113.7, 10.0.0.2","x-request-id":"018f2a4e-7c1d-7a3b-9f2e-5d6c7b8a9e0f"},"ip":"203.0.113.7","method":"POST","path":"/api/v2/orders/search","query":{"filter":"status eq 'open'","id":"1 UNION SELECT password FROM accounts","page":"3","sort":"-created"},"ts":1700000000000"#,
    );
    // Pad with a realistic trailing field up to 1 KB.
    s.push_str(",\"trace\":\"");
    let mut i = 0u64;
    while s.len() < 1022 {
        s.push_str(&base36(i * 104_729));
        i += 1;
    }
    s.truncate(1022);
    s.push_str("\"}");
    s.into_bytes()
}

fn payloads() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("json_like_1k", json_like(1024)),
        ("request_1k", request_1k()),
        ("random_1k", lcg32(7, 1024)),
        ("json_like_64k", json_like(65_536)),
        ("random_64k", lcg32(7, 65_536)),
    ]
}

fn roundtrip(c: &mut Criterion) {
    let codec = GzipCodec::new();
    let mut g = c.benchmark_group("gzip_encode_decode");
    g.throughput(Throughput::Elements(1));
    for (name, data) in payloads() {
        let z = codec.encode(&data).unwrap_or_default();
        println!("{name}: {} -> {} bytes", data.len(), z.len());
        g.bench_with_input(BenchmarkId::from_parameter(name), &data, |b, d| {
            b.iter(|| {
                let z = codec.encode(black_box(d)).unwrap_or_default();
                codec.decode(&z).unwrap_or_default()
            })
        });
    }
    g.finish();
}

fn one_way(c: &mut Criterion) {
    let codec = GzipCodec::new();
    let data = json_like(1024);
    let z = codec.encode(&data).unwrap_or_default();
    let mut g = c.benchmark_group("gzip_1k_json_like");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode", |b| {
        b.iter(|| codec.encode(black_box(&data)).unwrap_or_default())
    });
    g.bench_function("decode", |b| {
        b.iter(|| codec.decode(black_box(&z)).unwrap_or_default())
    });
    g.bench_function("integrity_encode_verify_decode", |b| {
        b.iter(|| {
            let e = encode_with_integrity(&codec, black_box(&data)).ok();
            e.filter(verify)
                .and_then(|e| decode_with_integrity(&codec, &e).ok())
        })
    });
    g.finish();
}

/// Encode+decode of the 1 KB payloads at each level 1..=6 (level 6 is v1's), with the
/// compressed sizes printed, so the speed/ratio trade-off of a lower level is measured.
fn levels(c: &mut Criterion) {
    let mut g = c.benchmark_group("gzip_level_encode_decode");
    g.throughput(Throughput::Elements(1));
    for (name, data) in payloads().into_iter().filter(|(n, _)| n.ends_with("_1k")) {
        for level in 1..=6u32 {
            let codec = GzipCodec::with_config(GzipConfig {
                level,
                ..GzipConfig::default()
            });
            let z = codec.encode(&data).unwrap_or_default();
            println!(
                "{name} level {level}: {} -> {} bytes (ratio {:.3})",
                data.len(),
                z.len(),
                z.len() as f64 / data.len() as f64
            );
            g.bench_with_input(
                BenchmarkId::new(name, format!("level{level}")),
                &data,
                |b, d| {
                    b.iter(|| {
                        let z = codec.encode(black_box(d)).unwrap_or_default();
                        codec.decode(&z).unwrap_or_default()
                    })
                },
            );
        }
    }
    g.finish();
}

/// The fixed part of an encode: resetting a pooled zlib-rs compressor (its reset clears
/// the 64 Ki-entry hash head, 128 KiB) and compressing an empty input.
fn reset_cost(c: &mut Criterion) {
    let mut g = c.benchmark_group("gzip_fixed_cost");
    for level in [1u32, 6] {
        let codec = GzipCodec::with_config(GzipConfig {
            level,
            ..GzipConfig::default()
        });
        g.bench_function(format!("encode_empty_level{level}"), |b| {
            b.iter(|| codec.encode(black_box(b"")).unwrap_or_default())
        });
    }
    g.finish();
}

criterion_group!(benches, roundtrip, one_way, levels, reset_cost);
/// Encode+decode of the 1 KB payloads at levels 1 and 6 in a plain loop, reporting
/// wall-clock and on-CPU rates (the machine is shared; on-CPU time excludes waiting).
fn report(n: u32) {
    for (name, data) in payloads().into_iter().filter(|(n, _)| n.ends_with("_1k")) {
        for level in [1u32, 6] {
            let codec = GzipCodec::with_config(GzipConfig {
                level,
                ..GzipConfig::default()
            });
            let (t0, c0) = (Instant::now(), thread_cpu_ns());
            for _ in 0..n {
                let z = codec.encode(black_box(&data)).unwrap_or_default();
                black_box(codec.decode(&z).unwrap_or_default());
            }
            let wall = t0.elapsed().as_secs_f64();
            let cpu = thread_cpu_ns().zip(c0).map(|(a, b)| (a - b) as f64 / 1e9);
            let size = codec.encode(&data).map_or(0, |z| z.len());
            println!(
                "gzip {name} level {level}: {} -> {size} bytes; encode+decode {:.0}/s wall, {} on-CPU",
                data.len(),
                f64::from(n) / wall,
                cpu.map_or("n/a".to_owned(), |c| format!("{:.0}/s", f64::from(n) / c)),
            );
        }
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo bench` passes --bench; under `cargo test --benches` run a token-sized loop.
    let benching = std::env::args().any(|a| a == "--bench");
    report(if benching { 200_000 } else { 10 });
}
