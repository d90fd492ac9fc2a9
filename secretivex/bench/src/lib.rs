//! `secretivex-bench`: a load generator for SSH agent sockets and a signing-ceiling probe.
//!
//! * [`run`] drives any agent socket (SecretiveX, OpenSSH's `ssh-agent`, …) with many
//!   clients, each a task on a small tokio runtime ([`client`]), over per-request or
//!   persistent connections ([`conn`]), and reports throughput, failures by reason, HDR
//!   latency percentiles over every request ([`stats`]), the agent's CPU per operation
//!   ([`proc_stat`]) as a table, JSON or CSV ([`report`]).
//! * [`ceiling`] measures in-process signing with `secretivex-keys`, the agent's backend.
//! * [`idle`] measures the agent's resident memory with many idle connections open.

// One `unsafe` call: registering a socket with tokio (`conn::register`).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod args;
pub mod ceiling;
pub mod client;
pub mod conn;
pub mod idle;
pub mod proc_stat;
pub mod report;
pub mod run;
pub mod stats;

/// Raises the soft open-file limit to the hard limit, so that thousands of clients can
/// hold a connection each. Failure is not fatal: the run then reports connect errors.
pub fn raise_nofile_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current < lim.maximum {
        lim.current = lim.maximum;
        let _ = setrlimit(Resource::Nofile, lim);
    }
}
