//! Starting and stopping the daemon inside a tokio runtime.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tonic::transport::Server;
use tracehound_rpc::pb::tracehound_server::TracehoundServer;

use crate::config::{default_socket_path, ConfigError, DaemonConfig};
use crate::engine::{Engine, ReloadOutcome};
use crate::service::TracehoundService;
use crate::{percore, reload, socket, DaemonError};

/// HTTP/2 flow-control windows: large enough that a batch stream never waits on window
/// updates (the 64 KiB default stalls a busy stream once per round trip).
const STREAM_WINDOW: u32 = 4 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;
/// Largest request or reply message (a payload at the biggest sensible limit plus framing).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;
/// How long `shutdown` waits for open connections before dropping them.
const DRAIN: Duration = Duration::from_secs(5);

/// Entry point: see [`Daemon::start`].
#[derive(Debug)]
pub struct Daemon;

/// A daemon serving in the background. Dropping it stops the listeners (without waiting);
/// [`RunningDaemon::shutdown`] stops them and waits.
pub struct RunningDaemon {
    engine: Arc<Engine>,
    socket_path: PathBuf,
    tcp_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<Result<(), tonic::transport::Error>>>,
    helpers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningDaemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningDaemon")
            .field("socket_path", &self.socket_path)
            .field("tcp_addr", &self.tcp_addr)
            .finish_non_exhaustive()
    }
}

fn router(engine: &Arc<Engine>) -> tonic::transport::server::Router {
    let service = TracehoundServer::new(TracehoundService::new(Arc::clone(engine)))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    Server::builder()
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .tcp_nodelay(true)
        .add_service(service)
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    // A dropped sender (the RunningDaemon went away) also means stop.
    let _ = rx.wait_for(|stop| *stop).await;
}

impl Daemon {
    /// Validates `config`, binds its Unix socket (and TCP address, if any) and serves in
    /// the current tokio runtime. `config_path` is the file SIGHUP and the file watcher
    /// re-read; without it a reload re-applies the running configuration.
    pub async fn start(
        config: DaemonConfig,
        config_path: Option<PathBuf>,
    ) -> Result<RunningDaemon, DaemonError> {
        Daemon::start_with_threads(config, config_path, 0).await
    }

    /// As [`Daemon::start`], but with `threads` > 0 the Unix socket is served by that
    /// many threads of their own, each with a single-threaded runtime accepting on the
    /// socket, so a connection and its requests stay on one thread (see
    /// [`crate::percore`]). The TCP listener, reloads and shutdown stay on the current
    /// runtime.
    pub async fn start_with_threads(
        config: DaemonConfig,
        config_path: Option<PathBuf>,
        threads: usize,
    ) -> Result<RunningDaemon, DaemonError> {
        config.validate().map_err(|(field, message)| {
            DaemonError::Config(ConfigError::Invalid {
                file: config_path
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("<config>")),
                line: 0,
                field: field.to_owned(),
                message,
            })
        })?;
        let socket_path = config
            .listen
            .socket
            .clone()
            .unwrap_or_else(default_socket_path);
        let tcp = config.listen.tcp;
        let reload_settings = config.reload;
        let engine = Arc::new(
            Engine::new(config, config_path.clone()).map_err(|e| DaemonError::Apply(e.0))?,
        );
        let tcp_listener = match tcp {
            Some(addr) => Some(socket::bind_tcp(addr).await?),
            None => None,
        };
        let unix = socket::bind_unix(&socket_path)?;
        let tcp_addr = match &tcp_listener {
            Some(l) => Some(l.local_addr().map_err(|source| DaemonError::Tcp {
                addr: tcp.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
                source,
            })?),
            None => None,
        };
        let (stop, rx) = watch::channel(false);
        let mut servers = if threads == 0 {
            vec![tokio::spawn(router(&engine).serve_with_incoming_shutdown(
                UnixListenerStream::new(unix),
                stopped(rx.clone()),
            ))]
        } else {
            percore::serve_unix(unix, threads, || router(&engine), rx.clone())
                .map_err(|source| DaemonError::Socket {
                    path: socket_path.clone(),
                    what: "start the serving threads".to_owned(),
                    source,
                })?
                .handles
        };
        if let Some(l) = tcp_listener {
            servers.push(tokio::spawn(router(&engine).serve_with_incoming_shutdown(
                TcpListenerStream::new(l),
                stopped(rx.clone()),
            )));
        }
        let mut helpers = vec![reload::on_sighup(Arc::clone(&engine), rx.clone())?];
        helpers.push(crate::lifecycle_task::spawn(
            Arc::clone(&engine),
            rx.clone(),
        ));
        if let (true, Some(path)) = (reload_settings.watch, &config_path) {
            helpers.push(reload::watch_file(
                Arc::clone(&engine),
                path,
                Duration::from_millis(reload_settings.debounce_ms),
                rx,
            )?);
        }
        tracing::info!(socket = %socket_path.display(), tcp = ?tcp_addr, "tracehoundd listening");
        Ok(RunningDaemon {
            engine,
            socket_path,
            tcp_addr,
            stop,
            servers,
            helpers,
        })
    }
}

