//! Records produced when evidence leaves the quarantine (spec §2.4).

use crate::audit::ChainHash;

/// v1 `NeutralizationRecord` (`status` is always `"neutralized"`).
#[derive(Debug, Clone, PartialEq)]
pub struct NeutralizationRecord {
    /// Fresh secure id.
    pub id: String,
    /// Signature of the neutralized evidence.
    pub signature: String,
    /// Lowercase hex SHA-256 of its uncompressed canonical bytes.
    pub hash: String,
    /// Its stored size.
    pub size: usize,
    /// When it was neutralized (ms).
    pub timestamp: f64,
    /// The chain's `lastHash` when the record was made.
    pub previous_hash: ChainHash,
}

/// v1 `EvacuateRecord` (`compressed` is always false in v1).
#[derive(Debug, Clone, PartialEq)]
pub struct EvacuateRecord {
    /// Fresh secure id.
    pub id: String,
    /// Signature of the evacuated evidence.
    pub signature: String,
    /// Where the bytes were sent (caller supplied).
    pub destination: String,
    /// When (ms).
    pub timestamp: f64,
    /// Always false, as in v1.
    pub compressed: bool,
    /// Stored size.
    pub size: usize,
}

/// Why evidence was purged (v1 `PurgeRecord.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PurgeReason {
    /// `"timeout"`.
    Timeout,
    /// `"error"`.
    Error,
    /// `"abort"`.
    Abort,
    /// `"panic"`.
    Panic,
}

impl PurgeReason {
    /// The v1 wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PurgeReason::Timeout => "timeout",
            PurgeReason::Error => "error",
            PurgeReason::Abort => "abort",
            PurgeReason::Panic => "panic",
        }
    }
}

/// The `scent` part of a [`PurgeRecord`], filled as v1 does (`id` is the signature,
/// `source` is `"unknown"`).
#[derive(Debug, Clone, PartialEq)]
pub struct PurgedScent {
    /// v1 puts the evidence signature here.
    pub id: String,
    /// Always `"unknown"` (the quarantine does not know the source).
    pub source: String,
    /// The evidence's capture time.
    pub timestamp: f64,
    /// Evidence hash.
    pub payload_hash: String,
    /// Evidence stored size.
    pub payload_size: usize,
}

/// v1 `PurgeRecord`. Purges are not appended to the audit chain (v1 semantics).
#[derive(Debug, Clone, PartialEq)]
pub struct PurgeRecord {
    /// `prg-{now}-{6 base36 chars}` (v1 format; random part from a CSPRNG here).
    pub id: String,
    /// Why.
    pub reason: PurgeReason,
    /// What was purged.
    pub scent: PurgedScent,
    /// When (ms).
    pub purge_timestamp: f64,
}

/// v1's purge id: `prg-{now}-{6 base36 chars}`.
pub(crate) fn purge_id(now_ms: f64) -> String {
    use rand::Rng;
    const B36: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    let suffix: String = (0..6)
        .map(|_| char::from(B36[rng.gen_range(0..36)]))
        .collect();
    let mut now = Vec::new();
    crate::canonical::write_number_or_null(&mut now, now_ms);
    format!("prg-{}-{suffix}", String::from_utf8_lossy(&now))
}
