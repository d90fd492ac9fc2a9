//! Helpers for the configuration and reload tests: config files, `--check-config` and
//! `--print-config` runs, SIGHUP, and waiting for the agent's log to say something.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::agent::{Agent, AgentImpl};
use super::cmd::{poll, run, tool, CmdOutput};

/// Writes `dir/name` with `text` and returns its path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config file");
    path
}

/// Replaces `path` atomically (write a sibling, rename over), as deployment tools do.
pub fn replace_file(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp-new");
    std::fs::write(&tmp, text).expect("write new config");
    std::fs::rename(&tmp, path).expect("rename new config");
}

/// Runs our agent binary with `args` and `envs` to completion (no `-D`, no socket).
pub fn run_ours(args: &[&OsStr], envs: &[(&str, &str)]) -> CmdOutput {
    let mut cmd = tool(&AgentImpl::SecretiveX.program().to_string_lossy());
    cmd.args(args);
    // The developer's own configuration must not leak into the tests.
    cmd.env_remove("SECRETIVEX_CONFIG");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

/// `secretivex-agent --check-config --config FILE`.
pub fn check_config(file: &Path) -> CmdOutput {
    run_ours(
        &[
            OsStr::new("--check-config"),
            OsStr::new("--config"),
            file.as_os_str(),
        ],
        &[],
    )
}

/// Sends SIGHUP to the agent.
pub fn hup(agent: &Agent) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &agent.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -HUP failed");
}

/// How many times `needle` appears in the agent's log.
pub fn log_count(agent: &Agent, needle: &str) -> usize {
    agent.output().matches(needle).count()
}

/// Waits (bounded, ~20 s) until the agent's log holds `needle` at least `n` times;
/// panics with the log otherwise.
#[track_caller]
pub fn wait_log(agent: &Agent, needle: &str, n: usize) {
    let seen = poll(1000, Duration::from_millis(20), || {
        (log_count(agent, needle) >= n).then_some(())
    });
    assert!(
        seen.is_some(),
        "log never showed {needle:?} {n} times\n{}",
        agent.output()
    );
}

/// Waits (bounded, ~20 s) until `check` holds.
#[track_caller]
pub fn wait_until(what: &str, agent: &Agent, mut check: impl FnMut() -> bool) {
    let seen = poll(1000, Duration::from_millis(20), || check().then_some(()));
    assert!(seen.is_some(), "never: {what}\n{}", agent.output());
}
