//! Per-request cost of the layer in process, without sockets: a hello-world axum router
//! called through `oneshot`, bare, behind a layer that does nothing (axum's own cost of
//! `Router::layer`), and behind the layer (fast path without a detector, and the boxed
//! slow path with a detector that finds nothing). On a busy machine this is the
//! steadier figure; `scripts/bench-layer` measures the same over loopback with wrk.
//!
//! `cargo bench -p tracehound-tower --bench layer`

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use tower::ServiceExt as _;
use tracehound_tower::{LayerConfig, TracehoundLayer};

mod fixture;

use fixture::{agent, request, FindsNothing};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let hello = || Router::new().route("/", get(|| async { "Hello, world!" }));
    let layer = TracehoundLayer::new(agent(), LayerConfig::default());
    let apps = [
        ("bare", hello()),
        // What any layer costs through `Router::layer` (axum boxes the layered route).
        (
            "identity_layer",
            hello().layer(tower::layer::util::Identity::new()),
        ),
        ("layer", hello().layer(layer.clone())),
        (
            "layer+detector",
            hello().layer(
                TracehoundLayer::new(agent(), LayerConfig::default())
                    .with_detector(Arc::new(FindsNothing)),
            ),
        ),
    ];
    let mut group = c.benchmark_group("hello_world");
    for (name, app) in apps {
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let response = app.clone().oneshot(request()).await;
                    assert!(matches!(response, Ok(ref r) if r.status() == 200));
                })
            })
        });
    }
    group.finish();
    assert!(layer.stats().passed > 0);
}

criterion_group!(benches, bench);
criterion_main!(benches);
