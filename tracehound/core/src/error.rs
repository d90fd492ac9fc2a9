//! The error catalogue of v1 (spec §22) as one typed error.
//!
//! Every error carries v1's stable string code (`AGENT_PAYLOAD_TOO_LARGE`, ...), its
//! state (`agent`, `quarantine`, ...), v1's message text and its `recoverable` flag, so
//! results reported by the Rust core read the same as v1's. Other modules map their
//! failures to a [`TracehoundError`] through the constructors below (one per v1 factory)
//! or through [`TracehoundError::new`] with an [`ErrorCode`].
//!
//! Messages never contain secrets: callers pass identifiers, sizes and reasons only.

use std::fmt;

use serde_json::{json, Map, Value};

/// Which part of Tracehound an error belongs to (v1's `ErrorState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorState {
    /// Configuration (`config`).
    Config,
    /// Scent input (`scent`).
    Scent,
    /// The agent and payload encoding (`agent`).
    Agent,
    /// The quarantine (`quarantine`).
    Quarantine,
    /// Evidence objects (`evidence`).
    Evidence,
    /// Compression and the integrity envelope (`codec`).
    Codec,
    /// Cold storage (`cold_storage`).
    ColdStorage,
    /// Hound processes (`process`).
    Process,
    /// The rate limiter (`ratelimit`).
    RateLimit,
    /// Runtime checks (`runtime`).
    Runtime,
    /// The scheduler (`scheduler`).
    Scheduler,
}

impl ErrorState {
    /// v1's wire name (`"cold_storage"`, `"ratelimit"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorState::Config => "config",
            ErrorState::Scent => "scent",
            ErrorState::Agent => "agent",
            ErrorState::Quarantine => "quarantine",
            ErrorState::Evidence => "evidence",
            ErrorState::Codec => "codec",
            ErrorState::ColdStorage => "cold_storage",
            ErrorState::Process => "process",
            ErrorState::RateLimit => "ratelimit",
            ErrorState::Runtime => "runtime",
            ErrorState::Scheduler => "scheduler",
        }
    }
}

impl fmt::Display for ErrorState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident => $code:literal, $state:ident, $rec:literal; )*) => {
        /// v1's stable error codes: the 34 of `ErrorCodes` plus the two catch-all codes v1
        /// uses at run time without listing them (`INTERCEPT_FAILED`,
        /// `EVIDENCE_CREATION_FAILED`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[$doc])* #[doc = concat!("`", $code, "`")] $variant, )*
        }

        impl ErrorCode {
            /// Every code, in v1's declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The stable string code (`"AGENT_PAYLOAD_TOO_LARGE"`, ...).
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// The state v1 reports with this code.
            pub fn state(self) -> ErrorState {
                match self { $(ErrorCode::$variant => ErrorState::$state,)* }
            }

            /// v1's `recoverable` flag for errors of this code.
            pub fn recoverable(self) -> bool {
                match self { $(ErrorCode::$variant => $rec,)* }
            }

            /// Looks a code up by its string form.
            pub fn from_code(code: &str) -> Option<ErrorCode> {
                Self::ALL.iter().copied().find(|c| c.as_str() == code)
            }
        }
    };
}

