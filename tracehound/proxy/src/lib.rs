//! Tracehound as a reverse proxy: hyper in front of an upstream, the tower layer inside.
//!
//! `tracehound proxy --listen ADDR --upstream URL` accepts HTTP/1.1 and HTTP/2 (prior
//! knowledge, h2c) and forwards to a plain HTTP/1.1 upstream: each downstream HTTP/1.1
//! connection gets its own upstream connection ([`UpstreamSlot`]), HTTP/2 requests share a
//! pool. Every request goes through [`tracehound_tower::TracehoundLayer`], so the proxy
//! has the middleware's semantics: the trusted WAF header or a detector endpoint
//! ([`detector`]) flags requests, flagged requests are quarantined and answered 403,
//! floods get 429 with `Retry-After`, and anything failing inside Tracehound lets the
//! request pass. An unreachable upstream is answered 502 (the upstream's failure).
//!
//! ```no_run
//! # async fn demo() -> Result<(), tracehound_proxy::ProxyError> {
//! use tracehound_proxy::{Proxy, ProxyConfig};
//! let config = ProxyConfig::new("127.0.0.1:0".parse().unwrap(), "http://127.0.0.1:3000");
//! let proxy = Proxy::bind(config).await?;
//! println!("listening on {}", proxy.local_addr());
//! proxy.shutdown().await;
//! # Ok(()) }
//! ```

mod affinity;
mod args;
mod busy_poll;
mod config;
mod cpu_quota;
pub mod detector;
mod dispatch;
mod error;
mod file;
mod forward;
mod headers;
mod host;
mod proxy;
mod run;
mod runnable;
mod server;
mod upstream;

pub use affinity::{AffinityError, UpstreamSlot};
pub use args::ProxyArgs;
pub use config::{ProxyConfig, DEFAULT_BUSY_POLL, MAX_BUSY_POLL};
pub use error::{ConfigError, ProxyError};
pub use forward::{ForwardStats, Forwarder, ProxyBody};
pub use host::{BusyPollDefault, HostFacts};
pub use proxy::{Proxy, RunningProxy};
pub use run::run;
pub use upstream::Upstream;
