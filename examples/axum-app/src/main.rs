//! An axum service behind the Tracehound layer, with a toy detector.
//!
//! ```text
//! cargo run -p tracehound-example-axum -- --listen 127.0.0.1:8080
//! curl 'http://127.0.0.1:8080/search?q=%27%20OR%201=1'   # 403, quarantined
//! curl http://127.0.0.1:8080/tracehound                  # layer and agent counters
//! ```
//!
//! `--no-layer` serves the same routes without the layer, and `--no-detector` keeps the
//! layer but drops the detector: `scripts/bench-layer` compares them on `/`.

mod detector;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use clap::Parser;
use tracehound_core::agent::{Agent, AgentConfig};
use tracehound_tower::{IpCidr, LayerConfig, TracehoundLayer};

/// Command line.
#[derive(Debug, Parser)]
#[command(about = "An axum service behind the Tracehound layer, with a toy detector")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Serve without the layer (the baseline of scripts/bench-layer).
    #[arg(long)]
    no_layer: bool,
    /// Keep the layer but run no detector (threats then only come from a trusted WAF
    /// header).
    #[arg(long)]
    no_detector: bool,
    /// A proxy (address or CIDR) whose X-Forwarded-For and WAF header are believed;
    /// repeatable.
    #[arg(long = "trusted-proxy")]
    trusted_proxies: Vec<IpCidr>,
    /// Requests each client may make per window before getting 429 (v1 default 100).
    #[arg(long, default_value_t = 100)]
    rate_limit: usize,
    /// The rate-limit window in milliseconds (v1 default 60 000).
    #[arg(long, default_value_t = 60_000)]
    rate_window_ms: u64,
}

/// The layer, when there is one, for the `/tracehound` route.
#[derive(Clone)]
struct AppState {
    layer: Option<TracehoundLayer>,
}

async fn hello() -> &'static str {
    "Hello, world!"
}

async fn search(uri: Uri) -> String {
    let query = uri.query().unwrap_or("");
    format!("no results for {query:?}\n")
}

async fn login(body: Bytes) -> String {
    format!("login form of {} bytes received\n", body.len())
}

async fn counters(State(state): State<AppState>) -> impl IntoResponse {
    let body = match &state.layer {
        None => serde_json::json!({"layer": null}),
        Some(layer) => {
            let s = layer.stats();
            let a = layer.agent().stats();
            serde_json::json!({
                "layer": {
                    "requests": s.requests, "passed": s.passed, "quarantined": s.quarantined,
                    "duplicates": s.duplicates, "rate_limited": s.rate_limited,
                    "payload_too_large": s.payload_too_large,
                    "detector_flagged": s.detector_flagged, "waf_flagged": s.waf_flagged,
                    "detector_timeouts": s.detector_timeouts,
                    "detector_errors": s.detector_errors,
                    "fail_open_internal": s.fail_open_internal,
                },
                "agent": a.to_v1_json(),
                "quarantine_count": layer.agent().quarantine().stats().count,
            })
        }
    };
    (
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
}

fn app(layer: Option<TracehoundLayer>) -> Router {
    let router = Router::new()
        .route("/", get(hello))
        .route("/search", get(search))
        .route("/login", post(login))
        .route("/tracehound", get(counters))
        .with_state(AppState {
            layer: layer.clone(),
        });
    match layer {
        Some(layer) => router.layer(layer),
        None => router,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let layer = if args.no_layer {
        None
    } else {
        let mut agent_config = AgentConfig::default();
        agent_config.rate_limit.max_requests = args.rate_limit;
        agent_config.rate_limit.window_ms = args.rate_window_ms;
        let agent = Agent::new(agent_config).context("agent configuration")?;
        let config = LayerConfig {
            trusted_proxies: args.trusted_proxies.clone(),
            ..LayerConfig::default()
        };
        let layer = TracehoundLayer::new(Arc::new(agent), config);
        Some(if args.no_detector {
            layer
        } else {
            layer.with_detector(Arc::new(detector::Tautology))
        })
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr().context("listener address")?;
    eprintln!(
        "listening on http://{local} ({})",
        match (&layer, args.no_detector) {
            (None, _) => "no layer",
            (Some(_), true) => "layer, no detector",
            (Some(_), false) => "layer with the toy detector",
        }
    );
    axum::serve(
        listener,
        app(layer).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .context("server failed")
}
