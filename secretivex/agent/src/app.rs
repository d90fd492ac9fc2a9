//! The `secretivex-agent` program: parse the command line, load the configuration and
//! its key files, bind the socket (or take systemd's), go to the background (or not),
//! harden, and serve until told to stop; SIGHUP and watched files reload the
//! configuration.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secretivex_agent::metrics_http::{serve_metrics, MetricsListen, MetricsListener};
use secretivex_agent::reload::{self, Reloader};
use secretivex_agent::socket::{self, SocketFileId};
use secretivex_agent::{activation, harden, Agent, Config};
use secretivex_config::{Env, Request};
use tokio::signal::unix::{signal, SignalKind};

use crate::cli::Args;
use crate::daemon::{self, Forked};

/// How often a COMMAND-mode agent checks that the command's process is still there.
const PARENT_CHECK: Duration = Duration::from_millis(500);

/// Runs the program; the error is printed by `main`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let shell = args.shell();
    if args.kill {
        return daemon::kill_agent(shell);
    }
    init_logging(args.debug);
    let request = Request {
        config_flag: args.config.clone(),
        profile_flag: args.profile,
        flags: args.agent_overrides(),
        env: Env::from_process(),
    };
    if args.check_config || args.print_config {
        // Everything is validated, key files included, but nothing is unlocked.
        let prepared = reload::prepare(&request, &args.keys, &[], None, false)?;
        if args.print_config {
            print_flush(&prepared.loaded.to_toml()?)?;
        } else {
            let file = prepared.loaded.file.as_ref().map_or_else(
                || "no configuration file".to_string(),
                |f| f.display().to_string(),
            );
            eprintln!("secretivex-agent: configuration OK ({file})");
        }
        return Ok(());
    }
    // No ptrace or core dumps from here on, before any key is in memory. (Reset by exec,
    // so a COMMAND run later is unaffected.)
    harden::disable_tracing();

    // An invalid configuration stops the start-up here, before any socket exists;
    // encrypted `unlock = "start"` keys ask askpass now, before the fork, as `--key` did.
    let prepared = reload::prepare(&request, &args.keys, &[], None, true)?;
    let settings = prepared.loaded.agent().clone();
    let watch_files = prepared.loaded.watch();
    let socket_path = absolute(
        settings
            .socket
            .clone()
            .unwrap_or_else(socket::default_socket_path),
    )?;
    let backlog = settings
        .backlog
        .map_or(secretivex_agent::socket::DEFAULT_BACKLOG, |b| b.get());
    let (listener, cleanup) = match activation::inherited_listener().context("socket activation")? {
        Some(listener) => (listener, None),
        None => {
            let listener = socket::bind_listener(&socket_path, backlog)
                .with_context(|| format!("cannot listen on {}", socket_path.display()))?;
            let socket_id = SocketFileId::of(&socket_path).context("stat the socket")?;
            // From here on, any early return removes the socket it leaves behind.
            let cleanup = SocketCleanup {
                id: socket_id,
                path: socket_path.clone(),
                armed: true,
            };
            (listener, Some(cleanup))
        }
    };

    let mut watch_parent = None;
    if args.stays_in_foreground() {
        print_flush(&daemon::export_lines(
            shell,
            &socket_path,
            std::process::id(),
        ))?;
    } else if !args.command.is_empty() {
        let command_pid = std::process::id();
        match daemon::fork()? {
            Forked::Parent(agent_pid) => {
                // The socket belongs to the agent child now.
                if let Some(c) = cleanup {
                    c.disarm();
                }
                drop(listener);
                drop(prepared);
                let err = daemon::exec_command(&args.command, &socket_path, agent_pid);
                return Err(err);
            }
            Forked::Child => {
                daemon::detach()?;
                watch_parent = Some(command_pid);
            }
        }
    } else {
        match daemon::fork()? {
            Forked::Parent(agent_pid) => {
                // The socket belongs to the agent child now.
                if let Some(c) = cleanup {
                    c.disarm();
                }
                drop(prepared);
                print_flush(&daemon::export_lines(shell, &socket_path, agent_pid))?;
                return Ok(());
            }
            Forked::Child => daemon::detach()?,
        }
    }

    // The agent process proper.
    harden::disable_core_dumps();
    let nofile = harden::raise_nofile_limit();
    tracing::debug!(?nofile, "file descriptor limit");

    let config = Config {
        default_lifetime: settings.default_lifetime.map(|d| d.get()),
        signer_threads: settings
            .max_signers
            .map_or_else(num_cores, |n| n.get() as usize),
        sign_timeout: settings.sign_timeout.map(|d| d.get()),
        max_connections: settings
            .max_connections
            .map(|n| usize::try_from(n.get()).unwrap_or(usize::MAX)),
        idle_timeout: settings.idle_timeout.map(|d| d.get()),
        ..Config::default()
    };
    let metrics_at: Option<MetricsListen> = settings
        .metrics_listen
        .as_ref()
        .map(|l| l.as_str().parse())
        .transpose()
        .map_err(|e| anyhow::anyhow!("agent.metrics_listen: {e}"))?;
    // One worker per core (tokio's default, made explicit): cheap signatures run on the
    // workers themselves, so more would only oversubscribe the cores.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(num_cores())
        .enable_all()
        .build()
        .context("start the runtime")?;
    let shown_path = socket_path.clone();
    let extra_keys = args.keys.clone();
    let pkcs11_settings = pkcs11_settings(&args, config.sign_timeout)?;
    let result = runtime.block_on(async move {
        let listener = tokio::net::UnixListener::from_std(listener).context("register socket")?;
        let agent = Agent::try_new(config).context("start signing threads")?;
        agent.pkcs11().configure(pkcs11_settings);
        // Policy, audit trail and keys: the same path a reload takes. (The audit writer
        // starts here, after the fork, so its thread belongs to the agent process.)
        let reloader = Reloader::new(agent.clone(), request, extra_keys);
        let pkcs11_modules = prepared.loaded.config.pkcs11.clone();
        reloader.apply(prepared).context("start-up configuration")?;
        secretivex_agent::pkcs11_config::start(&agent, pkcs11_modules);
        let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(1);
        tokio::spawn(reloader.clone().run(reload_rx));
        if watch_files {
            let (paths, tx) = (reloader.watched(), reload_tx.clone());
            tokio::spawn(async move {
                if let Err(e) = secretivex_agent::watch::watch_files(paths, tx).await {
                    tracing::error!(error = %e, "cannot watch the configuration files");
                }
            });
        }
        let metrics_task = match &metrics_at {
            Some(at) => {
                let l = MetricsListener::bind(at)
                    .await
                    .with_context(|| format!("cannot serve metrics on {at:?}"))?;
                tracing::info!(listen = ?at, "metrics listening");
                Some(tokio::spawn(serve_metrics(l, agent.clone())))
            }
            None => None,
        };
        tracing::info!(socket = %shown_path.display(), "agent listening");
        let shutdown = shutdown_signal(agent.clone(), watch_parent, reload_tx)?;
        activation::notify_ready();
        // The accept loop runs as a task on a worker, not on this thread: connection tasks
        // it spawns then start on a worker's local queue, without a cross-thread wake-up.
        let served = tokio::spawn(secretivex_agent::serve(listener, agent, shutdown)).await;
        if let Some(task) = metrics_task {
            task.abort();
        }
        if let Some(MetricsListen::Unix(path)) = &metrics_at {
            let _ = std::fs::remove_file(path);
        }
        served.context("accept loop failed")
    });
    drop(cleanup);
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
}

