//! Binary codec (spec §11, §12.2): v1-compatible gzip, the integrity envelope, a
//! streaming codec for large payloads, and the THCS cold-storage envelope.
//!
//! Compressed bytes are opaque: different zlib builds produce different deflate streams
//! for the same input (spec §11.4), so interoperability means "decodes anything v1
//! wrote, and v1 decodes what we write"; hashes that must be bit-exact are taken over
//! uncompressed bytes (evidence) or over the stored compressed bytes (envelope).
//!
//! Decoding untrusted bytes never panics and is bounded: output is capped
//! ([`GzipConfig::max_decoded_size`]) and streaming decoders work in a fixed window.

mod deflate;
mod envelope;
mod error;
mod gzip;
mod inflate;
mod thcs;

pub use deflate::GzipEncoder;
pub use envelope::{decode_with_integrity, encode_with_integrity, verify, EncodedPayload};
pub use error::CodecError;
pub use gzip::{
    cold_path_codec, hot_path_codec, CodecStats, GzipCodec, GzipConfig, HotPathGzip, DEFAULT_LEVEL,
    DEFAULT_MAX_DECODED_SIZE, HOT_PATH_LEVEL,
};
pub use inflate::GzipDecoder;
pub use thcs::{
    object_key, pack_envelope, unpack_envelope, unpack_verified, DEFAULT_KEY_PREFIX, HEADER_SIZE,
    MAGIC, VERSION,
};

/// Bytes zlib moved in one call, from its running total before and after (totals only
/// grow; a call moves at most one buffer, so the difference fits in `usize`).
fn progress(before: u64, after: u64) -> usize {
    usize::try_from(after.saturating_sub(before)).unwrap_or(usize::MAX)
}
