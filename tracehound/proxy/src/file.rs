//! `--config FILE`: the proxy's tuning in TOML instead of flags. Unknown keys are
//! refused; errors name the file, line, column and key.
//!
//! ```toml
//! detector_url = "http://127.0.0.1:9100/judge"   # optional
//! connect_timeout_ms = 2000
//! shutdown_grace_ms = 10000
//! max_payload_size = 1000000        # largest evidence payload (agent)
//!
//! [layer]                           # tracehound_tower::LayerConfig, same keys
//! max_body_bytes = 65536
//! trusted_proxies = ["10.0.0.0/8", "::1"]
//! forwarded_header = "x-forwarded-for"   # or "forwarded", "none"
//! waf_header = "x-tracehound-threat"
//! detector_timeout_ms = 50
//! quarantine_status = 403
//!
//! [rate_limit]
//! max_requests = 100
//! window_ms = 60000
//! block_duration_ms = 300000
//! max_sources = 100000
//!
//! [quarantine]
//! max_count = 10000
//! max_bytes = 100000000
//! ```

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use tracehound_tower::LayerConfig;

use crate::config::ProxyConfig;
use crate::error::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    detector_url: Option<String>,
    connect_timeout_ms: Option<u64>,
    shutdown_grace_ms: Option<u64>,
    max_payload_size: Option<usize>,
    #[serde(default)]
    layer: LayerConfig,
    #[serde(default)]
    rate_limit: RateLimitFile,
    #[serde(default)]
    quarantine: QuarantineFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitFile {
    max_requests: Option<usize>,
    window_ms: Option<u64>,
    block_duration_ms: Option<u64>,
    max_sources: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuarantineFile {
    max_count: Option<usize>,
    max_bytes: Option<usize>,
}

/// Reads `path` and applies it over `config` (keys left out keep their defaults).
pub(crate) fn apply(path: &Path, config: &mut ProxyConfig) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    apply_str(&text, config).map_err(|message| ConfigError::File {
        path: path.to_owned(),
        message,
    })
}

fn apply_str(text: &str, config: &mut ProxyConfig) -> Result<(), String> {
    // toml's message carries the line, column and the offending key.
    let file: FileConfig = toml::from_str(text).map_err(|e| e.to_string())?;
    if file.detector_url.is_some() {
        config.detector_url = file.detector_url;
    }
    if let Some(ms) = file.connect_timeout_ms {
        config.connect_timeout = Duration::from_millis(ms.max(1));
    }
    if let Some(ms) = file.shutdown_grace_ms {
        config.shutdown_grace = Duration::from_millis(ms);
    }
    if let Some(size) = file.max_payload_size {
        config.agent.max_payload_size = size;
    }
    config.layer = file.layer;
    let rate = &mut config.agent.rate_limit;
    let r = file.rate_limit;
    rate.max_requests = r.max_requests.unwrap_or(rate.max_requests);
    rate.window_ms = r.window_ms.unwrap_or(rate.window_ms);
    rate.block_duration_ms = r.block_duration_ms.unwrap_or(rate.block_duration_ms);
    rate.max_sources = r.max_sources.unwrap_or(rate.max_sources);
    let q = &mut config.agent.quarantine;
    q.max_count = file.quarantine.max_count.unwrap_or(q.max_count);
    q.max_bytes = file.quarantine.max_bytes.unwrap_or(q.max_bytes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ProxyConfig {
        ProxyConfig::new("127.0.0.1:0".parse().expect("addr"), "http://127.0.0.1:1")
    }

    #[test]
    fn the_documented_example_applies() {
        let doc = include_str!("file.rs");
        let example: String = doc
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| l.trim_start_matches("//!").trim_start_matches(' '))
            .collect::<Vec<_>>()
            .join("\n");
        let mut config = base();
        apply_str(&example, &mut config).expect("example parses");
        assert_eq!(
            config.detector_url.as_deref(),
            Some("http://127.0.0.1:9100/judge")
        );
        assert_eq!(config.layer.trusted_proxies.len(), 2);
        assert_eq!(config.agent.rate_limit.max_sources, 100_000);
        assert_eq!(config.agent.quarantine.max_bytes, 100_000_000);
    }

    #[test]
    fn overrides_apply_and_unknown_keys_are_refused_with_a_line() {
        let mut config = base();
        apply_str(
            "[rate_limit]\nmax_requests = 7\n[layer]\nmax_body_bytes = 10\n",
            &mut config,
        )
        .expect("valid");
        assert_eq!(config.agent.rate_limit.max_requests, 7);
        assert_eq!(config.agent.rate_limit.window_ms, 60_000, "default kept");
        assert_eq!(config.layer.max_body_bytes, 10);

        let error = apply_str("[rate_limit]\nmax_request = 7\n", &mut base()).unwrap_err();
        assert!(error.contains("line 2"), "{error}");
        assert!(error.contains("max_request"), "{error}");
    }
}
