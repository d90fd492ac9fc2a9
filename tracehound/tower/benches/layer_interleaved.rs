//! The layer's added cost per request, measured so that a busy machine hurts every
//! variant alike: the variants of `benches/layer.rs` run in short alternating batches
//! (round robin, many rounds), and each variant's best and median batch are reported in
//! ns per request. The minimum is the figure least disturbed by other processes.
//!
//! `cargo bench -p tracehound-tower --bench layer_interleaved [-- ROUNDS BATCH]`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use axum::routing::get;
use axum::Router;
use tower::ServiceExt as _;
use tracehound_tower::{LayerConfig, TracehoundLayer};

mod fixture;

use fixture::{agent, request, FindsNothing};

fn main() {
    // `cargo bench` passes `--bench`; numbers after it are ROUNDS and BATCH.
    let numbers: Vec<usize> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    let rounds = numbers.first().copied().unwrap_or(200);
    let batch = numbers.get(1).copied().unwrap_or(2000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let hello = || Router::new().route("/", get(|| async { "Hello, world!" }));
    let apps = [
        ("bare", hello()),
        (
            "identity_layer",
            hello().layer(tower::layer::util::Identity::new()),
        ),
        (
            "layer",
            hello().layer(TracehoundLayer::new(agent(), LayerConfig::default())),
        ),
        (
            "layer+detector",
            hello().layer(
                TracehoundLayer::new(agent(), LayerConfig::default())
                    .with_detector(Arc::new(FindsNothing)),
            ),
        ),
    ];
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); apps.len()];
    for _ in 0..rounds {
        for (i, (_, app)) in apps.iter().enumerate() {
            let start = Instant::now();
            rt.block_on(async {
                for _ in 0..batch {
                    let response = app.clone().oneshot(request()).await;
                    assert!(matches!(response, Ok(ref r) if r.status() == 200));
                    black_box(response.ok());
                }
            });
            let ns = start.elapsed().as_nanos() as f64 / batch as f64;
            if let Some(s) = samples.get_mut(i) {
                s.push(ns);
            }
        }
    }
    println!("{rounds} rounds of {batch} requests per variant, ns per request");
    println!("| variant | best batch | median batch |");
    println!("|---|---|---|");
    for ((name, _), s) in apps.iter().zip(samples.iter_mut()) {
        s.sort_by(f64::total_cmp);
        let best = s.first().copied().unwrap_or(f64::NAN);
        let median = s.get(s.len() / 2).copied().unwrap_or(f64::NAN);
        println!("| {name} | {best:.0} | {median:.0} |");
    }
}
