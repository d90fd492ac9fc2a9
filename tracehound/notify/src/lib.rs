//! Tracehound's notification sinks.
//!
//! The core's [`NotificationEmitter`](tracehound_core::notify::NotificationEmitter)
//! only pushes events into bounded lock-free queues; this crate takes them from there
//! and delivers them, so the request path never waits on a sink:
//!
//! ```text
//! intercept ─▶ emitter (ArrayQueue, drop+count) ─▶ dispatcher ─▶ coalescer ─▶ per-sink queue ─▶ worker ─▶ HTTP
//!                                                    (own thread, current-thread runtime)      (bounded, drop+count; retries with back-off)
//! ```
//!
//! * [`record`] — the metadata record (allowlisted payload keys only; never payload bytes).
//! * [`coalesce`] — one record per key per window, with counts.
//! * [`format`](mod@format) — bodies for webhook (v1), Splunk HEC, Elasticsearch (ECS), Datadog and
//!   OCSF; no I/O.
//! * [`sink`] — sink settings and request building; [`backoff`] — retry delays.
//! * [`Notifier`] — the running pipeline: `submit`, `stats`, `purge_matching`, `shutdown`.

pub mod backoff;
pub mod coalesce;
pub mod format;
mod http;
mod notifier;
pub mod record;
mod refusal;
pub mod sink;
mod worker;

pub use coalesce::{CoalesceConfig, CoalesceKey, CoalesceStats};
pub use notifier::{Notifier, NotifierConfig, NotifierError, NotifierStats};
pub use record::Record;
pub use sink::{redact_url, SinkConfig, SinkKind};
pub use worker::SinkStats;
