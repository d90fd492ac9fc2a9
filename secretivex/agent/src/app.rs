//! The `secretivex-agent` program: parse the command line, load `--key` files, bind the
//! socket, go to the background (or not), harden, and serve until told to stop.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secretivex_agent::keystore::NewIdentity;
use secretivex_agent::metrics_http::{serve_metrics, MetricsListen, MetricsListener};
use secretivex_agent::socket::{self, SocketFileId};
use secretivex_agent::{askpass, confirm, harden, keyops, Agent, Config};
use secretivex_keys::KeyPair;
use secretivex_proto::PrivateKeyWire;
use tokio::signal::unix::{signal, SignalKind};
use zeroize::Zeroizing;

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
    // No ptrace or core dumps from here on, before any key is in memory. (Reset by exec,
    // so a COMMAND run later is unaffected.)
    harden::disable_tracing();

    let keys = load_key_files(&args.keys)?;
    let socket_path = absolute(
        args.socket
            .clone()
            .unwrap_or_else(socket::default_socket_path),
    )?;
    let listener = socket::bind_listener(&socket_path, args.backlog)
        .with_context(|| format!("cannot listen on {}", socket_path.display()))?;
    let socket_id = SocketFileId::of(&socket_path).context("stat the socket")?;
    // From here on, any early return removes the socket it leaves behind.
    let cleanup = SocketCleanup {
        id: socket_id,
        path: socket_path.clone(),
        armed: true,
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
                cleanup.disarm(); // the socket belongs to the agent child now
                drop(listener);
                drop(keys);
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
                cleanup.disarm(); // the socket belongs to the agent child now
                drop(keys);
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

    let mut config = Config {
        default_lifetime: args.lifetime,
        ..Config::default()
    };
    if let Some(n) = args.signers {
        config.signer_threads = n as usize;
    }
    config.sign_timeout = args.sign_timeout.map(Duration::from_millis);
    config.max_connections = args
        .max_connections
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    config.idle_timeout = args.idle_timeout.map(Duration::from_secs);
    // One worker per core (tokio's default, made explicit): cheap signatures run on the
    // workers themselves, so more would only oversubscribe the cores.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(num_cores())
        .enable_all()
        .build()
        .context("start the runtime")?;
    let shown_path = socket_path.clone();
    let metrics_at = args.metrics_listen.clone();
    let result = runtime.block_on(async move {
        let listener = tokio::net::UnixListener::from_std(listener).context("register socket")?;
        let agent = Agent::try_new(config).context("start signing threads")?;
        for loaded in keys {
            add_loaded_key(&agent, loaded);
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
        let shutdown = shutdown_signal(agent.clone(), watch_parent)?;
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

/// A key read from a `--key` file: the parsed pair, its sealable wire form, its comment.
struct LoadedKey {
    key: KeyPair,
    private: Zeroizing<Vec<u8>>,
    comment: String,
}

/// Reads every `--key` file; encrypted ones are unlocked through SSH_ASKPASS. Any failure
/// stops the start-up: an agent silently missing a key is worse than no agent.
fn load_key_files(paths: &[PathBuf]) -> anyhow::Result<Vec<LoadedKey>> {
    let mut keys = Vec::with_capacity(paths.len());
    for path in paths {
        let (wire, comment) =
            read_key_file(path).with_context(|| format!("cannot load key {}", path.display()))?;
        let key = KeyPair::from_wire(&wire)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("cannot load key {}", path.display()))?;
        // Like ssh-add: a certificate next to the key (`FILE-cert.pub`) is added too.
        let cert = load_certificate_for(path, &wire, &comment);
        keys.push(LoadedKey {
            key,
            private: keyops::sealable_body(&wire),
            comment,
        });
        keys.extend(cert);
    }
    Ok(keys)
}

/// Reads and (through askpass, if needed) decrypts an OpenSSH private key file.
fn read_key_file(path: &Path) -> anyhow::Result<(PrivateKeyWire, String)> {
    let text = Zeroizing::new(std::fs::read_to_string(path).context("read")?);
    let file = secretivex_keys::OpensshKeyFile::parse(&text)
        .map_err(|e| anyhow::anyhow!("not an OpenSSH private key: {e}"))?;
    let decrypted = if file.is_encrypted() {
        let program = confirm::askpass_program(None);
        let prompt = format!("Enter passphrase for {}: ", path.display());
        let passphrase = askpass::read_passphrase(&program, &prompt)?;
        file.decrypt(Some(passphrase.as_slice()))
            .map_err(|e| anyhow::anyhow!("cannot decrypt: {e}"))?
    } else {
        file.decrypt(None).map_err(|e| anyhow::anyhow!("{e}"))?
    };
    let wire = decrypted.key;
    let comment = if decrypted.comment.is_empty() {
        path.display().to_string()
    } else {
        decrypted.comment
    };
    Ok((wire, comment))
}

/// The key presenting `FILE-cert.pub`, when that file exists and certifies the key.
/// A certificate that cannot be used is reported and skipped, as ssh-add does.
fn load_certificate_for(path: &Path, plain: &PrivateKeyWire, comment: &str) -> Option<LoadedKey> {
    let mut cert_path = path.as_os_str().to_os_string();
    cert_path.push("-cert.pub");
    let cert_path = PathBuf::from(cert_path);
    let text = std::fs::read_to_string(&cert_path).ok()?;
    let result = public_key_line_blob(&text)
        .and_then(|blob| keyops::certificate_wire(plain, blob))
        .ok_or_else(|| "not an OpenSSH certificate line".to_string())
        .and_then(|wire| {
            KeyPair::from_wire(&wire)
                .map(|key| (key, keyops::sealable_body(&wire)))
                .map_err(|e| e.to_string())
        });
    match result {
        Ok((key, private)) => Some(LoadedKey {
            key,
            private,
            comment: comment.to_string(),
        }),
        Err(e) => {
            tracing::warn!(path = %cert_path.display(), error = %e, "certificate not loaded");
            eprintln!(
                "secretivex-agent: certificate {} not loaded: {e}",
                cert_path.display()
            );
            None
        }
    }
}

/// Decodes the blob of a `type base64 [comment]` public key line.
fn public_key_line_blob(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let b64 = text.split_whitespace().nth(1)?;
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

fn add_loaded_key(agent: &Arc<Agent>, loaded: LoadedKey) {
    let LoadedKey {
        key,
        private,
        comment,
    } = loaded;
    let blob = key.public_blob().to_vec();
    let fingerprint = key.fingerprint().to_string();
    tracing::info!(%fingerprint, "loaded key from file");
    agent.keys().add(
        NewIdentity {
            key: Arc::new(key),
            private,
            blob,
            comment,
            fingerprint,
            lifetime: agent.config().default_lifetime,
            confirm: false,
            destinations: Vec::new(),
        },
        |_| true,
    );
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

/// Completes on SIGTERM, SIGINT or SIGHUP, or when the COMMAND's process is gone.
/// SIGUSR1 logs a metrics snapshot and drops every key (as OpenSSH 10.0 does) without
/// stopping; SIGUSR2 only logs the snapshot.
fn shutdown_signal(
    agent: Arc<Agent>,
    watch_parent: Option<u32>,
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
                _ = hup.recv() => break,
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
