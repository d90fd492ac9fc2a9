//! Per-request cost of the layer in process, without sockets: a hello-world axum router
//! called through `oneshot`, bare, behind a layer that does nothing (axum's own cost of
//! `Router::layer`), and behind the layer (fast path without a detector, and the boxed
//! slow path with a detector that finds nothing). On a busy machine this is the
//! steadier figure; `scripts/bench-layer` measures the same over loopback with wrk.
//!
//! `cargo bench -p tracehound-tower --bench layer`

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use http::Request;
use tower::ServiceExt as _;
use tracehound_core::agent::{Agent, AgentConfig};
use tracehound_tower::{Detector, DetectorFuture, LayerConfig, RequestView, TracehoundLayer};

struct FindsNothing;

impl Detector for FindsNothing {
    fn inspect<'a>(&'a self, _request: &'a RequestView<'a>) -> DetectorFuture<'a> {
        Box::pin(async { Ok(None) })
    }
}

fn agent() -> Arc<Agent> {
    let mut config = AgentConfig::default();
    // One source sends everything: it must not be rate limited, yet every request is
    // still checked and logged (a 1 s window keeps the log short).
    config.rate_limit.max_requests = 1 << 40;
    config.rate_limit.window_ms = 1000;
    Arc::new(Agent::new(config).expect("valid agent config"))
}

fn request() -> Request<Body> {
    let peer: SocketAddr = ([127, 0, 0, 1], 40000).into();
    let mut req = Request::get("/")
        .body(Body::empty())
        .expect("valid request");
    req.extensions_mut().insert(ConnectInfo(peer));
    req
}

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