error_codes! {
    ConfigQuarantineInvalid => "CONFIG_QUARANTINE_INVALID", Config, false;
    ConfigRateLimitInvalid => "CONFIG_RATELIMIT_INVALID", Config, false;
    ConfigAgentInvalid => "CONFIG_AGENT_INVALID", Config, false;
    ConfigSchedulerInvalid => "CONFIG_SCHEDULER_INVALID", Config, false;
    ScentPayloadInvalid => "SCENT_PAYLOAD_INVALID", Scent, false;
    ScentSourceMissing => "SCENT_SOURCE_MISSING", Scent, false;
    ScentIdInvalid => "SCENT_ID_INVALID", Scent, false;
    AgentPayloadTooLarge => "AGENT_PAYLOAD_TOO_LARGE", Agent, false;
    AgentSerializationFailed => "AGENT_SERIALIZATION_FAILED", Agent, false;
    AgentInterceptFailed => "AGENT_INTERCEPT_FAILED", Agent, true;
    QuarantineFull => "QUARANTINE_FULL", Quarantine, false;
    QuarantineEvictFailed => "QUARANTINE_EVICT_FAILED", Quarantine, false;
    EvidenceDisposed => "EVIDENCE_DISPOSED", Evidence, false;
    EvidenceTransferFailed => "EVIDENCE_TRANSFER_FAILED", Evidence, false;
    EvidenceEmpty => "EVIDENCE_EMPTY", Evidence, false;
    EvidenceInvalidBytes => "EVIDENCE_INVALID_BYTES", Evidence, false;
    EvidenceHashMismatch => "EVIDENCE_HASH_MISMATCH", Evidence, false;
    CodecEncodeFailed => "CODEC_ENCODE_FAILED", Codec, false;
    CodecDecodeFailed => "CODEC_DECODE_FAILED", Codec, false;
    CodecIntegrityFailed => "CODEC_INTEGRITY_FAILED", Codec, false;
    ColdWriteFailed => "COLD_WRITE_FAILED", ColdStorage, true;
    ColdReadFailed => "COLD_READ_FAILED", ColdStorage, true;
    ColdNotFound => "COLD_NOT_FOUND", ColdStorage, false;
    ColdUnavailable => "COLD_UNAVAILABLE", ColdStorage, true;
    ProcessSpawnFailed => "PROCESS_SPAWN_FAILED", Process, true;
    ProcessTimeout => "PROCESS_TIMEOUT", Process, false;
    ProcessCrashed => "PROCESS_CRASHED", Process, true;
    ProcessPoolExhausted => "PROCESS_POOL_EXHAUSTED", Process, true;
    RateLimited => "RATE_LIMITED", RateLimit, true;
    RateSourceBlocked => "RATE_SOURCE_BLOCKED", RateLimit, true;
    RuntimeFlagMissing => "RUNTIME_FLAG_MISSING", Runtime, false;
    RuntimeIntrinsicsNotFrozen => "RUNTIME_INTRINSICS_NOT_FROZEN", Runtime, false;
    SchedulerTaskFailed => "SCHEDULER_TASK_FAILED", Scheduler, true;
    SchedulerAlreadyRunning => "SCHEDULER_ALREADY_RUNNING", Scheduler, false;
    /// The agent's catch-all for a failure inside `intercept` (v1 `agent.ts`).
    InterceptFailed => "INTERCEPT_FAILED", Agent, false;
    /// The evidence factory's catch-all (v1 `evidence-factory.ts`).
    EvidenceCreationFailed => "EVIDENCE_CREATION_FAILED", Agent, false;
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Tracehound error: v1's `{state, code, message, context?, recoverable}`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct TracehoundError {
    code: ErrorCode,
    message: String,
    context: Option<Value>,
    recoverable: bool,
}

/// `Result` with a [`TracehoundError`].
pub type Result<T, E = TracehoundError> = std::result::Result<T, E>;

fn ctx<const N: usize>(pairs: [(&str, Value); N]) -> Option<Value> {
    let mut map = Map::new();
    for (k, v) in pairs {
        map.insert(k.to_owned(), v);
    }
    Some(Value::Object(map))
}

impl TracehoundError {
    /// An error with `code`, v1's default `recoverable` for that code, and the given message
    /// and context.
    pub fn new(code: ErrorCode, message: impl Into<String>, context: Option<Value>) -> Self {
        TracehoundError {
            code,
            message: message.into(),
            context,
            recoverable: code.recoverable(),
        }
    }

    /// Overrides the `recoverable` flag (v1's `createError` option).
    pub fn with_recoverable(mut self, recoverable: bool) -> Self {
        self.recoverable = recoverable;
        self
    }

