//! `tracehound proxy`: the blocking entry point used by the CLI.

use anyhow::Context as _;

use crate::args::ProxyArgs;
use crate::host::HostFacts;
use crate::proxy::Proxy;

/// Runs the proxy until Ctrl-C or SIGTERM, then stops gracefully (in-flight requests
/// finish). Runs one single-threaded tokio runtime per core (the calling thread's
/// included), all accepting on the same listener, each connection served by the one with
/// the fewest open; blocks the calling thread.
pub fn run(args: ProxyArgs) -> anyhow::Result<()> {
    // Warnings (upstream failures, accept errors) are visible by default; RUST_LOG
    // overrides. A subscriber installed by the caller wins.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();

    let host = HostFacts::probe();
    let config = args.to_config_on(&host).context("invalid proxy settings")?;
    let busy_poll = match args.busy_poll_us {
        None => host.busy_poll_default().to_string(),
        Some(0) => "busy polling off (--busy-poll-us 0)".to_owned(),
        Some(us) => format!("busy polling up to {us} us (--busy-poll-us)"),
    };
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .saturating_sub(1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(async move {
        let proxy = Proxy::bind_with_workers(config, workers)
            .await
            .context("cannot start the proxy")?;
        eprintln!(
            "tracehound proxy listening on {} -> {} ({})",
            proxy.local_addr(),
            args.upstream,
            busy_poll
        );
        wait_for_stop_signal().await?;
        eprintln!("tracehound proxy stopping");
        proxy.shutdown().await;
        Ok(())
    })
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
async fn wait_for_stop_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    tokio::select! {
        ctrl_c = tokio::signal::ctrl_c() => ctrl_c.context("cannot watch SIGINT")?,
        _ = term.recv() => {}
    }
    Ok(())
}
