//! The daemon's TOML configuration: parsing, validation with file/line/field errors, and
//! which parts a hot reload may change.

mod cold;
mod erasure;
mod ledger;
mod lifecycle;
mod locate;
pub mod notify;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tracehound_core::quarantine::QuarantineConfig;
use tracehound_core::rate_limit::{RateLimitConfig, RateLimiter};

pub use cold::ColdSection;
pub use erasure::{index_capacity as erasure_index_capacity, ErasureSection};
pub use ledger::{FsyncMode, LedgerSection};
pub use lifecycle::LifecycleSection;
pub use locate::default_socket_path;
pub use notify::NotifySection;

/// A configuration that could not be read, parsed or validated. The message names the
/// file, the line and the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema, or a value is out of range.
    #[error("{}:{line}: field `{field}`: {message}", file.display())]
    Invalid {
        /// The file (`<inline>` for text given directly).
        file: PathBuf,
        /// 1-based line of the offending key or value (0 when unknown).
        line: usize,
        /// Dotted path of the field (`rate_limit.max_requests`).
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// Where the daemon listens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// The Unix socket path (created 0600). Absent: [`default_socket_path`].
    pub socket: Option<PathBuf>,
    /// Optional loopback TCP address (`127.0.0.1:PORT`); other addresses are refused.
    pub tcp: Option<SocketAddr>,
}

/// Request limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest canonical payload (bytes) accepted as evidence.
    pub max_payload_size: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_payload_size: 1_000_000,
        }
    }
}

/// The core rate limiter's settings (v1 names in snake case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSection {
    /// Sliding window length in ms.
    pub window_ms: u64,
    /// Requests allowed per window per source.
    pub max_requests: usize,
    /// Block length once over the limit (0: no block).
    pub block_duration_ms: u64,
    /// Cap on tracked sources.
    pub max_sources: usize,
    /// Independently locked shards.
    pub shards: usize,
}

impl Default for RateLimitSection {
    fn default() -> Self {
        let d = RateLimitConfig::default();
        RateLimitSection {
            window_ms: d.window_ms,
            max_requests: d.max_requests,
            block_duration_ms: d.block_duration_ms,
            max_sources: d.max_sources,
            shards: d.shards,
        }
    }
}

impl RateLimitSection {
    /// The core's form.
    pub fn to_core(self) -> RateLimitConfig {
        RateLimitConfig {
            window_ms: self.window_ms,
            max_requests: self.max_requests,
            block_duration_ms: self.block_duration_ms,
            max_sources: self.max_sources,
            shards: self.shards,
        }
    }
}

/// Quarantine bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuarantineSection {
    /// Most pieces of evidence held.
    pub max_count: usize,
    /// Most stored bytes held.
    pub max_bytes: usize,
}

impl Default for QuarantineSection {
    fn default() -> Self {
        let d = QuarantineConfig::default();
        QuarantineSection {
            max_count: d.max_count,
            max_bytes: d.max_bytes,
        }
    }
}

/// What `Stats` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatsSection {
    /// Top sources / recent threats returned when a request asks for 0.
    pub top_default: u32,
    /// Most sources tracked for the top-sources table (approximate heavy hitters).
    pub tracked_sources: usize,
    /// Distinct recent threat signatures remembered.
    pub recent_threats: usize,
}

impl Default for StatsSection {
    fn default() -> Self {
        StatsSection {
            top_default: 10,
            tracked_sources: 4096,
            recent_threats: 64,
        }
    }
}

/// Hot reload settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReloadSection {
    /// Watch the config file and reload when it changes (SIGHUP always works).
    pub watch: bool,
    /// Quiet time after the last file event before reloading, in ms.
    pub debounce_ms: u64,
}

impl Default for ReloadSection {
    fn default() -> Self {
        ReloadSection {
            watch: true,
            debounce_ms: 200,
        }
    }
}

/// The whole configuration file. Every section and field is optional; unknown ones are
/// errors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// `[listen]` — restart required to change.
    pub listen: ListenConfig,
    /// `[limits]` — reloadable.
    pub limits: LimitsConfig,
    /// `[rate_limit]` — reloadable (a change starts fresh windows for every source).
    pub rate_limit: RateLimitSection,
    /// `[quarantine]` — restart required (evidence is never dropped by a reload).
    pub quarantine: QuarantineSection,
    /// `[stats]` — `top_default` reloadable, table sizes need a restart.
    pub stats: StatsSection,
    /// `[reload]` — restart required.
    pub reload: ReloadSection,
    /// `[ledger]` — the durable audit log; absent: audit records stay in memory only.
    /// Restart required.
    pub ledger: Option<LedgerSection>,
    /// `[cold]` — cold storage for evidence leaving the quarantine; absent: evicted
    /// evidence is dropped (v1). Restart required.
    pub cold: Option<ColdSection>,
    /// `[lifecycle]` — TTLs, retention and byte budgets for evidence in memory and in
    /// cold storage, applied periodically. Reloadable.
    pub lifecycle: Option<LifecycleSection>,
    /// `[erasure]` — the key vault behind erasure (GDPR) of cold objects; absent:
    /// erasure still works in memory and on plaintext cold objects. Restart required.
    pub erasure: Option<ErasureSection>,
    /// `[notify]` — notification sinks and threat coalescing. Restart required.
    pub notify: NotifySection,
}

