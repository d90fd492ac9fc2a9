//! Helpers for the policy and approval tests: a config file with a `[policy]` table, the
//! agent started with it, and raw sign requests.

use std::path::{Path, PathBuf};

use super::agent::{Agent, AgentBuilder, AgentImpl};
use super::cmd::{require_tool, run};
use super::keys::KeyFiles;
use super::wire;

/// Writes `dir/agent.toml` holding `policy` (TOML text of the `[policy]` table and its rules).
pub fn write_config(dir: &Path, policy: &str) -> PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(&path, policy).expect("write agent.toml");
    path
}

/// Starts our agent (policies are ours alone) with `--config FILE`.
#[track_caller]
pub fn start_with_config(dir: &Path, config: &Path) -> Agent {
    AgentBuilder::with_impl(AgentImpl::SecretiveX, dir)
        .args([std::ffi::OsStr::new("--config"), config.as_os_str()])
        .start()
}

/// The real path of an OpenSSH tool (rules match `/proc/PID/exe`, which is resolved).
pub fn exe_path(name: &str) -> String {
    let found = require_tool(name);
    std::fs::canonicalize(&found)
        .unwrap_or(found)
        .to_string_lossy()
        .into_owned()
}

/// A SIGN_REQUEST frame for `blob` over `data`.
pub fn sign_frame(blob: &[u8], data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in [blob, data] {
        body.extend_from_slice(&u32::try_from(part.len()).expect("fits").to_be_bytes());
        body.extend_from_slice(part);
    }
    body.extend_from_slice(&0u32.to_be_bytes());
    wire::frame(wire::SIGN_REQUEST, &body)
}

/// Sends one sign request on a new connection; returns the reply's message type.
pub fn sign_type(sock: &Path, key: &KeyFiles) -> Option<u8> {
    let mut s = wire::connect(sock).expect("connect");
    wire::request(&mut s, &sign_frame(&key.public_blob(), b"policy test data"))
        .expect("sign reply")
        .msg_type()
}

/// `ssh-add -T PUBFILE` against `agent`: whether the agent signed.
pub fn ssh_add_test(agent: &Agent, key: &KeyFiles) -> bool {
    run(agent.cmd("ssh-add").arg("-T").arg(&key.public)).success()
}

/// The fingerprints `ssh-add -l` shows.
pub fn listed(agent: &Agent) -> Vec<String> {
    agent
        .list()
        .iter()
        .filter_map(|line| line.split_whitespace().nth(1).map(str::to_owned))
        .collect()
}
