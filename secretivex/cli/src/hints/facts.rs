//! What the hints are computed from: the agent's effective configuration and this machine's
//! limits, each read from its real source.

use std::path::{Path, PathBuf};

use anyhow::Context;
use secretivex_config::{load, Env, Request};

/// The agent's settings and the system limits that bound a fan-out.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Facts {
    /// The agent's socket (`--socket`, else `[agent] socket`, else the agent's default).
    pub socket: PathBuf,
    /// The configuration file read, if any.
    pub config_file: Option<PathBuf>,
    /// Profile in force.
    pub profile: String,
    /// `[agent] backlog`.
    pub backlog: u32,
    /// `net.core.somaxconn`: the kernel caps every listen backlog there.
    pub somaxconn: Option<u32>,
    /// `[agent] max_connections` (`None`: only the descriptor limit).
    pub max_connections: Option<u64>,
    /// `[agent] max_signers`.
    pub max_signers: Option<u32>,
    /// `[agent] sign_timeout`, as written (`None`: waits as long as it takes).
    pub sign_timeout: Option<String>,
    /// `[agent] idle_timeout`, as written.
    pub idle_timeout: Option<String>,
    /// `RLIMIT_NOFILE` soft and hard limits of this session (the agent raises its soft
    /// limit to the hard one; ssh clients and Ansible workers use the soft one).
    pub nofile_soft: Option<u64>,
    /// Hard `RLIMIT_NOFILE`.
    pub nofile_hard: Option<u64>,
    /// Connections planned at once.
    pub parallel: u32,
}

impl Facts {
    /// Loads the configuration as the agent would and reads the limits.
    pub fn gather(
        config: Option<&Path>,
        socket: Option<PathBuf>,
        parallel: u32,
    ) -> anyhow::Result<Self> {
        let env = Env::from_process();
        let request = Request {
            config_flag: config.map(Path::to_path_buf),
            env,
            ..Request::default()
        };
        let loaded = load(&request).context("the agent's configuration")?;
        let agent = loaded.agent();
        let socket = socket
            .or_else(|| agent.socket.clone())
            .unwrap_or_else(default_socket_path);
        let (nofile_soft, nofile_hard) = nofile_limits();
        Ok(Facts {
            socket,
            config_file: loaded.file.clone(),
            profile: loaded.profile().name().to_string(),
            backlog: agent
                .backlog
                .map(|b| b.get())
                .unwrap_or(secretivex_config::DEFAULT_BACKLOG),
            somaxconn: read_number("/proc/sys/net/core/somaxconn")
                .and_then(|n| u32::try_from(n).ok()),
            max_connections: agent.max_connections.map(|n| n.get()),
            max_signers: agent.max_signers.map(|s| s.get()),
            sign_timeout: agent.sign_timeout.map(|d| d.to_string()),
            idle_timeout: agent.idle_timeout.map(|d| d.to_string()),
            nofile_soft,
            nofile_hard,
            parallel,
        })
    }

    /// The backlog the kernel actually grants.
    pub fn effective_backlog(&self) -> u32 {
        match self.somaxconn {
            Some(cap) => self.backlog.min(cap),
            None => self.backlog,
        }
    }
}

/// The agent's default socket (its documented rule): `$XDG_RUNTIME_DIR/secretivex/agent.sock`,
/// else `${TMPDIR:-/tmp}/secretivex-UID/agent.sock`.
fn default_socket_path() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("secretivex").join("agent.sock");
    }
    let tmp = std::env::var_os("TMPDIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    let uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0);
    tmp.join(format!("secretivex-{uid}")).join("agent.sock")
}

fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Soft and hard `RLIMIT_NOFILE` from `/proc/self/limits` (`None`: unlimited or unknown).
fn nofile_limits() -> (Option<u64>, Option<u64>) {
    let text = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    parse_nofile(&text)
}

fn parse_nofile(limits: &str) -> (Option<u64>, Option<u64>) {
    limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .map(|rest| {
            let mut fields = rest.split_whitespace().map(|f| f.parse().ok());
            (fields.next().flatten(), fields.next().flatten())
        })
        .unwrap_or((None, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nofile_limits_are_read_from_proc_limits_format() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max cpu time              unlimited            unlimited            seconds   \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(parse_nofile(text), (Some(1024), Some(524288)));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_nofile(unlimited), (None, None));
        assert_eq!(parse_nofile(""), (None, None));
    }
}
