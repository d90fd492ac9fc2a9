//! `tracehound proxy` command-line arguments and their mapping onto [`ProxyConfig`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, StatusCode};
use tracehound_tower::{ForwardedHeader, IpCidr};

use crate::config::{ProxyConfig, MAX_BUSY_POLL};
use crate::error::ConfigError;
use crate::host::HostFacts;

/// Command-line arguments of `tracehound proxy`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProxyArgs {
    /// Address to listen on (HTTP/1.1 and HTTP/2 prior knowledge), e.g. 127.0.0.1:8080.
    #[arg(long)]
    pub listen: SocketAddr,
    /// Upstream base URL (plain HTTP/1.1), e.g. http://127.0.0.1:3000.
    #[arg(long)]
    pub upstream: String,
    /// Detector endpoint asked about every request (POST, JSON); fail-open.
    #[arg(long, value_name = "URL")]
    pub detector_url: Option<String>,
    /// Deadline of one detector call; after it the request passes.
    #[arg(long, value_name = "MS", default_value_t = 50)]
    pub detector_timeout_ms: u64,
    /// Peer address or network whose forwarding and WAF headers are believed (repeatable).
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    pub trusted_proxies: Vec<IpCidr>,
    /// Header trusted peers put the client chain in: x-forwarded-for, forwarded or none.
    #[arg(long, value_name = "NAME", default_value = "x-forwarded-for")]
    pub forwarded_header: String,
    /// Header a trusted WAF marks threats with (`category; severity=high`).
    #[arg(long, value_name = "NAME", default_value = "x-tracehound-threat")]
    pub waf_header: String,
    /// Body bytes inspected (buffered) per request; longer bodies are streamed on.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
    /// Status answered to quarantined requests.
    #[arg(long, value_name = "CODE", default_value_t = 403)]
    pub quarantine_status: u16,
    /// Requests allowed per source and window.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub rate_limit: usize,
    /// Rate-limit window.
    #[arg(long, value_name = "MS", default_value_t = 60_000)]
    pub rate_window_ms: u64,
    /// How long a source over its limit stays blocked (0: only until the window frees up).
    #[arg(long, value_name = "MS", default_value_t = 300_000)]
    pub rate_block_ms: u64,
    /// Deadline for connecting to the upstream (after it: 502).
    #[arg(long, value_name = "MS", default_value_t = 2_000)]
    pub connect_timeout_ms: u64,
    /// TOML file with the tuning (layer, rate limit, quarantine, detector) instead of the
    /// flags above (keys: top-level detector_url, connect_timeout_ms, shutdown_grace_ms,
    /// max_payload_size; tables layer, rate_limit, quarantine).
    #[arg(long, value_name = "FILE", conflicts_with_all = TUNING_FLAGS)]
    pub config: Option<PathBuf>,
    /// Poll the sockets after each request event instead of sleeping, for at most this
    /// many microseconds (0: off; at most 10000). Each serving thread sizes its windows to
    /// the waits it sees: it polls through waits shorter than this (a fast upstream's
    /// answer, a client's quick next request) and stops polling for longer ones. Lowers
    /// the added latency below saturation where waking an idle CPU is slow. Costs CPU
    /// while traffic flows, up to a core per serving thread (one per core); an idle proxy
    /// uses none. Default: 200 on a VM whose idle vCPUs halt at once; off on bare metal,
    /// when the guest kernel halt-polls, and under a CPU quota (cgroup cpu.max or
    /// cfs_quota_us), where polling would spend the quota. The choice is printed at start.
    /// Not the kernel's SO_BUSY_POLL. Allowed next to --config.
    #[arg(long, value_name = "US")]
    pub busy_poll_us: Option<u64>,
}

/// The flags `--config` replaces (clap ids, i.e. field names).
const TUNING_FLAGS: [&str; 11] = [
    "detector_url",
    "detector_timeout_ms",
    "trusted_proxies",
    "forwarded_header",
    "waf_header",
    "max_body_bytes",
    "quarantine_status",
    "rate_limit",
    "rate_window_ms",
    "rate_block_ms",
    "connect_timeout_ms",
];

impl ProxyArgs {
    /// The arguments as a [`ProxyConfig`]; refuses values the proxy cannot run with.
    /// Without `--busy-poll-us`, busy polling follows this host (it reads `/proc` and
    /// `/sys`, see [`HostFacts::probe`]).
    pub fn to_config(&self) -> Result<ProxyConfig, ConfigError> {
        self.to_config_on(&HostFacts::probe())
    }

    /// As [`ProxyArgs::to_config`], with busy polling's default taken from `host`.
    pub fn to_config_on(&self, host: &HostFacts) -> Result<ProxyConfig, ConfigError> {
        let mut config = ProxyConfig::new(self.listen, self.upstream.clone());
        config.busy_poll = match self.busy_poll_us.map(Duration::from_micros) {
            None => host.busy_poll_default().window(),
            Some(window) if window.is_zero() => None,
            Some(window) if window > MAX_BUSY_POLL => {
                return Err(ConfigError::Range {
                    field: "--busy-poll-us",
                    reason: "must be at most 10000 (10 ms)",
                })
            }
            Some(window) => Some(window),
        };
        if let Some(path) = &self.config {
            crate::file::apply(path, &mut config)?;
            return Ok(config);
        }
        config.detector_url = self.detector_url.clone();
        config.connect_timeout = Duration::from_millis(self.connect_timeout_ms.max(1));

        let layer = &mut config.layer;
        layer.detector_timeout_ms = self.detector_timeout_ms;
        layer.trusted_proxies = self.trusted_proxies.clone();
        layer.forwarded_header = match self.forwarded_header.to_ascii_lowercase().as_str() {
            "x-forwarded-for" => ForwardedHeader::XForwardedFor,
            "forwarded" => ForwardedHeader::Forwarded,
            "none" => ForwardedHeader::None,
            _ => {
                return Err(ConfigError::Range {
                    field: "--forwarded-header",
                    reason: "expected x-forwarded-for, forwarded or none",
                })
            }
        };
        layer.waf_header = HeaderName::from_bytes(self.waf_header.as_bytes())
            .map_err(|_| ConfigError::WafHeader(self.waf_header.clone()))?;
        if self.max_body_bytes == 0 {
            return Err(ConfigError::Range {
                field: "--max-body-bytes",
                reason: "must be positive",
            });
        }
        layer.max_body_bytes = self.max_body_bytes;
        layer.quarantine_status = StatusCode::from_u16(self.quarantine_status)
            .ok()
            .filter(|s| s.is_client_error() || s.is_server_error())
            .ok_or(ConfigError::Range {
                field: "--quarantine-status",
                reason: "must be a 4xx or 5xx status",
            })?;

        let rate = &mut config.agent.rate_limit;
        rate.max_requests = self.rate_limit;
        rate.window_ms = self.rate_window_ms;
        rate.block_duration_ms = self.rate_block_ms;
        Ok(config)
    }
}
