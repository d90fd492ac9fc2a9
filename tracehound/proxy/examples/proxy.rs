//! `tracehound proxy` without the rest of the CLI: the same arguments, the same
//! [`tracehound_proxy::run`]. Used by `scripts/bench-proxy` so the measurement does not
//! depend on the CLI crate.
//!
//! `cargo run --release -p tracehound-proxy --example proxy -- --listen 127.0.0.1:8080 --upstream http://127.0.0.1:3000`

use clap::Parser;
use tracehound_proxy::ProxyArgs;

#[derive(Debug, Parser)]
#[command(name = "proxy", about = "Tracehound reverse proxy")]
struct Cli {
    #[command(flatten)]
    args: ProxyArgs,
}

fn main() -> anyhow::Result<()> {
    tracehound_proxy::run(Cli::parse().args)
}
