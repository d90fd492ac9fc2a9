//! The proxy's settings: where to listen, where to forward, and the layer's and agent's
//! settings.

use std::net::SocketAddr;
use std::time::Duration;

use tracehound_core::agent::AgentConfig;
use tracehound_tower::LayerConfig;

/// The longest busy-polling window accepted: beyond a few milliseconds polling no longer
/// saves a wake-up, it only burns CPU.
pub const MAX_BUSY_POLL: Duration = Duration::from_millis(10);

/// The busy-polling maximum `tracehound proxy` uses when `--busy-poll-us` is not given, on a
/// virtual machine without guest halt polling and without a CPU quota: the kernel's
/// `cpuidle-haltpoll` default for KVM guests, long enough to cover a fast upstream's answer
/// and a client's quick next request.
pub const DEFAULT_BUSY_POLL: Duration = Duration::from_micros(200);

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
    /// When set (and not zero), each serving thread polls its sockets after every request
    /// event instead of sleeping, for windows it sizes to the waits it sees, each at most
    /// this long (one window for waits on an answer, one for waits on a client's next
    /// request; a wait the window missed but this maximum would have covered doubles it, a
    /// longer one halves it, down to zero): lower latency below saturation where
    /// waking an idle CPU is slow (VMs above all), for CPU while traffic flows, up to a
    /// whole core per serving thread. At most [`MAX_BUSY_POLL`]. Needs current-thread
    /// runtimes: [`Proxy::bind`] and [`Proxy::bind_with_workers`] refuse it on a
    /// multi-thread one ([`run`](crate::run), behind `tracehound proxy`, uses current-thread
    /// ones). Off in [`ProxyConfig::new`]; `tracehound proxy` turns it on with
    /// [`DEFAULT_BUSY_POLL`] on a virtual machine without guest halt polling and without a
    /// CPU quota, unless told otherwise (`--busy-poll-us` in `tracehound proxy --help`).
    ///
    /// [`Proxy::bind`]: crate::Proxy::bind
    /// [`Proxy::bind_with_workers`]: crate::Proxy::bind_with_workers
    pub busy_poll: Option<Duration>,
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
            busy_poll: None,
        }
    }
}
