//! Sealing evidence into v1's THCS envelope (spec §12.2) and opening it again with every
//! check a reader of untrusted storage needs.
//!
//! The envelope carries gzip bytes, their SHA-256 and the uncompressed size. Opening
//! checks, in order: the header (magic, version, exact length), the hash of the stored
//! gzip bytes, that they inflate to exactly the declared size (which also caps
//! decompression), and finally that the payload hashes to the hash inside the signature
//! the object was asked for — so an object moved or copied under another key is caught
//! too, not only a damaged one.

use sha2::{Digest, Sha256};
use tracehound_core::codec::{
    decode_with_integrity, pack_envelope, unpack_verified, CodecError, EncodedPayload, GzipCodec,
};

use crate::layout::parse_signature;
use crate::ColdError;

/// Evidence ready to be written: its signature and the envelope bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedEvidence {
    /// `"{category}:{hash}"`.
    pub signature: String,
    /// The THCS envelope (78-byte header and gzip bytes).
    pub envelope: Vec<u8>,
    /// Length of the uncompressed canonical payload.
    pub payload_len: u64,
}

/// Evidence read back from cold storage, verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColdEvidence {
    /// `"{category}:{hash}"`.
    pub signature: String,
    /// The canonical payload (uncompressed): what the evidence's hash covers.
    pub payload: Vec<u8>,
    /// The gzip bytes as stored in the envelope. For evidence that was compressed in the
    /// quarantine these are its stored bytes, unchanged.
    pub compressed: Vec<u8>,
    /// Size of the whole object (envelope) in bytes.
    pub object_len: u64,
}

impl ColdEvidence {
    /// The lowercase hex SHA-256 of [`payload`](Self::payload) (the signature's hash part).
    pub fn hash(&self) -> &str {
        self.signature.split_once(':').map_or("", |(_, hash)| hash)
    }
}

/// Seals evidence bytes: `bytes` are the canonical payload, or its gzip when `compressed`
/// (then they are stored as they are, after checking they inflate to the payload). The
/// payload must hash to the signature's hash.
pub fn seal(
    codec: &GzipCodec,
    signature: &str,
    bytes: &[u8],
    compressed: bool,
) -> Result<SealedEvidence, ColdError> {
    let invalid = |reason: String| ColdError::InvalidEvidence {
        signature: signature.to_owned(),
        reason,
    };
    let expected = parse_signature(signature)?.hash;
    let encoded = if compressed {
        let payload = codec
            .decode(bytes)
            .map_err(|e| invalid(format!("stored gzip bytes: {e}")))?;
        if hex::encode(Sha256::digest(&payload)) != expected {
            return Err(invalid("payload does not hash to the signature".into()));
        }
        EncodedPayload {
            hash: hex::encode(Sha256::digest(bytes)),
            original_size: payload.len() as u64,
            compressed_size: bytes.len() as u64,
            compressed: bytes.to_vec(),
        }
    } else {
        if hex::encode(Sha256::digest(bytes)) != expected {
            return Err(invalid("payload does not hash to the signature".into()));
        }
        tracehound_core::codec::encode_with_integrity(codec, bytes)
            .map_err(|e| invalid(e.to_string()))?
    };
    let payload_len = encoded.original_size;
    let envelope = pack_envelope(&encoded).map_err(|e| invalid(e.to_string()))?;
    Ok(SealedEvidence {
        signature: signature.to_owned(),
        envelope,
        payload_len,
    })
}

/// Opens and verifies the object stored for `signature` (see the module docs).
pub fn open(codec: &GzipCodec, signature: &str, object: &[u8]) -> Result<ColdEvidence, ColdError> {
    let corrupt = |reason: String| ColdError::Corrupt {
        signature: signature.to_owned(),
        reason,
    };
    let expected = parse_signature(signature)?.hash;
    let encoded = unpack_verified(object).map_err(|e| corrupt(codec_reason(&e)))?;
    let payload = decode_with_integrity(codec, &encoded).map_err(|e| corrupt(codec_reason(&e)))?;
    if hex::encode(Sha256::digest(&payload)) != expected {
        return Err(corrupt("payload does not hash to the signature".into()));
    }
    Ok(ColdEvidence {
        signature: signature.to_owned(),
        payload,
        compressed: encoded.compressed,
        object_len: object.len() as u64,
    })
}

fn codec_reason(e: &CodecError) -> String {
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig_of(payload: &[u8]) -> String {
        format!("spam:{}", hex::encode(Sha256::digest(payload)))
    }

    #[test]
    fn seal_then_open_gives_the_payload_back() {
        let codec = GzipCodec::new();
        let payload = br#"{"a":1,"b":"hello"}"#;
        let sig = sig_of(payload);
        let sealed = seal(&codec, &sig, payload, false).unwrap();
        assert_eq!(sealed.envelope.get(..4), Some(&b"THCS"[..]));
        let back = open(&codec, &sig, &sealed.envelope).unwrap();
        assert_eq!(back.payload, payload);
        assert_eq!(back.hash(), sig.split_once(':').unwrap().1);
    }

    #[test]
    fn compressed_evidence_is_stored_as_is() {
        let codec = GzipCodec::new();
        let payload = br#"{"x":"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"}"#;
        let gz = codec.encode(payload).unwrap();
        let sig = sig_of(payload);
        let sealed = seal(&codec, &sig, &gz, true).unwrap();
        let back = open(&codec, &sig, &sealed.envelope).unwrap();
        assert_eq!(
            (back.payload.as_slice(), back.compressed),
            (&payload[..], gz)
        );
    }

    #[test]
    fn inconsistent_evidence_is_refused() {
        let codec = GzipCodec::new();
        let sig = sig_of(b"one");
        assert!(matches!(
            seal(&codec, &sig, b"two", false),
            Err(ColdError::InvalidEvidence { .. })
        ));
        assert!(matches!(
            seal(&codec, &sig, b"not gzip", true),
            Err(ColdError::InvalidEvidence { .. })
        ));
    }

    #[test]
    fn an_object_under_the_wrong_signature_is_corrupt() {
        let codec = GzipCodec::new();
        let sealed = seal(&codec, &sig_of(b"one"), b"one", false).unwrap();
        let err = open(&codec, &sig_of(b"two"), &sealed.envelope).unwrap_err();
        assert!(matches!(err, ColdError::Corrupt { .. }), "{err}");
    }
}