/// Removes the agent's socket file when dropped, unless disarmed.
struct SocketCleanup {
    id: SocketFileId,
    path: PathBuf,
    armed: bool,
}

impl SocketCleanup {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for SocketCleanup {
    fn drop(&mut self) {
        if self.armed {
            self.id.remove_if_same(&self.path);
        }
    }
}

fn init_logging(debug: bool) {
    let default = if debug { "debug" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn print_flush(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).context("write to stdout")?;
    out.flush().context("flush stdout")?;
    Ok(())
}

/// Makes the socket path absolute, so it still names the socket after `chdir("/")`.
fn absolute(path: PathBuf) -> anyhow::Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path);
    }
    Ok(std::env::current_dir()
        .context("current directory")?
        .join(path))
}

/// Logs the main metrics at warn level, so it shows with the default log filter.
fn log_snapshot(agent: &Agent, signal: &str) {
    let s = agent.metrics().snapshot();
    tracing::warn!(
        signal,
        signs = s.signs,
        failures = s.failures,
        connections_current = s.connections_current,
        connections_total = s.connections_total,
        connections_refused = s.connections_refused,
        "metrics snapshot"
    );
}

/// Cores available to the process (2 if unknown).
fn num_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// Completes on SIGTERM or SIGINT, or when the COMMAND's process is gone. SIGHUP asks
/// for a configuration reload (queued on `reload`; a burst of signals makes one reload).
/// SIGUSR1 logs a metrics snapshot and drops every key (as OpenSSH 10.0 does) without
/// stopping; SIGUSR2 only logs the snapshot.
fn shutdown_signal(
    agent: Arc<Agent>,
    watch_parent: Option<u32>,
    reload: tokio::sync::mpsc::Sender<()>,
) -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let mut usr1 = signal(SignalKind::user_defined1()).context("SIGUSR1 handler")?;
    let mut usr2 = signal(SignalKind::user_defined2()).context("SIGUSR2 handler")?;
    Ok(async move {
        let mut tick = tokio::time::interval(PARENT_CHECK);
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading the configuration");
                    // Full means a reload is already queued; it will read the new files.
                    let _ = reload.try_send(());
                }
                _ = usr1.recv() => {
                    log_snapshot(&agent, "SIGUSR1");
                    let n = agent.keys().remove_all();
                    tracing::info!(removed = n, "SIGUSR1: removed all keys");
                }
                _ = usr2.recv() => log_snapshot(&agent, "SIGUSR2"),
                _ = tick.tick(), if watch_parent.is_some() => {
                    if let Some(parent) = watch_parent {
                        if !daemon::parent_alive(parent) {
                            tracing::info!("command exited; agent stopping");
                            break;
                        }
                    }
                }
            }
        }
    })
}

/// The PKCS#11 settings from the command line (flags checked by clap already).
fn pkcs11_settings(
    args: &Args,
    sign_timeout: Option<Duration>,
) -> anyhow::Result<secretivex_agent::pkcs11_store::Pkcs11Settings> {
    use secretivex_agent::pkcs11_store::{parse_allow_list, Pkcs11Settings};
    let mut s = Pkcs11Settings {
        allow_remote: args.pkcs11_allow_remote,
        sign_timeout,
        ..Pkcs11Settings::default()
    };
    if let Some(list) = &args.pkcs11_allow {
        s.allow = parse_allow_list(list).map_err(|e| anyhow::anyhow!("-P: {e}"))?;
    }
    if let Some(helper) = &args.pkcs11_helper {
        s.helper = helper.clone();
    }
    if let Some(n) = args.pkcs11_sessions {
        s.sessions = n as usize;
    }
    if let Some(ms) = args.pkcs11_poll_ms {
        s.poll = Duration::from_millis(ms);
    }
    Ok(s)
}
