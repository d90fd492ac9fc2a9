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

pub(crate) use crate::id::SECURE_ID_LEN;

/// Writes a secure id in `crate::id`'s format (spec §6) into `buf` without allocating:
/// the eviction path appends one per evicted item and should not pay for a `String`.
pub(crate) fn secure_id_into(buf: &mut [u8; SECURE_ID_LEN]) -> &str {
    use rand::RngCore;
    // `Uuid::now_v7()` asks the OS for randomness on every call (a system call per
    // eviction); the thread's CSPRNG is seeded from the OS once and is as unpredictable.
    let mut random = [0u8; 14];
    rand::thread_rng().fill_bytes(&mut random);
    let (uuid_random, tail) = random.split_at(10);
    let mut uuid_bytes = [0u8; 10];
    uuid_bytes.copy_from_slice(uuid_random);
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let uuid = uuid::Builder::from_unix_timestamp_millis(millis, &uuid_bytes).into_uuid();
    let (uuid_part, rest) = buf.split_at_mut(36);
    uuid.hyphenated().encode_lower(uuid_part);
    let mut tail4 = [0u8; 4];
    tail4.copy_from_slice(tail);
    rest[0] = b'-';
    rest[1..].copy_from_slice(&super::hex4(&tail4));
    std::str::from_utf8(buf).unwrap_or("")
}

/// A v1-format secure id, owned.
pub(crate) fn secure_id() -> String {
    crate::id::generate_secure_id()
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
    crate::audit::json::write_js_number(&mut now, now_ms);
    format!("prg-{}-{suffix}", String::from_utf8_lossy(&now))
}
