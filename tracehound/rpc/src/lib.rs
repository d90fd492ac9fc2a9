//! tracehoundd's gRPC contract (`proto/tracehound.proto`): generated types and a client.
//!
//! * [`pb`] — the messages, the `Tracehound` client and the server trait, generated at build
//!   time from the contract (no system `protoc` needed).
//! * [`client::connect`] — a client over a Unix socket (`unix:PATH` or a bare path) or
//!   loopback TCP (`http://127.0.0.1:PORT`).
//! * [`direct`] — a lean `Intercept`-only caller over one HTTP/2 connection whose I/O the
//!   caller drives in its own task (load generation).

pub mod client;
pub mod direct;
mod target;

pub use client::{connect, RpcError};
pub use target::Target;

/// Types generated from `proto/tracehound.proto` (package `tracehound.v1`).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("tracehound.v1");
}

/// Status names as the daemon and CLI print them (`clean`, `rate_limited`, ...), matching
/// the core's result kinds; `unspecified` for the proto's zero value.
pub fn status_name(status: pb::Status) -> &'static str {
    match status {
        pb::Status::Unspecified => "unspecified",
        pb::Status::Clean => "clean",
        pb::Status::RateLimited => "rate_limited",
        pb::Status::PayloadTooLarge => "payload_too_large",
        pb::Status::Ignored => "ignored",
        pb::Status::Quarantined => "quarantined",
        pb::Status::Error => "error",
    }
}
