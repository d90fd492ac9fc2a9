//! Tracehound cold storage: evidence evacuated from the quarantine to an object store
//! (a local directory by default, S3-compatible buckets for scale), retrieved by
//! signature and verified on every read.
//!
//! * [`ColdStore`] — put / get / contains / list / delete over any
//!   [`object_store::ObjectStore`]. Objects are v1's THCS envelopes (spec §12.2) under
//!   `{prefix}/{category}/{hash[0..2]}/{hash}.thcs` ([`layout`]). `get` checks the
//!   envelope, its hash, the decompressed size and that the payload hashes to the
//!   signature; anything else is [`ColdError::Corrupt`].
//! * [`Evacuator`] — a bounded queue drained by one async task (retries with exponential
//!   backoff, bounded concurrency). Fed by quarantine evictions (installed as the
//!   quarantine's eviction sink) and by explicit or policy evacuations. The intercept path
//!   never waits on storage: a full queue drops the evicted evidence and counts it.
//! * [`EvacuationStats`] — objects and bytes written, retries, failures, drops.

mod config;
mod envelope;
mod error;
mod evacuate;
pub mod layout;
pub mod sealed;
mod stats;
mod store;

pub use config::{ColdConfig, EvacuationConfig, LocalConfig, S3Config};
pub use envelope::{ColdEvidence, SealedEvidence};
pub use error::ColdError;
pub use evacuate::{EvacuateError, EvacuationHandle, Evacuator, SweepOutcome};
pub use sealed::{EvidenceSealer, SealerError, WriteFilter};
pub use stats::EvacuationStats;
pub use store::{ColdObject, ColdStore, PutReceipt};
