//! The codec's error type, carrying v1's `CodecError` codes (spec §11.3).

use crate::error::{ErrorCode, TracehoundError};

/// Why an encode, decode or envelope operation failed.
///
/// Messages name sizes and reasons only; they never echo payload bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The compressor reported a failure (v1 `ENCODE_FAILED`).
    #[error("Compression failed: {reason}")]
    EncodeFailed {
        /// What the compressor said.
        reason: String,
    },
    /// The bytes are not a valid gzip stream (v1 `DECODE_FAILED`, same message as v1's
    /// `decodeWithIntegrity`).
    #[error("Decompression failed - possible storage corruption: {reason}")]
    DecodeFailed {
        /// What was wrong with the stream.
        reason: &'static str,
    },
    /// Decoding would produce more than the configured cap: a gzip bomb or a payload
    /// larger than allowed. Decoding stops at the cap, so memory stays bounded.
    #[error("Decompression failed - output exceeds limit of {limit} bytes")]
    OutputTooLarge {
        /// The cap in bytes.
        limit: u64,
    },
    /// The SHA-256 of the stored compressed bytes does not match the recorded hash, or
    /// the recorded sizes do not match the bytes (v1 `INTEGRITY_VIOLATION`).
    #[error("Integrity verification failed: {reason}")]
    IntegrityViolation {
        /// Which check failed.
        reason: &'static str,
    },
    /// A THCS cold-storage envelope is malformed (v1's `unpackEnvelope` returned `null`).
    #[error("Invalid envelope format: {reason}")]
    InvalidEnvelope {
        /// Which header check failed.
        reason: &'static str,
    },
    /// A streaming operation was used after it finished or failed.
    #[error("Stream already finished")]
    StreamFinished,
    /// Reading the input or writing the output of a streaming operation failed.
    #[error("Stream I/O failed: {reason}")]
    Io {
        /// The I/O error's description.
        reason: String,
    },
}

impl CodecError {
    /// v1's `CodecError.code`: `ENCODE_FAILED`, `DECODE_FAILED` or `INTEGRITY_VIOLATION`.
    ///
    /// Oversized output, malformed envelopes and stream misuse are decode-side failures in
    /// v1's terms; I/O failures are reported as the side they happened on would be.
    pub fn code(&self) -> &'static str {
        match self {
            CodecError::EncodeFailed { .. } => "ENCODE_FAILED",
            CodecError::IntegrityViolation { .. } => "INTEGRITY_VIOLATION",
            CodecError::DecodeFailed { .. }
            | CodecError::OutputTooLarge { .. }
            | CodecError::InvalidEnvelope { .. }
            | CodecError::StreamFinished
            | CodecError::Io { .. } => "DECODE_FAILED",
        }
    }

    /// The catalogue code (spec §22) this error maps to.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            CodecError::EncodeFailed { .. } => ErrorCode::CodecEncodeFailed,
            CodecError::IntegrityViolation { .. } => ErrorCode::CodecIntegrityFailed,
            _ => ErrorCode::CodecDecodeFailed,
        }
    }
}

impl From<CodecError> for TracehoundError {
    fn from(e: CodecError) -> Self {
        match &e {
            CodecError::EncodeFailed { .. } => TracehoundError::codec_encode_failed(&e.to_string()),
            CodecError::IntegrityViolation { .. } => TracehoundError::codec_integrity_failed(),
            _ => TracehoundError::codec_decode_failed(&e.to_string()),
        }
    }
}
