//! The integrity wrapper of spec §11.3: gzip bytes plus the SHA-256 of the *compressed*
//! bytes, so stored evidence can be checked without decompressing it.

use sha2::{Digest, Sha256};

use super::{CodecError, GzipCodec};

/// v1's `EncodedPayload`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedPayload {
    /// The gzip bytes.
    pub compressed: Vec<u8>,
    /// Lowercase hex SHA-256 of `compressed`.
    pub hash: String,
    /// Length of the uncompressed input.
    pub original_size: u64,
    /// Length of `compressed`.
    pub compressed_size: u64,
}

/// Lowercase hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Compresses `input` and records the hash of the compressed bytes
/// (v1 `encodeWithIntegrity`).
pub fn encode_with_integrity(
    codec: &GzipCodec,
    input: &[u8],
) -> Result<EncodedPayload, CodecError> {
    let compressed = codec.encode(input)?;
    Ok(EncodedPayload {
        hash: sha256_hex(&compressed),
        original_size: input.len() as u64,
        compressed_size: compressed.len() as u64,
        compressed,
    })
}

/// v1 `verify`: does the SHA-256 of the stored compressed bytes equal the recorded hash?
/// Like v1 it covers neither `original_size` nor `compressed_size`.
pub fn verify(payload: &EncodedPayload) -> bool {
    let actual = sha256_hex(&payload.compressed);
    constant_time_eq(actual.as_bytes(), payload.hash.as_bytes())
}

/// Verifies, then decompresses (v1 `decodeWithIntegrity`, hardened).
///
/// Deviation from v1, on purpose: v1 decompressed without checking anything. Here the
/// hash must match (`INTEGRITY_VIOLATION`), `compressed_size` must equal the stored
/// length, and the output must be exactly `original_size` bytes — which also serves as
/// the decode cap, so a forged payload cannot inflate past its declared size.
pub fn decode_with_integrity(
    codec: &GzipCodec,
    payload: &EncodedPayload,
) -> Result<Vec<u8>, CodecError> {
    if payload.compressed_size != payload.compressed.len() as u64 {
        return Err(CodecError::IntegrityViolation {
            reason: "compressed size does not match stored bytes",
        });
    }
    if !verify(payload) {
        return Err(CodecError::IntegrityViolation {
            reason: "hash mismatch",
        });
    }
    if payload.original_size > codec.config().max_decoded_size {
        return Err(CodecError::OutputTooLarge {
            limit: codec.config().max_decoded_size,
        });
    }
    let out = match codec.decode_with_limit(&payload.compressed, payload.original_size) {
        Ok(out) => out,
        Err(CodecError::OutputTooLarge { .. }) => {
            return Err(CodecError::IntegrityViolation {
                reason: "decoded size exceeds original size",
            })
        }
        Err(e) => return Err(e),
    };
    if out.len() as u64 != payload.original_size {
        return Err(CodecError::IntegrityViolation {
            reason: "decoded size differs from original size",
        });
    }
    Ok(out)
}

/// Compares two byte strings in time independent of where they differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
