//! Evidence (spec §7) and the records produced when it leaves the quarantine (spec §2.4).
//!
//! An [`Evidence`] owns the stored bytes (canonical JSON, possibly compressed). Only its
//! owner — normally the quarantine — can read, transfer or neutralize it. Callers get an
//! [`EvidenceHandle`]: an immutable, cheaply cloned view of the metadata that can never
//! dispose or corrupt the stored evidence. This fixes v1's handle bug (§7) by
//! construction: there is no method on a handle that changes anything.

mod factory;
mod records;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::error::TracehoundError;
use crate::hexfmt::{hex32, hex_str};
use crate::types::Severity;

pub use factory::{EvidenceFactory, HotPathCodec};
pub(crate) use records::purge_id;
pub use records::{EvacuateRecord, NeutralizationRecord, PurgeReason, PurgeRecord, PurgedScent};

/// Immutable metadata shared between an [`Evidence`] and its handles.
#[derive(Debug)]
struct Meta {
    signature: Box<str>,
    /// Lowercase hex SHA-256 of the uncompressed canonical bytes.
    hash_hex: [u8; 64],
    size: usize,
    compressed: bool,
    captured: f64,
    severity: Severity,
    /// Set once the owning [`Evidence`] is gone (dropped, transferred or neutralized),
    /// so handles can report v1's `disposed` flag.
    disposed: AtomicBool,
}

/// Read-only view of a piece of evidence (v1's `EvidenceHandle`, minus the methods that
/// let callers break the quarantine). Cloning is an `Arc` increment.
#[derive(Debug, Clone)]
pub struct EvidenceHandle(Arc<Meta>);

impl EvidenceHandle {
    /// `"{category}:{sha256hex}"`.
    pub fn signature(&self) -> &str {
        &self.0.signature
    }

    /// Lowercase hex SHA-256 of the uncompressed canonical bytes.
    pub fn hash(&self) -> &str {
        hex_str(&self.0.hash_hex)
    }

    /// Stored size in bytes (compressed size if compressed); what the byte budget counts.
    /// Unlike v1 (0 after disposal), this stays the size the evidence had.
    pub fn size(&self) -> usize {
        self.0.size
    }

    /// Severity given by the detector.
    pub fn severity(&self) -> Severity {
        self.0.severity
    }

    /// Capture time (the scent's caller-supplied timestamp, ms).
    pub fn captured(&self) -> f64 {
        self.0.captured
    }

    /// Whether the stored bytes are gzip-compressed.
    pub fn compressed(&self) -> bool {
        self.0.compressed
    }

    /// v1's `disposed`: true once the evidence has left the quarantine (evicted,
    /// neutralized, purged, transferred) or was discarded without being stored.
    pub fn is_disposed(&self) -> bool {
        self.0.disposed.load(Ordering::Acquire)
    }
}

/// Stored evidence: the bytes plus metadata. Owned by the quarantine; leaves it only
/// through the quarantine API, which returns the bytes or a record.
#[derive(Debug)]
pub struct Evidence {
    meta: Arc<Meta>,
    bytes: Box<[u8]>,
}

impl Evidence {
    /// v1's `new Evidence(...)` with its checks: empty bytes are `EVIDENCE_EMPTY`; for
    /// uncompressed bytes, `sha256(bytes)` must equal `expected_hash` (lowercase hex) or the
    /// result is `EVIDENCE_HASH_MISMATCH`. Compressed bytes are not checked (the hash is of
    /// the uncompressed canonical bytes), but `expected_hash` must still be 64 lowercase hex.
    pub fn new(
        bytes: Vec<u8>,
        signature: String,
        expected_hash: &str,
        severity: Severity,
        captured: f64,
        compressed: bool,
    ) -> Result<Evidence, TracehoundError> {
        if bytes.is_empty() {
            return Err(TracehoundError::evidence_empty());
        }
        let expected = crate::hexfmt::parse_hex32(expected_hash);
        if !compressed {
            let actual: [u8; 32] = Sha256::digest(&bytes).into();
            if expected != Some(actual) {
                return Err(TracehoundError::evidence_hash_mismatch(
                    expected_hash,
                    hex_str(&hex32(&actual)),
                ));
            }
        }
        let hash = expected.ok_or_else(|| {
            TracehoundError::evidence_hash_mismatch(expected_hash, "<not 64 lowercase hex digits>")
        })?;
        Ok(Evidence::from_parts(
            bytes, signature, &hash, severity, captured, compressed,
        ))
    }

