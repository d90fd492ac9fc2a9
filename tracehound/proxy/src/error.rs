//! The proxy library's errors.

use std::net::SocketAddr;

/// A configuration the proxy refuses to start with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The upstream URL is not a plain `http://host[:port][/base]`.
    #[error("upstream URL {url:?}: {reason}")]
    Upstream {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The detector URL is not a plain `http://` URL.
    #[error("detector URL {url:?}: {reason}")]
    Detector {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// A `--trusted-proxy` entry is neither an IP address nor a CIDR block.
    #[error("trusted proxy {0:?}: expected an IP address or CIDR block (10.0.0.0/8, ::1/128)")]
    TrustedProxy(String),
    /// The WAF header name is not a valid HTTP header name.
    #[error("WAF header name {0:?} is not a valid header name")]
    WafHeader(String),
    /// A numeric setting is out of range.
    #[error("{field}: {reason}")]
    Range {
        /// The setting.
        field: &'static str,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The `--config` file could not be read or parsed.
    #[error("config file {}: {message}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong, with line, column and key when it is a parse error.
        message: String,
    },
    /// The Tracehound agent refused its configuration.
    #[error("agent configuration: {0}")]
    Agent(String),
    /// Busy polling cannot run as configured (window too long, or a multi-thread runtime).
    #[error("busy polling: {0}")]
    BusyPoll(String),
    /// The tower layer refused its configuration.
    #[error("layer configuration: {0}")]
    Layer(String),
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}
