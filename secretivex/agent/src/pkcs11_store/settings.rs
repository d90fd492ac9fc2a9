//! The agent's PKCS#11 settings: the module allow-list (ssh-agent's `-P`), where the
//! helper is, sessions and timeouts.

use std::path::PathBuf;
use std::time::Duration;

use secretivex_policy::Glob;

/// ssh-agent's default provider allow-list (`-P`).
pub const DEFAULT_ALLOW: &str = "/usr/lib*/*,/usr/local/lib*/*";

/// PKCS#11 settings of the agent.
#[derive(Debug, Clone)]
pub struct Pkcs11Settings {
    /// Module paths that may be loaded (after `realpath`), as ssh-agent's `-P`.
    pub allow: Vec<Glob>,
    /// Accept `ssh-add -s` over a forwarded connection.
    pub allow_remote: bool,
    /// The helper executable.
    pub helper: PathBuf,
    /// Sessions (and signing threads) per module.
    pub sessions: usize,
    /// Token presence poll interval.
    pub poll: Duration,
    /// Longest wait for a free session; `None` waits.
    pub sign_timeout: Option<Duration>,
    /// Longest wait for the helper's signature; past it the helper is restarted.
    pub reply_timeout: Duration,
}

impl Default for Pkcs11Settings {
    fn default() -> Self {
        Pkcs11Settings {
            allow: parse_allow_list(DEFAULT_ALLOW).unwrap_or_default(),
            allow_remote: false,
            helper: default_helper(),
            sessions: 4,
            poll: Duration::from_secs(1),
            sign_timeout: None,
            reply_timeout: Duration::from_secs(30),
        }
    }
}

/// `secretivex-pkcs11-helper` next to the running executable, else from `PATH`.
pub fn default_helper() -> PathBuf {
    const NAME: &str = "secretivex-pkcs11-helper";
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(NAME)))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(NAME))
}

/// Parses a comma-separated pattern list (`*` and `?`, as ssh-agent's `-P`).
pub fn parse_allow_list(list: &str) -> Result<Vec<Glob>, String> {
    list.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<Glob>().map_err(|e| format!("{p:?}: {e}")))
        .collect()
}
