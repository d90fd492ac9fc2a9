//! Run-time settings of an agent instance.

use std::path::PathBuf;
use std::time::Duration;

/// Settings shared by every connection of one agent.
#[derive(Debug, Clone)]
pub struct Config {
    /// Lifetime given to keys added without one (`ssh-agent -t`). `None` keeps them forever.
    pub default_lifetime: Option<Duration>,
    /// Number of signing threads. Defaults to the number of cores.
    pub signer_threads: usize,
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
            askpass: None,
            owner_uid: rustix::process::getuid().as_raw(),
        }
    }
}
