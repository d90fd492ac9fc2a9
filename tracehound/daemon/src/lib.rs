//! tracehoundd: Tracehound as a daemon over gRPC on a Unix socket (and optionally
//! loopback TCP), speaking the contract in `tracehound/rpc/proto/tracehound.proto`.
//!
//! * [`config`] — the TOML file, validated with file/line/field errors; what reloads.
//! * [`Daemon::start`] — runs the daemon in the current tokio runtime (tests and tools
//!   embed it); [`RunningDaemon`] gives its addresses, reloads and shuts it down.
//! * [`engine`] — the agent and configuration behind `ArcSwap` (reloads never block a
//!   request), [`report`] — what each method answers, [`insight`] — top sources and
//!   recent threats.
//! * [`audit_log`] — the durable audit log (`[ledger]`): the core's audit records copied
//!   into a `tracehound-ledger` by a writer thread, proofs and checkpoints.
//! * [`load`] — the load generator behind `tracehound-load`.
//! * [`percore`] — serving the Unix socket from one single-threaded runtime per core.
//!   Each connection goes to the thread with the fewest open ones (`spread.rs`).

pub mod audit_log;
mod cold_rpc;
pub mod cold_tally;
pub mod cold_wiring;
pub mod config;
mod convert;
pub mod engine;
pub mod erasure;
pub mod insight;
pub mod lifecycle_task;
pub mod load;
pub mod notifications;
pub mod percore;
mod reload;
pub mod report;
mod server;
mod service;
pub mod snapshot_export;
mod socket;
mod spread;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use config::{default_socket_path, ConfigError, DaemonConfig};
pub use engine::ReloadOutcome;
pub use server::{Daemon, RunningDaemon};
pub use service::TracehoundService;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The configuration could not be applied to the core.
    #[error("invalid configuration: {0}")]
    Apply(String),
    /// A daemon already answers on the socket.
    #[error("{}: a daemon is already listening there", .0.display())]
    AlreadyRunning(PathBuf),
    /// The Unix socket could not be set up.
    #[error("{}: cannot {what}: {source}", path.display())]
    Socket {
        /// The socket path.
        path: PathBuf,
        /// The step that failed.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// TCP is only served on loopback.
    #[error("{0}: refusing to listen on a non-loopback address")]
    NotLoopback(SocketAddr),
    /// The TCP listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Tcp {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The SIGHUP handler or file watcher could not be installed.
    #[error("cannot set up hot reload: {0}")]
    Reload(String),
}
