//! Tracehound as a `tower::Layer` for axum and hyper services.
//!
//! [`TracehoundLayer`] builds a [`Scent`](tracehound_core::types::Scent) from every request
//! and hands it to a shared [`Agent`](tracehound_core::agent::Agent):
//!
//! * **client address**: the immediate peer ([`PeerAddr`] or axum's
//!   `ConnectInfo<SocketAddr>`), or, when that peer is in
//!   [`LayerConfig::trusted_proxies`], the rightmost untrusted hop of the configured
//!   forwarding header (`X-Forwarded-For` or RFC 7239 `Forwarded`). IPv6 clients are keyed
//!   by their /64 network.
//! * **threat signal**: from a trusted upstream WAF's header
//!   ([`LayerConfig::waf_header`], `category; severity=high`) or from a [`Detector`]
//!   (bounded by a deadline; timeouts, errors and panics let the request pass, counted).
//! * **content**: method, path, query, [`LayerConfig::selected_headers`] and the first
//!   [`LayerConfig::max_body_bytes`] of the body. The body reaches the inner service
//!   intact ([`InspectedBody`]: the prefix read, then the rest streamed, never buffered
//!   whole).
//!
//! Answers: quarantined (or already quarantined) → [`LayerConfig::quarantine_status`]
//! (403), rate limited → 429 with `Retry-After` in seconds (rounded up), payload too large
//! → 413. Everything internal (a core `error`, a missing peer address, a body read error
//! before forwarding) lets the request through and is counted in [`LayerStats`]: the layer
//! never answers 500. Note the core rate-limits every intercept, clean ones included.
//!
//! Cost: without a detector and without a WAF verdict, the request takes the fast path:
//! the intercept runs inside `call` with a `null` payload (the core never reads a clean
//! scent's payload), the body is untouched and the inner future is returned unboxed. The
//! allocations are the scent's id and source strings.

mod body;
mod cidr;
mod config;
mod detector;
pub mod headers;
mod layer;
mod scent;
mod service;
mod stats;

pub use body::{InspectedBody, ResponseBody};
pub use cidr::{CidrError, IpCidr};
pub use config::{ForwardedHeader, LayerConfig};
pub use detector::{Detector, DetectorError, DetectorFuture, RequestView};
pub use layer::{PeerAddr, TracehoundLayer};
pub use service::{ResponseFuture, TracehoundService};
pub use stats::LayerStats;
