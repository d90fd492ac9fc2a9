//! `tracehoundd`: the Tracehound daemon.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Parser;
use tracehound_daemon::{Daemon, DaemonConfig};

/// mimalloc rather than glibc's malloc: the notifier, ledger and evacuation threads free
/// what intercepting threads allocated, and glibc serialises those frees on the
/// allocating thread's arena lock (`tracehound/notify/benches/hanging_sinks.rs` measures
/// both allocators; see docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Tracehound as a daemon: gRPC over a Unix socket (0600) and optionally loopback TCP.
#[derive(Debug, Parser)]
#[command(name = "tracehoundd", version)]
struct Args {
    /// TOML configuration file (reloaded on SIGHUP and when it changes).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Validate the configuration and exit (0: valid; 1: the error, with file, line and field).
    #[arg(long, requires = "config")]
    check_config: bool,
    /// Unix socket path (overrides `listen.socket`).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Also listen on this loopback TCP address (overrides `listen.tcp`).
    #[arg(long, value_name = "127.0.0.1:PORT")]
    listen: Option<SocketAddr>,
    /// Threads serving the Unix socket, each a single-threaded runtime accepting on it
    /// (a connection and its requests stay on one thread); 0: the main multi-threaded
    /// runtime serves it. Default: half the cores, at least one — the socket's callers
    /// run on the same machine and need the other half.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
}

fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only for a terminal: logs written to files stay greppable.
        .with_ansi(std::io::stderr().is_terminal());
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logs(args.log_json);
    let mut config = match &args.config {
        Some(path) => DaemonConfig::load(path)?,
        None => DaemonConfig::default(),
    };
    if args.check_config {
        println!("configuration OK");
        return Ok(());
    }
    if let Some(socket) = args.socket {
        config.listen.socket = Some(socket);
    }
    if let Some(addr) = args.listen {
        if !addr.ip().is_loopback() {
            bail!("--listen {addr}: tracehoundd only listens on loopback addresses");
        }
        config.listen.tcp = Some(addr);
    }
    let threads = args.threads.unwrap_or_else(|| {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        (cores / 2).max(1)
    });
    let daemon = Daemon::start_with_threads(config, args.config.clone(), threads)
        .await
        .context("starting tracehoundd")?;
    println!("listening on {}", daemon.socket_path().display());
    if let Some(addr) = daemon.tcp_addr() {
        println!("listening on http://{addr}");
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    daemon.shutdown().await;
    Ok(())
}