impl DaemonConfig {
    /// Reads and validates `file`.
    pub fn load(file: &Path) -> Result<DaemonConfig, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.to_owned(),
            source,
        })?;
        DaemonConfig::parse(&text, file)
    }

    /// Parses and validates `text`; `file` only names the source in errors.
    pub fn parse(text: &str, file: &Path) -> Result<DaemonConfig, ConfigError> {
        let config: DaemonConfig =
            toml::from_str(text).map_err(|e| locate::toml_error(&e, text, file))?;
        config
            .validate()
            .map_err(|(field, message)| ConfigError::Invalid {
                file: file.to_owned(),
                line: locate::line_of_field(text, field),
                field: field.to_owned(),
                message,
            })?;
        Ok(config)
    }

    /// Range checks serde cannot express. Returns the dotted field and the reason.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.limits.max_payload_size == 0 {
            return Err(("limits.max_payload_size", "must be positive".into()));
        }
        let rl = self.rate_limit;
        for (field, zero) in [
            ("rate_limit.window_ms", rl.window_ms == 0),
            ("rate_limit.max_requests", rl.max_requests == 0),
            ("rate_limit.max_sources", rl.max_sources == 0),
            ("rate_limit.shards", rl.shards == 0),
            ("quarantine.max_count", self.quarantine.max_count == 0),
            ("quarantine.max_bytes", self.quarantine.max_bytes == 0),
            ("stats.tracked_sources", self.stats.tracked_sources == 0),
            ("stats.recent_threats", self.stats.recent_threats == 0),
        ] {
            if zero {
                return Err((field, "must be positive".into()));
            }
        }
        if let Err(e) = RateLimiter::new(rl.to_core()) {
            return Err(("rate_limit", e.to_string()));
        }
        if let Some(addr) = self.listen.tcp {
            if !addr.ip().is_loopback() {
                return Err((
                    "listen.tcp",
                    format!("{addr} is not a loopback address; tracehoundd only listens on 127.0.0.1 or ::1"),
                ));
            }
        }
        if self.stats.top_default > MAX_TOP {
            return Err(("stats.top_default", format!("at most {MAX_TOP}")));
        }
        if let Some(ledger) = &self.ledger {
            ledger.validate()?;
        }
        if let Some(cold) = &self.cold {
            cold.validate()?;
            cold.validate_queue_bytes(self.limits.max_payload_size)?;
        }
        if let Some(lifecycle) = &self.lifecycle {
            lifecycle.validate()?;
        }
        if let Some(erasure) = &self.erasure {
            erasure.validate(self.quarantine.max_count)?;
        }
        self.notify.validate()?;
        Ok(())
    }

    /// The core's quarantine bounds.
    pub fn quarantine_core(&self) -> QuarantineConfig {
        QuarantineConfig {
            max_count: self.quarantine.max_count,
            max_bytes: self.quarantine.max_bytes,
        }
    }

    /// Fields that differ from `running` but only take effect after a restart (a reload
    /// keeps the running values for them).
    pub fn restart_only_changes(&self, running: &DaemonConfig) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.listen != running.listen {
            out.push("listen");
        }
        if self.quarantine != running.quarantine {
            out.push("quarantine");
        }
        if self.stats.tracked_sources != running.stats.tracked_sources {
            out.push("stats.tracked_sources");
        }
        if self.stats.recent_threats != running.stats.recent_threats {
            out.push("stats.recent_threats");
        }
        if self.reload != running.reload {
            out.push("reload");
        }
        if self.ledger != running.ledger {
            out.push("ledger");
        }
        if self.cold != running.cold {
            out.push("cold");
        }
        if self.erasure != running.erasure {
            out.push("erasure");
        }
        if self.notify != running.notify {
            out.push("notify");
        }
        out
    }

    /// `self` with the restart-only fields taken from `running`: what a reload applies.
    pub fn reloadable_part(&self, running: &DaemonConfig) -> DaemonConfig {
        DaemonConfig {
            listen: running.listen.clone(),
            limits: self.limits,
            rate_limit: self.rate_limit,
            quarantine: running.quarantine,
            stats: StatsSection {
                top_default: self.stats.top_default,
                ..running.stats
            },
            reload: running.reload,
            ledger: running.ledger.clone(),
            cold: running.cold.clone(),
            lifecycle: self.lifecycle.clone(),
            erasure: running.erasure.clone(),
            notify: running.notify.clone(),
        }
    }
}

/// Most top sources / recent threats one `Stats` call returns.
pub const MAX_TOP: u32 = 1000;

#[cfg(test)]
mod tests;