    /// The stable string code, e.g. `"AGENT_PAYLOAD_TOO_LARGE"`.
    pub fn code(&self) -> &'static str {
        self.code.as_str()
    }

    /// The typed code.
    pub fn error_code(&self) -> ErrorCode {
        self.code
    }

    /// The state (`agent`, `quarantine`, ...).
    pub fn state(&self) -> ErrorState {
        self.code.state()
    }

    /// v1's message text.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// v1's context object, if the factory sets one.
    pub fn context(&self) -> Option<&Value> {
        self.context.as_ref()
    }

    /// Whether v1 marks this error as recoverable.
    pub fn recoverable(&self) -> bool {
        self.recoverable
    }

    /// v1's JSON shape: `{state, code, message, context?, recoverable}` (context omitted
    /// when absent, as `JSON.stringify` omits `undefined`).
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("state".into(), Value::from(self.state().as_str()));
        map.insert("code".into(), Value::from(self.code()));
        map.insert("message".into(), Value::from(self.message.clone()));
        if let Some(c) = &self.context {
            map.insert("context".into(), c.clone());
        }
        map.insert("recoverable".into(), Value::Bool(self.recoverable));
        Value::Object(map)
    }

    // ---- v1 factories (spec §22), same messages and contexts ----

    /// `CONFIG_QUARANTINE_INVALID`: "Invalid quarantine config: {issue}".
    pub fn invalid_config_quarantine(issue: &str) -> Self {
        Self::new(
            ErrorCode::ConfigQuarantineInvalid,
            format!("Invalid quarantine config: {issue}"),
            ctx([("issue", json!(issue))]),
        )
    }
    /// `CONFIG_RATELIMIT_INVALID`: "Invalid rate limit config: {issue}".
    pub fn invalid_config_rate_limit(issue: &str) -> Self {
        Self::new(
            ErrorCode::ConfigRateLimitInvalid,
            format!("Invalid rate limit config: {issue}"),
            ctx([("issue", json!(issue))]),
        )
    }
    /// `CONFIG_AGENT_INVALID`: "Invalid agent config: {issue}".
    pub fn invalid_config_agent(issue: &str) -> Self {
        Self::new(
            ErrorCode::ConfigAgentInvalid,
            format!("Invalid agent config: {issue}"),
            ctx([("issue", json!(issue))]),
        )
    }
    /// `CONFIG_SCHEDULER_INVALID`: "Invalid scheduler config: {issue}".
    pub fn invalid_config_scheduler(issue: &str) -> Self {
        Self::new(
            ErrorCode::ConfigSchedulerInvalid,
            format!("Invalid scheduler config: {issue}"),
            ctx([("issue", json!(issue))]),
        )
    }
    /// `SCENT_PAYLOAD_INVALID`: "Invalid scent payload: {reason}".
    pub fn scent_payload_invalid(reason: &str) -> Self {
        Self::new(
            ErrorCode::ScentPayloadInvalid,
            format!("Invalid scent payload: {reason}"),
            ctx([("reason", json!(reason))]),
        )
    }
    /// `SCENT_SOURCE_MISSING`: "Scent source is required".
    pub fn scent_source_missing() -> Self {
        Self::new(
            ErrorCode::ScentSourceMissing,
            "Scent source is required",
            None,
        )
    }
    /// `SCENT_ID_INVALID`: "Invalid scent ID format: {id}".
    pub fn scent_id_invalid(id: &str) -> Self {
        Self::new(
            ErrorCode::ScentIdInvalid,
            format!("Invalid scent ID format: {id}"),
            ctx([("id", json!(id))]),
        )
    }
    /// `Payload size {size} exceeds limit {limit}`, context `{size, limit}`.
    pub fn payload_too_large(size: usize, limit: usize) -> Self {
        Self::new(
            ErrorCode::AgentPayloadTooLarge,
            format!("Payload size {size} exceeds limit {limit}"),
            ctx([("size", json!(size)), ("limit", json!(limit))]),
        )
    }
    /// `Failed to serialize: {reason}`. The spec's table lists a `{reason}` context, but
    /// what `encodePayload` actually throws carries none (vector `canonical_json_errors`),
    /// so none is set.
    pub fn serialization_failed(reason: &str) -> Self {
        Self::new(
            ErrorCode::AgentSerializationFailed,
            format!("Failed to serialize: {reason}"),
            None,
        )
    }
    /// `AGENT_INTERCEPT_FAILED`: "Intercept failed: {reason}".
    pub fn intercept_failed(reason: &str) -> Self {
        Self::new(
            ErrorCode::AgentInterceptFailed,
            format!("Intercept failed: {reason}"),
            ctx([("reason", json!(reason))]),
        )
    }
    /// `QUARANTINE_FULL`: "Quarantine at capacity: {count}/{max_count}".
    pub fn quarantine_full(count: usize, max_count: usize) -> Self {
        Self::new(
            ErrorCode::QuarantineFull,
            format!("Quarantine at capacity: {count}/{max_count}"),
            ctx([("count", json!(count)), ("maxCount", json!(max_count))]),
        )
    }
    /// `QUARANTINE_EVICT_FAILED`: "Eviction failed: {reason}".
    pub fn quarantine_evict_failed(reason: &str) -> Self {
        Self::new(
            ErrorCode::QuarantineEvictFailed,
            format!("Eviction failed: {reason}"),
            ctx([("reason", json!(reason))]),
        )
    }
    /// `EVIDENCE_DISPOSED`: "Evidence {signature} already disposed".
    pub fn evidence_disposed(signature: &str) -> Self {
        Self::new(
            ErrorCode::EvidenceDisposed,
            format!("Evidence {signature} already disposed"),
            ctx([("signature", json!(signature))]),
        )
    }
    /// `EVIDENCE_TRANSFER_FAILED`: "Failed to transfer evidence {signature}".
    pub fn evidence_transfer_failed(signature: &str) -> Self {
        Self::new(
            ErrorCode::EvidenceTransferFailed,
            format!("Failed to transfer evidence {signature}"),
            ctx([("signature", json!(signature))]),
        )
    }
    /// `EVIDENCE_EMPTY`: "Evidence bytes cannot be empty".
    pub fn evidence_empty() -> Self {
        Self::new(
            ErrorCode::EvidenceEmpty,
            "Evidence bytes cannot be empty",
            None,
        )
    }
    /// `EVIDENCE_INVALID_BYTES`: "Evidence bytes must be ArrayBuffer".
    pub fn evidence_invalid_bytes() -> Self {
        Self::new(
            ErrorCode::EvidenceInvalidBytes,
            "Evidence bytes must be ArrayBuffer",
            None,
        )
    }
    /// `EVIDENCE_HASH_MISMATCH`: "Hash mismatch: expected {expected}, got {actual}".
    pub fn evidence_hash_mismatch(expected: &str, actual: &str) -> Self {
        Self::new(
            ErrorCode::EvidenceHashMismatch,
            format!("Hash mismatch: expected {expected}, got {actual}"),
            ctx([("expected", json!(expected)), ("actual", json!(actual))]),
        )
    }
    /// `CODEC_ENCODE_FAILED`: "Encoding failed: {reason}".
    pub fn codec_encode_failed(reason: &str) -> Self {
        Self::new(
            ErrorCode::CodecEncodeFailed,
            format!("Encoding failed: {reason}"),
            ctx([("reason", json!(reason))]),
        )
    }
    /// `CODEC_DECODE_FAILED`: "Decoding failed: {reason}".
    pub fn codec_decode_failed(reason: &str) -> Self {
        Self::new(
            ErrorCode::CodecDecodeFailed,
            format!("Decoding failed: {reason}"),
            ctx([("reason", json!(reason))]),
        )
    }
    /// `CODEC_INTEGRITY_FAILED`: "Integrity verification failed".
    pub fn codec_integrity_failed() -> Self {
        Self::new(
            ErrorCode::CodecIntegrityFailed,
            "Integrity verification failed",
            None,
        )
    }
    /// `COLD_WRITE_FAILED`: "Failed to write {id}: {reason}".
    pub fn cold_storage_write_failed(id: &str, reason: &str) -> Self {
        Self::new(
            ErrorCode::ColdWriteFailed,
            format!("Failed to write {id}: {reason}"),
            ctx([("id", json!(id)), ("reason", json!(reason))]),
        )
    }
    /// `COLD_READ_FAILED`: "Failed to read {id}: {reason}".
    pub fn cold_storage_read_failed(id: &str, reason: &str) -> Self {
        Self::new(
            ErrorCode::ColdReadFailed,
            format!("Failed to read {id}: {reason}"),
            ctx([("id", json!(id)), ("reason", json!(reason))]),
        )
    }
    /// `COLD_NOT_FOUND`: "Evidence {id} not found in cold storage".
    pub fn cold_storage_not_found(id: &str) -> Self {
        Self::new(
            ErrorCode::ColdNotFound,
            format!("Evidence {id} not found in cold storage"),
            ctx([("id", json!(id))]),
        )
    }
    /// `COLD_UNAVAILABLE`: "Cold storage is unavailable".
    pub fn cold_storage_unavailable() -> Self {
        Self::new(
            ErrorCode::ColdUnavailable,
            "Cold storage is unavailable",
            None,
        )
    }
    /// `PROCESS_SPAWN_FAILED`: "Failed to spawn process: {reason}".
    pub fn process_spawn_failed(reason: &str) -> Self {
        Self::new(
            ErrorCode::ProcessSpawnFailed,
            format!("Failed to spawn process: {reason}"),
            ctx([("reason", json!(reason))]),
        )
    }
    /// `PROCESS_TIMEOUT`: "Process {hound_id} timed out after {elapsed_ms}ms".
    pub fn process_timeout(hound_id: &str, elapsed_ms: u64) -> Self {
        Self::new(
            ErrorCode::ProcessTimeout,
            format!("Process {hound_id} timed out after {elapsed_ms}ms"),
            ctx([("houndId", json!(hound_id)), ("elapsed", json!(elapsed_ms))]),
        )
    }
    /// `PROCESS_CRASHED`: "Process {hound_id} crashed with code {exit_code}".
    pub fn process_crashed(hound_id: &str, exit_code: i32) -> Self {
        Self::new(
            ErrorCode::ProcessCrashed,
            format!("Process {hound_id} crashed with code {exit_code}"),
            ctx([("houndId", json!(hound_id)), ("exitCode", json!(exit_code))]),
        )
    }
    /// `PROCESS_POOL_EXHAUSTED`: "Process pool exhausted, action: {action}".
    pub fn process_pool_exhausted(action: &str) -> Self {
        Self::new(
            ErrorCode::ProcessPoolExhausted,
            format!("Process pool exhausted, action: {action}"),
            ctx([("action", json!(action))]),
        )
    }
    /// `RATE_LIMITED`: "Source {source} rate limited".
    pub fn rate_limited(source: &str, retry_after_ms: u64) -> Self {
        Self::new(
            ErrorCode::RateLimited,
            format!("Source {source} rate limited"),
            ctx([
                ("source", json!(source)),
                ("retryAfter", json!(retry_after_ms)),
            ]),
        )
    }
    /// `RATE_SOURCE_BLOCKED`: "Source {source} blocked until {until_ms}".
    pub fn rate_source_blocked(source: &str, until_ms: u64) -> Self {
        Self::new(
            ErrorCode::RateSourceBlocked,
            format!("Source {source} blocked until {until_ms}"),
            ctx([("source", json!(source)), ("until", json!(until_ms))]),
        )
    }
    /// `RUNTIME_FLAG_MISSING`: "Required runtime flag missing: {flag}".
    pub fn runtime_flag_missing(flag: &str) -> Self {
        Self::new(
            ErrorCode::RuntimeFlagMissing,
            format!("Required runtime flag missing: {flag}"),
            ctx([("flag", json!(flag))]),
        )
    }
    /// `RUNTIME_INTRINSICS_NOT_FROZEN`: "Intrinsics are not frozen".
    pub fn runtime_intrinsics_not_frozen() -> Self {
        Self::new(
            ErrorCode::RuntimeIntrinsicsNotFrozen,
            "Intrinsics are not frozen",
            None,
        )
    }
    /// `SCHEDULER_TASK_FAILED`: "Task {task_id} failed: {reason}".
    pub fn scheduler_task_failed(task_id: &str, reason: &str) -> Self {
        Self::new(
            ErrorCode::SchedulerTaskFailed,
            format!("Task {task_id} failed: {reason}"),
            ctx([("taskId", json!(task_id)), ("reason", json!(reason))]),
        )
    }
    /// `SCHEDULER_ALREADY_RUNNING`: "Scheduler is already running".
    pub fn scheduler_already_running() -> Self {
        Self::new(
            ErrorCode::SchedulerAlreadyRunning,
            "Scheduler is already running",
            None,
        )
    }
    /// The agent's catch-all (`INTERCEPT_FAILED`, context `{scentId}`); `message` is the
    /// failure's text or v1's `"Unknown error during intercept"`.
    pub fn intercept_catch_all(message: Option<&str>, scent_id: &str) -> Self {
        Self::new(
            ErrorCode::InterceptFailed,
            message.unwrap_or("Unknown error during intercept"),
            ctx([("scentId", json!(scent_id))]),
        )
    }
    /// The evidence factory's catch-all (`EVIDENCE_CREATION_FAILED`, context `{scentId}`).
    pub fn evidence_creation_failed(message: Option<&str>, scent_id: &str) -> Self {
        Self::new(
            ErrorCode::EvidenceCreationFailed,
            message.unwrap_or("Unknown error"),
            ctx([("scentId", json!(scent_id))]),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        for (i, a) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(ErrorCode::from_code(a.as_str()), Some(*a));
            for b in &ErrorCode::ALL[i + 1..] {
                assert_ne!(a.as_str(), b.as_str());
            }
        }
        assert_eq!(ErrorCode::ALL.len(), 36);
    }

    #[test]
    fn payload_too_large_matches_v1_shape() {
        let e = TracehoundError::payload_too_large(9, 8);
        assert_eq!(e.code(), "AGENT_PAYLOAD_TOO_LARGE");
        assert_eq!(e.state().as_str(), "agent");
        assert!(!e.recoverable());
        assert_eq!(e.to_string(), "Payload size 9 exceeds limit 8");
        assert_eq!(
            e.to_json(),
            json!({"state":"agent","code":"AGENT_PAYLOAD_TOO_LARGE",
                   "message":"Payload size 9 exceeds limit 8",
                   "context":{"size":9,"limit":8},"recoverable":false})
        );
    }

    #[test]
    fn recoverable_defaults_follow_v1() {
        assert!(TracehoundError::rate_limited("a", 5).recoverable());
        assert!(!TracehoundError::codec_integrity_failed().recoverable());
        assert_eq!(
            TracehoundError::rate_limited("a", 5).state(),
            ErrorState::RateLimit
        );
        assert_eq!(ErrorState::ColdStorage.as_str(), "cold_storage");
    }
}