impl RunningDaemon {
    /// The Unix socket clients connect to (`tracehound_rpc::connect(path)`).
    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }

    /// The bound loopback TCP address (with the real port when 0 was asked), if any.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// The engine behind the service (counters, configuration, reloads).
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Reloads the configuration file now, as SIGHUP does.
    pub fn reload(&self) -> Result<ReloadOutcome, ConfigError> {
        reload::reload_logged(&self.engine, "request")
    }

    /// Stops accepting, lets open connections finish (up to a few seconds), stops the
    /// reload helpers and removes the socket file.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        // One deadline for every serving thread: they drain at the same time, so a stuck
        // connection on each must not add up to one drain per thread.
        let deadline = tokio::time::Instant::now() + DRAIN;
        for server in self.servers.drain(..) {
            let abort = server.abort_handle();
            match tokio::time::timeout_at(deadline, server).await {
                Ok(Ok(Err(e))) => tracing::warn!("server ended with an error: {e}"),
                Ok(_) => {}
                Err(_) => abort.abort(),
            }
        }
        for helper in self.helpers.drain(..) {
            helper.abort();
        }
        // Every request has been answered: let the notification sinks deliver what they
        // hold (closing open coalescing windows), for at most `notify.shutdown_grace_ms`.
        if self.engine.notifications().is_some() {
            let engine = Arc::clone(&self.engine);
            let _ = tokio::task::spawn_blocking(move || {
                if let Some(n) = engine.notifications() {
                    n.shutdown();
                }
            })
            .await;
        }
        // Let a lifecycle run in progress finish its current action (bounded).
        crate::lifecycle_task::drain(&self.engine).await;
        // Write what is queued for cold storage (its audit records are already chained).
        if let Some(cold) = self.engine.cold() {
            if let Some(stats) = cold.shutdown().await {
                tracing::info!(
                    written = stats.objects_written,
                    failures = stats.failures,
                    dropped = stats.dropped(),
                    "cold storage writer stopped"
                );
            }
        }
        // Every request has been answered: write what is left of the audit chain, sync
        // and sign a last checkpoint.
        let engine = Arc::clone(&self.engine);
        let closed = tokio::task::spawn_blocking(move || {
            if let Some(log) = engine.audit_log() {
                log.close();
            }
        });
        if let Err(e) = closed.await {
            tracing::warn!("closing the audit ledger failed: {e}");
        }
        let _ = std::fs::remove_file(&self.socket_path);
    }
}

impl Drop for RunningDaemon {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for helper in &self.helpers {
            helper.abort();
        }
        if let Some(n) = self.engine.notifications() {
            n.notifier().request_stop();
        }
        if let Some(log) = self.engine.audit_log() {
            log.request_stop();
        }
        if !self.servers.is_empty() {
            let _ = std::fs::remove_file(&self.socket_path);
        }
    }
}