    /// Builds evidence whose hash the caller has just computed (the factory).
    pub(crate) fn from_parts(
        bytes: Vec<u8>,
        signature: String,
        hash: &[u8; 32],
        severity: Severity,
        captured: f64,
        compressed: bool,
    ) -> Evidence {
        let meta = Meta {
            signature: signature.into_boxed_str(),
            hash_hex: hex32(hash),
            size: bytes.len(),
            compressed,
            captured,
            severity,
            disposed: AtomicBool::new(false),
        };
        Evidence {
            meta: Arc::new(meta),
            bytes: bytes.into_boxed_slice(),
        }
    }

    /// A read-only handle to this evidence.
    pub fn handle(&self) -> EvidenceHandle {
        EvidenceHandle(Arc::clone(&self.meta))
    }

    /// `"{category}:{sha256hex}"`.
    pub fn signature(&self) -> &str {
        &self.meta.signature
    }

    /// Lowercase hex SHA-256 of the uncompressed canonical bytes.
    pub fn hash(&self) -> &str {
        hex_str(&self.meta.hash_hex)
    }

    /// Stored size in bytes.
    pub fn size(&self) -> usize {
        self.meta.size
    }

    /// Severity given by the detector.
    pub fn severity(&self) -> Severity {
        self.meta.severity
    }

    /// Capture time (ms).
    pub fn captured(&self) -> f64 {
        self.meta.captured
    }

    /// Whether the stored bytes are compressed.
    pub fn compressed(&self) -> bool {
        self.meta.compressed
    }

    /// The stored bytes (canonical JSON, or its gzip if [`compressed`](Self::compressed)).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// v1 `transfer()`: hands the bytes over and disposes the evidence.
    pub fn into_bytes(mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes).into_vec()
    }

    /// v1 `neutralize(previousHash)`: builds the record (fresh secure id, `now_ms`) and
    /// disposes the evidence. Appending the record to a chain is the caller's job, as in v1.
    pub fn neutralize(
        self,
        previous_hash: crate::audit::ChainHash,
        now_ms: f64,
    ) -> NeutralizationRecord {
        NeutralizationRecord {
            id: crate::id::generate_secure_id(),
            signature: self.signature().to_owned(),
            hash: self.hash().to_owned(),
            size: self.size(),
            timestamp: now_ms,
            previous_hash,
        }
    }

    /// v1 `evacuate(destination)`: builds the record, hands the bytes over, disposes.
    pub fn evacuate(self, destination: &str, now_ms: f64) -> (Vec<u8>, EvacuateRecord) {
        let record = EvacuateRecord {
            id: crate::id::generate_secure_id(),
            signature: self.signature().to_owned(),
            destination: destination.to_owned(),
            timestamp: now_ms,
            compressed: false,
            size: self.size(),
        };
        (self.into_bytes(), record)
    }
}

impl Drop for Evidence {
    fn drop(&mut self) {
        self.meta.disposed.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO_SHA: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn new_checks_hash_and_emptiness() {
        let e = Evidence::new(
            Vec::new(),
            "x:y".into(),
            HELLO_SHA,
            Severity::Low,
            1.0,
            false,
        );
        assert_eq!(e.unwrap_err().code(), "EVIDENCE_EMPTY");
        let e = Evidence::new(
            b"hellO".to_vec(),
            "x:y".into(),
            HELLO_SHA,
            Severity::Low,
            1.0,
            false,
        );
        assert_eq!(e.unwrap_err().code(), "EVIDENCE_HASH_MISMATCH");
        let e = Evidence::new(
            b"hello".to_vec(),
            "x:y".into(),
            HELLO_SHA,
            Severity::Low,
            1.0,
            false,
        )
        .unwrap();
        assert_eq!(
            (e.hash(), e.size(), e.bytes()),
            (HELLO_SHA, 5, &b"hello"[..])
        );
    }

    #[test]
    fn handle_sees_disposal_but_cannot_cause_it() {
        let e = Evidence::new(
            b"hello".to_vec(),
            "x:y".into(),
            HELLO_SHA,
            Severity::High,
            7.0,
            false,
        )
        .unwrap();
        let h = e.handle();
        assert!(!h.is_disposed());
        let rec = e.neutralize(crate::audit::ChainHash::GENESIS, 99.0);
        assert!(h.is_disposed());
        assert_eq!(
            (rec.signature.as_str(), rec.hash.as_str(), rec.size),
            ("x:y", HELLO_SHA, 5)
        );
        assert_eq!(
            (h.size(), h.severity(), h.captured()),
            (5, Severity::High, 7.0)
        );
    }
}
