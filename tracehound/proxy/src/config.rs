//! The proxy's settings: where to listen, where to forward, and the layer's and agent's
//! settings.

use std::net::SocketAddr;
use std::time::Duration;

use tracehound_core::agent::AgentConfig;
use tracehound_tower::LayerConfig;

/// Everything [`Proxy::bind`](crate::Proxy::bind) needs.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Upstream base URL, `http://host[:port][/base]`.
    pub upstream: String,
    /// The Tracehound layer's settings (inspection limit, trusted proxies, WAF header,
    /// detector deadline, answer status).
    pub layer: LayerConfig,
    /// The agent's settings (rate limit, quarantine bounds, payload limit).
    pub agent: AgentConfig,
    /// A detector endpoint asked about every request (see [`crate::detector`]).
    pub detector_url: Option<String>,
    /// How long connecting to the upstream may take before the request is answered 502.
    pub connect_timeout: Duration,
    /// How long in-flight requests may run on after a stop was asked for.
    pub shutdown_grace: Duration,
}

impl ProxyConfig {
    /// Defaults for everything but the two addresses.
    pub fn new(listen: SocketAddr, upstream: impl Into<String>) -> ProxyConfig {
        ProxyConfig {
            listen,
            upstream: upstream.into(),
            layer: LayerConfig::default(),
            agent: AgentConfig::default(),
            detector_url: None,
            connect_timeout: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}
