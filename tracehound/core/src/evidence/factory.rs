//! The evidence factory (spec §8): scent + threat → canonical bytes → hash → signature →
//! optional hot-path compression → [`Evidence`].

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::Evidence;
use crate::canonical::{encode_payload, JsonTree};
use crate::error::TracehoundError;
use crate::types::{Scent, ThreatSignal};

/// A compressor for evidence bytes on the threat path (v1's hot-path codec). The codec
/// module's gzip implements it. Output is opaque: the evidence hash is always of the
/// uncompressed canonical bytes.
pub trait HotPathCodec: Send + Sync {
    /// Compresses `bytes`. A failure becomes a `CODEC_ENCODE_FAILED` error.
    fn encode(&self, bytes: &[u8]) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>>;
}

/// Builds [`Evidence`] from scents (v1 `createEvidenceFactory({codec?})`).
#[derive(Clone, Default)]
pub struct EvidenceFactory {
    codec: Option<Arc<dyn HotPathCodec>>,
}

impl std::fmt::Debug for EvidenceFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvidenceFactory")
            .field("compresses", &self.codec.is_some())
            .finish()
    }
}

impl EvidenceFactory {
    /// A factory that stores canonical bytes uncompressed (what v1's `createTracehound` uses).
    pub fn new() -> EvidenceFactory {
        EvidenceFactory { codec: None }
    }

    /// A factory that compresses evidence with `codec`.
    pub fn with_codec(codec: Arc<dyn HotPathCodec>) -> EvidenceFactory {
        EvidenceFactory { codec: Some(codec) }
    }

    /// Whether evidence from this factory is compressed.
    pub fn compresses(&self) -> bool {
        self.codec.is_some()
    }

    /// v1 `create(scent, threat, maxPayloadSize)`: canonical bytes of `scent.payload`
    /// (the limit applies to the uncompressed size), SHA-256, signature
    /// `"{category}:{hash}"`, then compression if the factory has a codec. The evidence's
    /// `captured` is `scent.timestamp` and its `size` the stored (compressed) length.
    ///
    /// Errors keep v1's codes: `AGENT_PAYLOAD_TOO_LARGE`, `AGENT_SERIALIZATION_FAILED`,
    /// `EVIDENCE_CREATION_FAILED` (nesting too deep), `CODEC_ENCODE_FAILED`, `EVIDENCE_EMPTY`.
    pub fn create(
        &self,
        scent: &Scent,
        threat: ThreatSignal,
        max_payload_size: usize,
    ) -> Result<Evidence, TracehoundError> {
        self.create_from(&scent.payload, threat, scent.timestamp, max_payload_size)
    }

    /// [`create`](Self::create) for any payload tree (e.g. a [`crate::canonical::JsValue`]
    /// parsed from text) with an explicit capture time.
    pub fn create_from<T: JsonTree>(
        &self,
        payload: &T,
        threat: ThreatSignal,
        captured: f64,
        max_payload_size: usize,
    ) -> Result<Evidence, TracehoundError> {
        let encoded = encode_payload(payload, max_payload_size)?;
        let hash: [u8; 32] = Sha256::digest(encoded.bytes()).into();
        let hex = super::hex32(&hash);
        let category = threat.category.as_str();
        let mut signature = String::with_capacity(category.len() + 1 + hex.len());
        signature.push_str(category);
        signature.push(':');
        signature.push_str(super::hex_str(&hex));
        let (bytes, compressed) = match &self.codec {
            Some(codec) => {
                let packed = codec
                    .encode(encoded.bytes())
                    .map_err(|e| TracehoundError::codec_encode_failed(&e.to_string()))?;
                (packed, true)
            }
            None => (encoded.into_bytes(), false),
        };
        if bytes.is_empty() {
            return Err(TracehoundError::evidence_empty());
        }
        Ok(Evidence::from_parts(
            bytes,
            signature,
            &hash,
            threat.severity,
            captured,
            compressed,
        ))
    }
}
