//! Run-time settings of an agent instance.

use std::path::PathBuf;
use std::time::Duration;

/// Settings shared by every connection of one agent.
#[derive(Debug, Clone)]
pub struct Config {
    /// Lifetime given to keys added without one (`ssh-agent -t`). `None` keeps them forever.
    pub default_lifetime: Option<Duration>,
    /// Signatures made at once (`--max-signers`): signing permits and signing threads.
    /// Defaults to the number of cores.
    pub signer_threads: usize,
    /// Longest wait of a sign request for a free signer before it is answered FAILURE.
    /// `None` waits as long as it takes.
    pub sign_timeout: Option<Duration>,
    /// Client connections served at once; beyond it a new connection is closed at once.
    /// `None`: no limit but the file descriptor limit.
    pub max_connections: Option<usize>,
    /// A connection that sends nothing for this long is closed. `None`: never.
    pub idle_timeout: Option<Duration>,
    /// Program run to confirm the use of a key added with `ssh-add -c`. `None` means
    /// `$SSH_ASKPASS`, read when the prompt is needed, then OpenSSH's default path.
    pub askpass: Option<PathBuf>,
    /// The uid allowed to connect besides root (normally the agent's own uid).
    pub owner_uid: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            default_lifetime: None,
            signer_threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            sign_timeout: None,
            max_connections: None,
            idle_timeout: None,
            askpass: None,
            owner_uid: rustix::process::getuid().as_raw(),
        }
    }
}
