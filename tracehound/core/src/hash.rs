//! SHA-256 hex digests, threat signatures and constant-time comparison (spec §5).

use std::hint::black_box;

use sha2::{Digest, Sha256};

use crate::canonical::{encode_payload, JsString, JsonTree};
use crate::error::TracehoundError;
use crate::types::ThreatCategory;

/// v1's default payload limit for `generateSignature` (bytes of canonical UTF-8).
pub const DEFAULT_MAX_PAYLOAD_SIZE: usize = 1_000_000;

/// Lowercase hex SHA-256 of bytes (v1 `hashBuffer`).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Lowercase hex SHA-256 of a string's UTF-8 (v1 `hash`).
pub fn hash_str(s: &str) -> String {
    sha256_hex(s.as_bytes())
}

/// v1 `hash` of a JavaScript string that may hold lone surrogates: Node encodes each as
/// U+FFFD (EF BF BD) before hashing.
pub fn hash_js_string(s: &JsString) -> String {
    sha256_hex(s.to_utf8_lossy().as_bytes())
}

/// `"{category}:{hash}"`.
pub fn format_signature(category: &str, hash_hex: &str) -> String {
    let mut s = String::with_capacity(category.len() + 1 + hash_hex.len());
    s.push_str(category);
    s.push(':');
    s.push_str(hash_hex);
    s
}

/// The signature of already canonical bytes: `"{category}:{sha256hex(bytes)}"`.
pub fn signature_of_canonical(category: ThreatCategory, canonical_utf8: &[u8]) -> String {
    format_signature(category.as_str(), &sha256_hex(canonical_utf8))
}

/// v1 `generateSignature` with its default limit: canonicalize `payload` (failing like
/// `encodePayload`), then `"{category}:{sha256hex(canonical utf8)}"`. Severity, source, id
/// and timestamp never enter the signature.
pub fn signature<T: JsonTree>(
    category: ThreatCategory,
    payload: &T,
) -> Result<String, TracehoundError> {
    signature_with_limit(category, payload, DEFAULT_MAX_PAYLOAD_SIZE)
}

/// [`signature`] with an explicit payload limit.
pub fn signature_with_limit<T: JsonTree>(
    category: ThreatCategory,
    payload: &T,
    max_payload_size: usize,
) -> Result<String, TracehoundError> {
    let encoded = encode_payload(payload, max_payload_size)?;
    Ok(signature_of_canonical(category, encoded.bytes()))
}

/// v1 `validateSignature`: split at the first `:`; the category must be non-empty and the
/// rest exactly 64 lowercase hex digits.
pub fn validate_signature(sig: &str) -> bool {
    match sig.split_once(':') {
        Some((category, hash)) => {
            !category.is_empty()
                && hash.len() == 64
                && hash
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }
        None => false,
    }
}

/// Constant-time equality of two signatures (v1 `compareSignatures`). The running time
/// depends on the lengths only, never on where the contents differ; different lengths
/// return `false` (v1 threw on equal UTF-16 but different UTF-8 lengths). Never panics.
pub fn compare_signatures(a: &str, b: &str) -> bool {
    constant_time_eq(a.as_bytes(), b.as_bytes())
}

/// Constant-time byte equality (v1 `constantTimeBufferEqual`): `false` on different
/// lengths, otherwise every byte is examined.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        // black_box keeps the compiler from turning the fold into an early-exit compare.
        diff |= black_box(x ^ y);
    }
    black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(
            hash_str("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(sha256_hex(b""), hash_str(""));
    }

    #[test]
    fn compare_handles_any_lengths() {
        assert!(compare_signatures("a:1", "a:1"));
        assert!(!compare_signatures("é", "e"));
        assert!(!compare_signatures("", "x"));
        assert!(!compare_signatures("a:1", "a:2"));
        assert!(compare_signatures("", ""));
    }

    #[test]
    fn signature_excludes_everything_but_category_and_content() {
        let v = serde_json::json!({"a": 1});
        assert_eq!(
            signature(ThreatCategory::Injection, &v).unwrap(),
            "injection:015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"
        );
        let big = serde_json::json!("x".repeat(DEFAULT_MAX_PAYLOAD_SIZE));
        assert_eq!(
            signature(ThreatCategory::Spam, &big).unwrap_err().code(),
            "AGENT_PAYLOAD_TOO_LARGE"
        );
    }
}
