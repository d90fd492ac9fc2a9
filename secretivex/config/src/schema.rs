//! The TOML schema: what a configuration file may say. Every table refuses unknown
//! fields, and every value that can be wrong is a validated type that fails inside
//! `Deserialize`, so the parser's error carries the line and the field.

use std::fmt;
use std::num::{NonZeroU32, NonZeroU64};
use std::path::PathBuf;
use std::str::FromStr;

use secretivex_audit::AuditSpec;
use secretivex_policy::PolicySpec;
use serde::{Deserialize, Serialize};

use secretivex_policy::HumanDuration;

/// A whole configuration file, as written (and as `--print-config` writes it back).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The profile whose defaults fill what the file does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    /// The `[agent]` table.
    #[serde(default)]
    pub agent: AgentSection,
    /// The `[[keys]]` tables: explicit key sources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<KeySpec>,
    /// The `[policy]` table (owned by `secretivex-policy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicySpec>,
    /// The `[audit]` table (owned by `secretivex-audit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditSpec>,
    /// The `[[pkcs11]]` tables: token modules loaded at start-up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pkcs11: Vec<Pkcs11Spec>,
}

/// One `[[pkcs11]]` table: a PKCS#11 module whose token keys the agent offers, as
/// `ssh-add -s MODULE` would add them. The allow-list of `-P` applies to `ssh-add -s`
/// only: a module named in the owner's configuration is trusted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Spec {
    /// The module (`~` expanded).
    pub module: PathBuf,
    /// A file holding the token PIN (first line); without it the PIN is asked through
    /// askpass at start-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_file: Option<PathBuf>,
    /// Ask before every signature, like `ssh-add -c`.
    #[serde(default)]
    pub confirm: bool,
    /// Drop the module's keys after this long, like `ssh-add -t`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime: Option<HumanDuration>,
}

/// The `[agent]` table. Every field is optional: one layer of the precedence chain
/// (flag, environment, file, profile, default) fills what the layers above left open.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    /// The agent's Unix socket (`~` expanded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
    /// Listen backlog of the socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog: Option<NonZeroU32>,
    /// Signatures made at once (1..=1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_signers: Option<Signers>,
    /// Longest wait of a sign request for a free signer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_timeout: Option<HumanDuration>,
    /// Client connections served at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<NonZeroU64>,
    /// A connection that sends nothing for this long is closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<HumanDuration>,
    /// Lifetime of keys added without one (`ssh-agent -t`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_lifetime: Option<HumanDuration>,
    /// Where to serve Prometheus metrics: a loopback `IP:PORT` or `unix:PATH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<ListenAddr>,
    /// Reload when the configuration or a key file changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<bool>,
}

impl AgentSection {
    /// Fills every field this layer leaves open from `lower` (a layer of lower precedence).
    pub fn or(self, lower: AgentSection) -> AgentSection {
        AgentSection {
            socket: self.socket.or(lower.socket),
            backlog: self.backlog.or(lower.backlog),
            max_signers: self.max_signers.or(lower.max_signers),
            sign_timeout: self.sign_timeout.or(lower.sign_timeout),
            max_connections: self.max_connections.or(lower.max_connections),
            idle_timeout: self.idle_timeout.or(lower.idle_timeout),
            default_lifetime: self.default_lifetime.or(lower.default_lifetime),
            metrics_listen: self.metrics_listen.or(lower.metrics_listen),
            watch: self.watch.or(lower.watch),
        }
    }
}

/// A named set of defaults for a kind of use (see the crate docs for the table).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// A workstation: ssh-agent's behaviour, no limits.
    #[default]
    Balanced,
    /// Thousands of concurrent `ssh` connections (Ansible, fleet tooling).
    Fanout,
    /// Bursts of parallel-ssh / pssh runs: a deep backlog, bounded waits.
    Pssh,
    /// Small machines and containers: few signers, few connections.
    LowMemory,
}

impl Profile {
    /// Every profile, in documentation order.
    pub const ALL: [Profile; 4] = [
        Profile::Balanced,
        Profile::Fanout,
        Profile::Pssh,
        Profile::LowMemory,
    ];

    /// The name as written in the file.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Balanced => "balanced",
            Profile::Fanout => "fanout",
            Profile::Pssh => "pssh",
            Profile::LowMemory => "low-memory",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                format!("unknown profile {s:?}, expected one of balanced, fanout, pssh, low-memory")
            })
    }
}

/// Number of signatures made at once: 1 to 1024.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Signers(u32);

impl Signers {
    /// The most signers accepted.
    pub const MAX: u32 = 1024;

    /// The count.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Signers {
    type Error = String;

    fn try_from(n: u32) -> Result<Self, Self::Error> {
        if (1..=Self::MAX).contains(&n) {
            Ok(Signers(n))
        } else {
            Err(format!("must be between 1 and {}, got {n}", Self::MAX))
        }
    }
}

impl From<Signers> for u32 {
    fn from(s: Signers) -> u32 {
        s.0
    }
}

/// A metrics listen address: a loopback `IP:PORT`, or `unix:PATH`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ListenAddr(String);

impl ListenAddr {
    /// The address as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ListenAddr {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a path".into());
            }
            return Ok(ListenAddr(s));
        }
        match s.parse::<std::net::SocketAddr>() {
            Ok(addr) if addr.ip().is_loopback() => Ok(ListenAddr(s)),
            Ok(_) => Err(format!("{s}: only loopback addresses are allowed")),
            Err(_) => Err(format!("{s:?}: expected 127.0.0.1:PORT or unix:PATH")),
        }
    }
}

impl From<ListenAddr> for String {
    fn from(a: ListenAddr) -> String {
        a.0
    }
}

/// One `[[keys]]` table: a key file or a glob of key files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// A file or a glob (`~` expanded), e.g. `~/.ssh/deploy/*_ed25519`.
    pub path: KeyPath,
    /// When an encrypted key is unlocked.
    #[serde(default)]
    pub unlock: Unlock,
    /// Ask before every signature, like `ssh-add -c`.
    #[serde(default)]
    pub confirm: bool,
    /// Drop the key after this long, like `ssh-add -t`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime: Option<HumanDuration>,
}

/// When an encrypted key file is unlocked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unlock {
    /// Through askpass at start-up (and at each reload that loads it anew).
    #[default]
    Start,
    /// Listed at once from its public part; askpass on the first signature.
    FirstUse,
}

/// A key path or glob pattern, checked to be a valid pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyPath(String);

impl KeyPath {
    /// The path or pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it has glob characters.
    pub fn is_glob(&self) -> bool {
        self.0.contains(['*', '?', '['])
    }
}

impl TryFrom<String> for KeyPath {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        if s.is_empty() {
            return Err("empty path".into());
        }
        glob::Pattern::new(&s).map_err(|e| format!("invalid glob {s:?}: {e}"))?;
        Ok(KeyPath(s))
    }
}

impl From<KeyPath> for String {
    fn from(p: KeyPath) -> String {
        p.0
    }
}
