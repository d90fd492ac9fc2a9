//! The SecretiveX SSH agent: a drop-in replacement for OpenSSH's `ssh-agent`.
//!
//! The library holds everything but process management, so tests can run an agent
//! in-process:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use secretivex_agent::{socket, Agent, Config};
//! let path = std::path::Path::new("/run/user/1000/secretivex/agent.sock");
//! let listener = socket::bind_listener(path, 4096)?;
//! let listener = tokio::net::UnixListener::from_std(listener)?;
//! let agent = Agent::try_new(Config::default())?;
//! secretivex_agent::serve(listener, agent, std::future::pending::<()>()).await;
//! # Ok(()) }
//! ```
//!
//! Layout: [`server`] accepts and checks peers ([`peer`]), `connection` frames one client
//! (over `client_socket`: direct non-blocking reads and writes, registered with the
//! runtime for readability only and only once it has to wait),
//! `handler` turns a request into a reply using the shared [`Agent`] state
//! ([`keystore`], [`lock`], [`destination`], [`confirm`], [`signer`]). [`metrics`] counts
//! signs, latencies, connections and failures; [`metrics_http`] serves them on an opt-in
//! loopback or Unix-socket listener.

pub mod activation;
pub mod approval;
pub mod askpass;
mod audit_event;
mod client_socket;
mod config;
pub mod confirm;
mod connection;
pub mod destination;
mod handler;
pub mod harden;
pub mod keyops;
pub mod keysource;
pub mod keystore;
pub mod lifetime;
pub mod lock;
pub mod metrics;
pub mod metrics_http;
pub mod peer;
pub mod peer_process;
pub mod pending;
pub mod pkcs11_config;
pub mod pkcs11_helper;
pub mod pkcs11_store;
mod policy_facts;
mod policy_gate;
pub mod reload;
pub mod server;
mod sign;
mod sign_external;
pub mod signer;
mod smartcard;
pub mod socket;
mod state;
pub mod vault;
pub mod watch;

#[cfg(test)]
mod test_support;

pub use config::Config;
pub use server::serve;
pub use state::Agent;

/// Extensions answered by `query` (RFC 9987 §5.8.1), in the order they are listed.
pub const SUPPORTED_EXTENSIONS: &[&str] = &["query", "session-bind@openssh.com"];
