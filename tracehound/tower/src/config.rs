//! The layer's settings, deserializable from a config file (`deny_unknown_fields`).

use std::net::IpAddr;
use std::time::Duration;

use http::{HeaderName, StatusCode};
use serde::{Deserialize, Deserializer};

use crate::cidr::IpCidr;

/// Which header a trusted proxy writes the client chain into. Only that header is read:
/// reading both would let a client smuggle a chain in the one the proxy does not rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`.
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
    /// No header: the client is always the immediate peer (trusted proxies only vouch for
    /// the WAF header).
    None,
}

/// Settings of a [`TracehoundLayer`](crate::TracehoundLayer).
///
/// ```
/// let config: tracehound_tower::LayerConfig = serde_json::from_str(
///     r#"{"trusted_proxies": ["10.0.0.0/8", "::1"], "max_body_bytes": 4096}"#,
/// ).unwrap();
/// assert_eq!(config.max_body_bytes, 4096);
/// assert_eq!(config.waf_header.as_str(), "x-tracehound-threat");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LayerConfig {
    /// How many body bytes are read before the request is forwarded, for the detector and
    /// the evidence. Longer bodies are forwarded whole (this prefix, then the rest
    /// streamed); the scent holds the first `max_body_bytes`. Default 64 KiB.
    pub max_body_bytes: usize,
    /// Peers (addresses or networks) whose forwarding header and WAF header are believed.
    /// Default: none (the client is the immediate peer and the WAF header is ignored).
    pub trusted_proxies: Vec<IpCidr>,
    /// The header trusted proxies put the client chain in. Default `x-forwarded-for`.
    pub forwarded_header: ForwardedHeader,
    /// The header an upstream WAF sets on a threat: `category; severity=high` (severity
    /// defaults to `medium`). Accepted only from a trusted peer. Default
    /// `x-tracehound-threat`.
    #[serde(deserialize_with = "de_header_name")]
    pub waf_header: HeaderName,
    /// How long the detector may take; afterwards the request passes (counted). Default
    /// 50 ms; 0 is taken as 1 ms.
    pub detector_timeout_ms: u64,
    /// The status answered to a quarantined (or already quarantined) request. Default 403.
    #[serde(deserialize_with = "de_status")]
    pub quarantine_status: StatusCode,
    /// Request headers copied into the scent payload of a flagged request (and listed for
    /// the detector). Default `user-agent`, `content-type` (as v1's Express adapter).
    #[serde(deserialize_with = "de_header_names")]
    pub selected_headers: Vec<HeaderName>,
    /// IPv6 clients are rate-limited per network of this prefix length (one host usually
    /// owns a whole /64, so per-address keys are free to rotate). 128 keys per address.
    /// Default 64.
    pub ipv6_source_prefix: u8,
}

impl Default for LayerConfig {
    fn default() -> Self {
        LayerConfig {
            max_body_bytes: 64 * 1024,
            trusted_proxies: Vec::new(),
            forwarded_header: ForwardedHeader::default(),
            waf_header: HeaderName::from_static("x-tracehound-threat"),
            detector_timeout_ms: 50,
            quarantine_status: StatusCode::FORBIDDEN,
            selected_headers: vec![http::header::USER_AGENT, http::header::CONTENT_TYPE],
            ipv6_source_prefix: 64,
        }
    }
}

impl LayerConfig {
    /// Whether `ip` is in [`trusted_proxies`](LayerConfig::trusted_proxies).
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(ip))
    }

    /// The detector deadline (at least 1 ms).
    pub fn detector_timeout(&self) -> Duration {
        Duration::from_millis(self.detector_timeout_ms.max(1))
    }
}

fn de_header_name<'de, D: Deserializer<'de>>(d: D) -> Result<HeaderName, D::Error> {
    let text = String::deserialize(d)?;
    HeaderName::from_bytes(text.as_bytes()).map_err(serde::de::Error::custom)
}

fn de_header_names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<HeaderName>, D::Error> {
    let texts = Vec::<String>::deserialize(d)?;
    texts
        .iter()
        .map(|t| HeaderName::from_bytes(t.as_bytes()).map_err(serde::de::Error::custom))
        .collect()
}

fn de_status<'de, D: Deserializer<'de>>(d: D) -> Result<StatusCode, D::Error> {
    let code = u16::deserialize(d)?;
    match StatusCode::from_u16(code) {
        Ok(s) if s.is_client_error() || s.is_server_error() => Ok(s),
        _ => Err(serde::de::Error::custom(format!(
            "quarantine_status {code} is not a 4xx or 5xx status"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c: LayerConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c.max_body_bytes, 65536);
        assert_eq!(c.quarantine_status, StatusCode::FORBIDDEN);
        assert_eq!(c.forwarded_header, ForwardedHeader::XForwardedFor);
        let c: LayerConfig = serde_json::from_str(
            r#"{"trusted_proxies": ["10.0.0.0/8"], "forwarded_header": "forwarded",
                "waf_header": "X-Waf", "quarantine_status": 451,
                "selected_headers": ["host"], "detector_timeout_ms": 0}"#,
        )
        .unwrap();
        assert!(c.is_trusted("10.3.4.5".parse().unwrap()));
        assert!(!c.is_trusted("11.3.4.5".parse().unwrap()));
        assert_eq!(c.forwarded_header, ForwardedHeader::Forwarded);
        assert_eq!(c.waf_header.as_str(), "x-waf");
        assert_eq!(c.quarantine_status.as_u16(), 451);
        assert_eq!(c.selected_headers, vec![http::header::HOST]);
        assert_eq!(c.detector_timeout(), Duration::from_millis(1));
    }

    #[test]
    fn refuses_unknown_fields_and_bad_values() {
        for bad in [
            r#"{"max_body": 1}"#,
            r#"{"quarantine_status": 200}"#,
            r#"{"quarantine_status": 1000}"#,
            r#"{"waf_header": "bad header"}"#,
            r#"{"trusted_proxies": ["10.0.0.0/40"]}"#,
            r#"{"forwarded_header": "via"}"#,
        ] {
            assert!(serde_json::from_str::<LayerConfig>(bad).is_err(), "{bad}");
        }
    }
}
