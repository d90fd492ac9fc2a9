//! Configuration, as the daemon reads it from TOML (`[cold]`).
//!
//! ```toml
//! [cold.local]                      # the embedded default
//! path = "/var/lib/tracehound/cold"
//!
//! # or, instead of [cold.local]:
//! [cold.s3]
//! bucket = "evidence"
//! region = "us-east-1"              # R2: "auto"
//! endpoint = "https://<account>.r2.cloudflarestorage.com"   # omit for AWS
//! # access_key_id / secret_access_key: else AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY ...
//!
//! [cold.evacuation]
//! queue_capacity = 1024
//! ```

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use crate::layout::DEFAULT_PREFIX;

/// The whole `[cold]` section: exactly one of `[cold.local]` or `[cold.s3]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColdConfig {
    /// A directory on the local filesystem (the embedded default).
    #[serde(default)]
    pub local: Option<LocalConfig>,
    /// An S3-compatible bucket.
    #[serde(default)]
    pub s3: Option<S3Config>,
    /// Key prefix inside the store (default `tracehound/evidence`).
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Largest object `get` will read, in bytes (default 64 MiB + header).
    #[serde(default = "default_max_object_bytes")]
    pub max_object_bytes: u64,
    /// The evacuation queue.
    #[serde(default)]
    pub evacuation: EvacuationConfig,
}

impl ColdConfig {
    /// A local-directory configuration with every other setting at its default.
    pub fn local(path: impl Into<PathBuf>) -> ColdConfig {
        ColdConfig {
            local: Some(LocalConfig { path: path.into() }),
            s3: None,
            prefix: default_prefix(),
            max_object_bytes: default_max_object_bytes(),
            evacuation: EvacuationConfig::default(),
        }
    }

    /// An S3 configuration with every other setting at its default.
    pub fn s3(s3: S3Config) -> ColdConfig {
        ColdConfig {
            s3: Some(s3),
            local: None,
            ..ColdConfig::local(PathBuf::new())
        }
    }
}

/// `[cold.local]`: a directory, created if missing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalConfig {
    /// The directory.
    pub path: PathBuf,
}

/// An S3-compatible bucket. Fields left out come from the standard `AWS_*` environment
/// variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
/// `AWS_REGION`/`AWS_DEFAULT_REGION`, `AWS_ENDPOINT`).
#[derive(Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// Bucket name (required).
    pub bucket: String,
    /// Region (`auto` for R2).
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint URL for services other than AWS (`https://...`; `http://` only with
    /// `allow_http`).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Access key id.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Secret access key (never logged).
    #[serde(default)]
    pub secret_access_key: Option<SecretString>,
    /// Session token (never logged).
    #[serde(default)]
    pub session_token: Option<SecretString>,
    /// Permit a plain-HTTP endpoint (for a loopback test server or a local MinIO).
    #[serde(default)]
    pub allow_http: bool,
    /// Virtual-hosted-style requests (`bucket.endpoint`) instead of path style.
    #[serde(default)]
    pub virtual_hosted_style: bool,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("allow_http", &self.allow_http)
            .field("virtual_hosted_style", &self.virtual_hosted_style)
            .finish()
    }
}

/// The evacuation queue and its writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvacuationConfig {
    /// Evidence waiting to be written, at most (further evictions are dropped and counted).
    pub queue_capacity: usize,
    /// Writes in flight at once.
    pub concurrency: usize,
    /// Attempts per object before it counts as a failure (at least 1).
    pub max_attempts: u32,
    /// First retry delay, doubled per attempt (ms).
    pub initial_backoff_ms: u64,
    /// Longest retry delay (ms).
    pub max_backoff_ms: u64,
}

impl Default for EvacuationConfig {
    fn default() -> Self {
        EvacuationConfig {
            queue_capacity: 1024,
            concurrency: 4,
            max_attempts: 5,
            initial_backoff_ms: 100,
            max_backoff_ms: 10_000,
        }
    }
}

impl EvacuationConfig {
    /// The delay before retry number `retry` (1-based): exponential, capped.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u64
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u64::MAX);
        Duration::from_millis(
            self.initial_backoff_ms
                .saturating_mul(factor)
                .min(self.max_backoff_ms),
        )
    }
}

fn default_prefix() -> String {
    DEFAULT_PREFIX.to_owned()
}

fn default_max_object_bytes() -> u64 {
    tracehound_core::codec::DEFAULT_MAX_DECODED_SIZE + tracehound_core::codec::HEADER_SIZE as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let c = EvacuationConfig {
            initial_backoff_ms: 10,
            max_backoff_ms: 50,
            ..EvacuationConfig::default()
        };
        let ms: Vec<u128> = (1..=5).map(|r| c.backoff(r).as_millis()).collect();
        assert_eq!(ms, vec![10, 20, 40, 50, 50]);
        assert_eq!(c.backoff(200).as_millis(), 50);
    }
}
