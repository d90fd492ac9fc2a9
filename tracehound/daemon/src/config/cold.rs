//! `[cold]`: where evidence leaving the quarantine is kept (tracehound-cold's own
//! [`ColdConfig`], read as it is), checked here so a bad table is refused at load with its
//! file, line and field rather than when the daemon starts writing.

use secrecy::ExposeSecret;
use serde::Deserialize;
use tracehound_cold::ColdConfig;

/// The `[cold]` table: exactly one of `[cold.local]` or `[cold.s3]`, plus `prefix`,
/// `max_object_bytes` and `[cold.evacuation]`. Restart required to change.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct ColdSection(pub ColdConfig);

impl PartialEq for ColdSection {
    /// Field by field, secrets included (compared in place, never copied or printed): a
    /// rotated key is a change that needs a restart.
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&self.0, &other.0);
        let secret_eq =
            |x: &Option<secrecy::SecretString>, y: &Option<secrecy::SecretString>| match (x, y) {
                (None, None) => true,
                (Some(x), Some(y)) => x.expose_secret() == y.expose_secret(),
                _ => false,
            };
        let s3_eq = match (&a.s3, &b.s3) {
            (None, None) => true,
            (Some(x), Some(y)) => {
                x.bucket == y.bucket
                    && x.region == y.region
                    && x.endpoint == y.endpoint
                    && x.access_key_id == y.access_key_id
                    && secret_eq(&x.secret_access_key, &y.secret_access_key)
                    && secret_eq(&x.session_token, &y.session_token)
                    && x.allow_http == y.allow_http
                    && x.virtual_hosted_style == y.virtual_hosted_style
            }
            _ => false,
        };
        s3_eq
            && a.local == b.local
            && a.prefix == b.prefix
            && a.max_object_bytes == b.max_object_bytes
            && a.evacuation == b.evacuation
    }
}

impl Eq for ColdSection {}

/// Largest evacuation queue accepted (each slot may hold one evidence payload).
const MAX_QUEUE: usize = 1 << 20;

/// Most bytes the evacuation queue may hold at worst (`queue_capacity` full of evidence
/// of `limits.max_payload_size`): the queue lives in memory next to the quarantine.
pub const MAX_QUEUE_BYTES: u64 = 1 << 30;

impl ColdSection {
    /// Checks that a full evacuation queue stays within `MAX_QUEUE_BYTES` (1 GiB): the queue is
    /// bounded by count, and each entry holds at most one payload of `max_payload_size`.
    pub fn validate_queue_bytes(
        &self,
        max_payload_size: usize,
    ) -> Result<(), (&'static str, String)> {
        let capacity = self.0.evacuation.queue_capacity as u64;
        let worst = capacity.saturating_mul(max_payload_size as u64);
        if worst > MAX_QUEUE_BYTES {
            return Err((
                "cold.evacuation.queue_capacity",
                format!(
                    "{capacity} entries of up to limits.max_payload_size = {max_payload_size} \
                     bytes may hold {worst} bytes; at most {MAX_QUEUE_BYTES} (lower one of them)"
                ),
            ));
        }
        Ok(())
    }

    /// Range checks; the dotted field and the reason.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let c = &self.0;
        match (&c.local, &c.s3) {
            (Some(local), None) => {
                if local.path.as_os_str().is_empty() {
                    return Err(("cold.local.path", "must not be empty".into()));
                }
            }
            (None, Some(s3)) => {
                if s3.bucket.is_empty() {
                    return Err(("cold.s3.bucket", "is required".into()));
                }
                if let Some(endpoint) = &s3.endpoint {
                    if endpoint.starts_with("http://") && !s3.allow_http {
                        return Err((
                            "cold.s3.endpoint",
                            "a plain http:// endpoint needs `allow_http = true`".into(),
                        ));
                    }
                    if !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
                        return Err((
                            "cold.s3.endpoint",
                            "must be an http:// or https:// URL".into(),
                        ));
                    }
                }
            }
            (Some(_), Some(_)) => {
                return Err((
                    "cold",
                    "set exactly one of [cold.local] or [cold.s3], not both".into(),
                ))
            }
            (None, None) => {
                return Err((
                    "cold",
                    "set exactly one of [cold.local] (a directory) or [cold.s3] (a bucket)".into(),
                ))
            }
        }
        if c.prefix.is_empty()
            || c.prefix.starts_with('/')
            || c.prefix
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err((
                "cold.prefix",
                "must be a relative key prefix like `tracehound/evidence` (no empty, `.` or `..` parts)"
                    .into(),
            ));
        }
        if c.max_object_bytes < tracehound_core::codec::HEADER_SIZE as u64 {
            return Err((
                "cold.max_object_bytes",
                format!(
                    "must be at least {} (the envelope header)",
                    tracehound_core::codec::HEADER_SIZE
                ),
            ));
        }
        let e = c.evacuation;
        if e.queue_capacity == 0 || e.queue_capacity > MAX_QUEUE {
            return Err((
                "cold.evacuation.queue_capacity",
                format!("must be within 1..={MAX_QUEUE}"),
            ));
        }
        for (field, zero) in [
            ("cold.evacuation.concurrency", e.concurrency == 0),
            ("cold.evacuation.max_attempts", e.max_attempts == 0),
        ] {
            if zero {
                return Err((field, "must be positive".into()));
            }
        }
        if e.initial_backoff_ms > e.max_backoff_ms {
            return Err((
                "cold.evacuation.initial_backoff_ms",
                "must not exceed max_backoff_ms".into(),
            ));
        }
        Ok(())
    }
}
