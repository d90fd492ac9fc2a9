//! The THCS cold-storage envelope of spec §12.2, bit-exact: a 78-byte big-endian header
//! (`"THCS"`, version 1, original size, compressed size, hex SHA-256) and the gzip bytes.

use super::envelope::{verify, EncodedPayload};
use super::CodecError;

/// Header length in bytes (v1 `HEADER_SIZE`).
pub const HEADER_SIZE: usize = 78;
/// The magic bytes `"THCS"`.
pub const MAGIC: [u8; 4] = *b"THCS";
/// The only envelope version.
pub const VERSION: u16 = 1;
/// v1's default S3 key prefix.
pub const DEFAULT_KEY_PREFIX: &str = "tracehound/evidence/";

/// The object key v1's S3 adapter uses for an evidence id: `{prefix}{id}.thcs`.
pub fn object_key(prefix: &str, id: &str) -> String {
    format!("{prefix}{id}.thcs")
}

/// Serialises an encoded payload into a THCS envelope (v1 `packEnvelope`).
///
/// Unlike v1, which wrote malformed envelopes for such input, this refuses a hash that
/// is not 64 bytes, a `compressed_size` that differs from the bytes, and sizes above
/// `u32::MAX`.
pub fn pack_envelope(payload: &EncodedPayload) -> Result<Vec<u8>, CodecError> {
    let invalid = |reason| CodecError::InvalidEnvelope { reason };
    if payload.hash.len() != 64 {
        return Err(invalid("hash must be 64 hex characters"));
    }
    if payload.compressed_size != payload.compressed.len() as u64 {
        return Err(invalid("compressed size does not match stored bytes"));
    }
    let original =
        u32::try_from(payload.original_size).map_err(|_| invalid("original size exceeds u32"))?;
    let compressed = u32::try_from(payload.compressed.len())
        .map_err(|_| invalid("compressed size exceeds u32"))?;
    let mut out = Vec::with_capacity(HEADER_SIZE + payload.compressed.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&original.to_be_bytes());
    out.extend_from_slice(&compressed.to_be_bytes());
    out.extend_from_slice(payload.hash.as_bytes());
    out.extend_from_slice(&payload.compressed);
    Ok(out)
}

/// Parses a THCS envelope (v1 `unpackEnvelope`), with v1's checks: length ≥ 78, magic,
/// version 1, and total length exactly `78 + compressedSize`. Like v1 it does not check
/// the hash; use [`unpack_verified`] for that.
pub fn unpack_envelope(bytes: &[u8]) -> Result<EncodedPayload, CodecError> {
    let invalid = |reason| CodecError::InvalidEnvelope { reason };
    let (header, body) = match (bytes.get(..HEADER_SIZE), bytes.get(HEADER_SIZE..)) {
        (Some(h), Some(b)) => (h, b),
        _ => return Err(invalid("shorter than the 78-byte header")),
    };
    let field = |from: usize, to: usize| header.get(from..to).unwrap_or(&[]);
    if field(0, 4) != MAGIC {
        return Err(invalid("bad magic"));
    }
    if field(4, 6) != VERSION.to_be_bytes() {
        return Err(invalid("unsupported version"));
    }
    let be32 = |s: &[u8]| match s {
        &[a, b, c, d] => u32::from_be_bytes([a, b, c, d]),
        _ => 0,
    };
    let original_size = be32(field(6, 10));
    let compressed_size = be32(field(10, 14));
    if body.len() as u64 != u64::from(compressed_size) {
        return Err(invalid("length does not match compressed size"));
    }
    Ok(EncodedPayload {
        compressed: body.to_vec(),
        // v1 decodes the hash text without validating it; bytes that are not UTF-8
        // cannot be a valid hex digest, so a lossy decode keeps `verify` false for them.
        hash: String::from_utf8_lossy(field(14, HEADER_SIZE)).into_owned(),
        original_size: u64::from(original_size),
        compressed_size: u64::from(compressed_size),
    })
}

/// [`unpack_envelope`] followed by [`verify`]: what a reader of untrusted cold storage
/// should call. A hash mismatch is an `INTEGRITY_VIOLATION`.
pub fn unpack_verified(bytes: &[u8]) -> Result<EncodedPayload, CodecError> {
    let payload = unpack_envelope(bytes)?;
    if !verify(&payload) {
        return Err(CodecError::IntegrityViolation {
            reason: "hash mismatch",
        });
    }
    Ok(payload)
}
