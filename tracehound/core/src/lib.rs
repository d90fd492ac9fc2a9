//! Tracehound core: a decision-free runtime security buffer.
//!
//! External detectors decide what is a threat; this crate quarantines flagged requests as
//! hashed, compressed evidence, keeps a tamper-evident audit chain and rate-limits sources.
//! It performs no I/O beyond traits, is `Send + Sync`, and is bit-compatible with
//! Tracehound v1 wherever v1's formats are observable (canonical JSON, signatures, audit
//! chain hashes, codec envelope, IPC frames).

pub mod canonical;
pub mod error;
pub mod hash;
mod hexfmt;
pub mod id;
pub mod types;

pub mod audit;
pub mod evidence;
pub mod quarantine;
pub mod rate_limit;

pub mod codec;
pub mod fail_safe;
pub mod ipc;
pub mod lane_queue;
pub mod lifecycle;
pub mod notify;
pub mod scheduler;
pub mod snapshot_export;
pub mod state;
pub mod watcher;
pub mod webhook;

pub mod agent;
