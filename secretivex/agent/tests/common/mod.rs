//! Shared harness for the SecretiveX agent's end-to-end tests against real OpenSSH tools.
//!
//! * [`cmd`]: run tools with captured output, require tools (missing ones fail, never skip);
//! * [`keys`]: keys, CAs and certificates made by `ssh-keygen`;
//! * [`agent`]: start the agent under test (ours, or OpenSSH's with
//!   `SECRETIVEX_TEST_AGENT=openssh`), wait for its socket, kill it on drop;
//! * [`sshd`]: a throw-away `sshd` on a loopback high port and `ssh` logins through the agent;
//! * [`sshsig`]: `ssh-keygen -Y sign` through the agent and `-Y verify`;
//! * [`wire`]: raw frames over the socket for malformed-input tests.
//!
//! Run with `cargo test -p secretivex-agent --tests` (as root: some tests drop to `nobody`,
//! run `sshd`, read `/proc/PID/mem`). `SECRETIVEX_TEST_AGENT=openssh` runs the interop tests
//! against OpenSSH's `ssh-agent` to check the tests themselves; tests of properties only our
//! agent has (hardening, concurrency, secrets in memory, `--key`) always run ours.
//!
//! Each test binary uses a different subset, hence the `dead_code` and `unused_imports`
//! allowance.
#![allow(dead_code, unused_imports)]

pub mod agent;
pub mod cmd;
pub mod config;
pub mod keys;
pub mod policy;
pub mod sshd;
pub mod sshsig;
pub mod wire;

pub use agent::{Agent, AgentBuilder, AgentImpl};
pub use cmd::{poll, run, tool, CmdOutput};
pub use keys::{gen_ca_and_cert, gen_key, gen_keys, KeyFiles, KeyKind};
pub use sshd::{Sshd, SshdConfig};

/// A fresh temporary directory for one test (removed on drop).
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sx-")
        .tempdir()
        .expect("create temp dir")
}
