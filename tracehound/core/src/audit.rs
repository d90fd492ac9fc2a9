//! v1's audit chain (spec §9) **\[BIT\]**: a linear SHA-256 hash chain over neutralization and
//! evacuation records.
//!
//! Each record's hash is `sha256(JSON.stringify({id, signature, timestamp, previousHash}))`
//! with exactly that key order, ECMAScript string escaping and number formatting, and
//! `previousHash` the lowercase hex of the previous record's hash (64 zeros for the first).
//! The record `type` is not covered by the hash, as in v1.
//!
//! Unlike v1, the chain is stored compactly: ids and signatures live in one text arena,
//! hashes as raw 32-byte arrays, and the hash input is written into a reused buffer, so
//! [`AuditChain::append`] does not allocate per record (amortized) and
//! [`AuditChain::verify`] walks a flat array.

mod export;
mod records;

use sha2::digest::generic_array::GenericArray;
use std::fmt;

use crate::canonical::{needs_escape, write_number_or_null, write_string};
use crate::hexfmt::{hex32, parse_hex32};
use records::Records;

pub use export::{AuditRecord, ImportError};

/// A SHA-256 digest in the chain (record hash or `previousHash`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ChainHash(pub [u8; 32]);

impl ChainHash {
    /// v1's `GENESIS_HASH`: the `previousHash` of the first record (64 × `"0"`).
    pub const GENESIS: ChainHash = ChainHash([0; 32]);

    /// Lowercase 64-digit hex, as v1 prints hashes.
    pub fn to_hex(&self) -> String {
        let hex = hex32(&self.0);
        // hex32 only produces ASCII digits.
        String::from_utf8_lossy(&hex).into_owned()
    }

    /// Parses 64 lowercase hex digits; anything else (including uppercase) is `None`,
    /// because v1 compares hashes as strings.
    pub fn from_hex(s: &str) -> Option<ChainHash> {
        parse_hex32(s).map(ChainHash)
    }
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({})", self.to_hex())
    }
}

/// The exported `type` of a record: v1 derives it from the appended record's shape
/// (`'status' in record` → neutralization, else evacuation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// From a `NeutralizationRecord` (evictions, `neutralize`, `flush`).
    Neutralization,
    /// From an `EvacuateRecord`.
    Evacuation,
    /// Not in v1: an incident recorded on request (`tracehoundd`'s `IncidentRecord`),
    /// binding one piece of evidence's metadata through its id. Same chain hash shape.
    Incident,
}

impl RecordKind {
    /// The v1 wire name (`"neutralization"` / `"evacuation"`).
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Neutralization => "neutralization",
            RecordKind::Evacuation => "evacuation",
            RecordKind::Incident => "incident",
        }
    }
}

/// Why [`AuditChain::verify`] rejected a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainFault {
    /// The record's `previousHash` is not the previous record's hash (or genesis).
    PreviousHashMismatch,
    /// The record's `hash` is not the SHA-256 of its hash input.
    HashMismatch,
}

/// The first record of a chain that does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at record {index}: {}", match .fault {
    ChainFault::PreviousHashMismatch => "previousHash does not link to the previous record",
    ChainFault::HashMismatch => "hash does not match the record's contents",
})]
pub struct ChainError {
    /// Zero-based index of the first bad record.
    pub index: usize,
    /// What is wrong with it.
    pub fault: ChainFault,
}

/// A borrowed view of one stored record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordView<'a> {
    /// Record id (v1: a secure id).
    pub id: &'a str,
    /// Neutralization or evacuation.
    pub kind: RecordKind,
    /// The evidence signature the record is about.
    pub signature: &'a str,
    /// Milliseconds since the epoch (a JS number).
    pub timestamp: f64,
    /// The hash this record links to.
    pub previous_hash: ChainHash,
    /// This record's hash.
    pub hash: ChainHash,
}

/// v1's linear SHA-256 audit chain. Not internally synchronized: the quarantine owns one
/// under its lock; wrap it in a mutex to share it otherwise.
#[derive(Debug, Clone, Default)]
pub struct AuditChain {
    /// Records in chunks; `previousHash` is implied by the previous record except where an
    /// imported chain says otherwise (`prev_overrides`).
    records: Records,
    /// `(index, previousHash)` for imported records whose `previousHash` differs from the
    /// hash of the record before them; sorted by index. Always empty for appended chains.
    prev_overrides: Vec<(usize, ChainHash)>,
    last: ChainHash,
    scratch: Scratch,
}

/// Reused buffers for computing record hashes without allocating.
#[derive(Debug, Clone, Default)]
struct Scratch {
    input: Vec<u8>,
}

impl AuditChain {
    /// An empty chain whose `lastHash` is genesis.
    pub fn new() -> AuditChain {
        AuditChain::default()
    }

    /// An empty chain sized for about `records` records of `text_per_record` bytes of
    /// id + signature each. (Storage is chunked, so appends never copy earlier records
    /// whatever the capacity.)
    pub fn with_capacity(records: usize, text_per_record: usize) -> AuditChain {
        AuditChain {
            records: Records::with_capacity(records, text_per_record),
            ..AuditChain::default()
        }
    }

    /// Number of records (v1 `length`).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True if no record has been appended.
    pub fn is_empty(&self) -> bool {
        self.records.len() == 0
    }

    /// v1 `lastHash`: the hash of the last record, genesis for an empty chain.
    pub fn last_hash(&self) -> ChainHash {
        self.last
    }

    /// Appends a record and returns its hash. The new record's `previousHash` is the
    /// current [`last_hash`](Self::last_hash), whatever the caller's record said (v1 ignores
    /// the record's own `previousHash`, `hash`, `size` and `status`).
    pub fn append(
        &mut self,
        kind: RecordKind,
        id: &str,
        signature: &str,
        timestamp: f64,
    ) -> ChainHash {
        let prev = self.last;
        let plain = !needs_escape(id.as_bytes()) && !needs_escape(signature.as_bytes());
        let hash = hash_record(&mut self.scratch, id, signature, timestamp, &prev, plain);
        self.records
            .push(id, signature, timestamp, hash, kind, plain);
        self.last = hash;
        hash
    }

    /// Appends a neutralization record (v1 `append(NeutralizationRecord)`).
    pub fn append_neutralization(
        &mut self,
        record: &crate::evidence::NeutralizationRecord,
    ) -> ChainHash {
        self.append(
            RecordKind::Neutralization,
            &record.id,
            &record.signature,
            record.timestamp,
        )
    }

    /// Appends an evacuation record (v1 `append(EvacuateRecord)`).
    pub fn append_evacuation(&mut self, record: &crate::evidence::EvacuateRecord) -> ChainHash {
        self.append(
            RecordKind::Evacuation,
            &record.id,
            &record.signature,
            record.timestamp,
        )
    }

    /// Record `index`, or `None` past the end.
    pub fn get(&self, index: usize) -> Option<RecordView<'_>> {
        let slot = self.records.slot(index)?;
        let (id, signature) = self.records.text(slot);
        Some(RecordView {
            id,
            kind: slot.kind,
            signature,
            timestamp: slot.timestamp,
            previous_hash: self.previous_hash(index),
            hash: slot.hash,
        })
    }

    /// All records, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = RecordView<'_>> + '_ {
        let mut prev = ChainHash::GENESIS;
        let mut overrides = self.prev_overrides.iter().peekable();
        self.records.iter().enumerate().map(move |(index, slot)| {
            let previous_hash = match overrides.next_if(|&&(i, _)| i == index) {
                Some(&(_, h)) => h,
                None => prev,
            };
            prev = slot.hash;
            let (id, signature) = self.records.text(slot);
            RecordView {
                id,
                kind: slot.kind,
                signature,
                timestamp: slot.timestamp,
                previous_hash,
                hash: slot.hash,
            }
        })
    }

    /// Re-walks the chain from genesis (v1 `verify()`): every record must link to its
    /// predecessor's hash and hash to its stored value. Returns the first bad record.
    pub fn verify(&self) -> Result<(), ChainError> {
        let mut scratch = Scratch::default();
        let mut expected_prev = ChainHash::GENESIS;
        let mut overrides = self.prev_overrides.iter().peekable();
        for (index, slot) in self.records.iter().enumerate() {
            let prev = match overrides.peek() {
                Some(&&(i, h)) if i == index => {
                    overrides.next();
                    h
                }
                _ => expected_prev,
            };
            if prev != expected_prev {
                return Err(ChainError {
                    index,
                    fault: ChainFault::PreviousHashMismatch,
                });
            }
            let (id, signature) = self.records.text(slot);
            if hash_record(
                &mut scratch,
                id,
                signature,
                slot.timestamp,
                &prev,
                slot.plain,
            ) != slot.hash
            {
                return Err(ChainError {
                    index,
                    fault: ChainFault::HashMismatch,
                });
            }
            expected_prev = slot.hash;
        }
        Ok(())
    }

    /// The exact bytes v1 hashes for a record (spec §9), e.g. for comparing with vectors.
    pub fn hash_input(
        id: &str,
        signature: &str,
        timestamp: f64,
        previous_hash: &ChainHash,
    ) -> String {
        let mut buf = Vec::new();
        write_hash_input(&mut buf, id, signature, timestamp, previous_hash, false);
        String::from_utf8(buf).unwrap_or_default()
    }

    fn previous_hash(&self, index: usize) -> ChainHash {
        if let Ok(pos) = self
            .prev_overrides
            .binary_search_by_key(&index, |&(i, _)| i)
        {
            if let Some(&(_, h)) = self.prev_overrides.get(pos) {
                return h;
            }
        }
        match index.checked_sub(1) {
            Some(p) => self.records.slot(p).map_or(ChainHash::GENESIS, |s| s.hash),
            None => ChainHash::GENESIS,
        }
    }

    /// Stores a record exactly as given (used by import: nothing is recomputed).
    fn push_raw(&mut self, record: &AuditRecord) {
        let index = self.records.len();
        let implied = self.last;
        if record.previous_hash != implied {
            self.prev_overrides.push((index, record.previous_hash));
        }
        let plain =
            !needs_escape(record.id.as_bytes()) && !needs_escape(record.signature.as_bytes());
        self.records.push(
            &record.id,
            &record.signature,
            record.timestamp,
            record.hash,
            record.kind,
            plain,
        );
        self.last = record.hash;
    }
}

/// Writes v1's hash input for one record into `buf` (cleared first). `plain` promises that
/// neither string needs escaping, so both are copied verbatim.
fn write_hash_input(
    buf: &mut Vec<u8>,
    id: &str,
    signature: &str,
    timestamp: f64,
    prev: &ChainHash,
    plain: bool,
) {
    buf.clear();
    buf.reserve(id.len() + signature.len() + 140);
    if plain {
        buf.extend_from_slice(b"{\"id\":\"");
        buf.extend_from_slice(id.as_bytes());
        buf.extend_from_slice(b"\",\"signature\":\"");
        buf.extend_from_slice(signature.as_bytes());
        buf.extend_from_slice(b"\",\"timestamp\":");
    } else {
        buf.extend_from_slice(b"{\"id\":");
        write_string(buf, id.as_bytes());
        buf.extend_from_slice(b",\"signature\":");
        write_string(buf, signature.as_bytes());
        buf.extend_from_slice(b",\"timestamp\":");
    }
    write_number_or_null(buf, timestamp);
    buf.extend_from_slice(b",\"previousHash\":\"");
    buf.extend_from_slice(&hex32(&prev.0));
    buf.extend_from_slice(b"\"}");
}

fn hash_record(
    scratch: &mut Scratch,
    id: &str,
    signature: &str,
    timestamp: f64,
    prev: &ChainHash,
    plain: bool,
) -> ChainHash {
    write_hash_input(&mut scratch.input, id, signature, timestamp, prev, plain);
    ChainHash(sha256_padded_in_place(&mut scratch.input))
}

/// SHA-256 of `buf`, which is used as the padding area: the message is padded in place
/// and fed to the block function directly. Same digest as `Sha256::digest`, without the
/// streaming wrapper's copy into its own block buffer (the chain hashes ≈ 250-byte inputs
/// millions of times, and that copy and bookkeeping were a tenth of the time).
fn sha256_padded_in_place(buf: &mut Vec<u8>) -> [u8; 32] {
    const INIT: [u32; 8] = [
        0x6a09_e667,
        0xbb67_ae85,
        0x3c6e_f372,
        0xa54f_f53a,
        0x510e_527f,
        0x9b05_688c,
        0x1f83_d9ab,
        0x5be0_cd19,
    ];
    let bits = (buf.len() as u64).wrapping_mul(8);
    buf.push(0x80);
    // Zeros up to 8 bytes short of a block boundary, then the big-endian bit length.
    let padded = buf.len().saturating_add(8).next_multiple_of(64);
    buf.resize(padded - 8, 0);
    buf.extend_from_slice(&bits.to_be_bytes());
    let mut state = INIT;
    for block in buf.chunks_exact(64) {
        sha2::compress256(&mut state, &[*GenericArray::from_slice(block)]);
    }
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_place_padding_matches_sha256_at_every_length() {
        use sha2::{Digest, Sha256};
        let data: Vec<u8> = (0..300u32).map(|i| (i * 31 % 251) as u8).collect();
        for len in 0..data.len() {
            let mut buf = data[..len].to_vec();
            let want: [u8; 32] = Sha256::digest(&data[..len]).into();
            assert_eq!(sha256_padded_in_place(&mut buf), want, "length {len}");
        }
    }

    #[test]
    fn append_links_and_verifies() {
        let mut c = AuditChain::new();
        assert_eq!(c.last_hash(), ChainHash::GENESIS);
        let h1 = c.append(RecordKind::Neutralization, "a", "x:1", 1.0);
        let h2 = c.append(RecordKind::Evacuation, "b", "x:2", 2.5);
        assert_ne!(h1, h2);
        assert_eq!(c.len(), 2);
        assert_eq!(c.last_hash(), h2);
        let r = c.get(1).unwrap();
        assert_eq!(
            (r.id, r.signature, r.previous_hash, r.hash),
            ("b", "x:2", h1, h2)
        );
        assert_eq!(c.verify(), Ok(()));
    }

    #[test]
    fn records_survive_chunk_boundaries() {
        let mut c = AuditChain::new();
        let big = "x".repeat(3 << 20); // larger than any text chunk
        for i in 0..3000u32 {
            let id = if i == 1500 {
                big.clone()
            } else {
                format!("id-{i}")
            };
            c.append(
                RecordKind::Neutralization,
                &id,
                &format!("s:{i}"),
                f64::from(i),
            );
        }
        assert_eq!(c.verify(), Ok(()));
        let all: Vec<RecordView<'_>> = c.iter().collect();
        assert_eq!(all.len(), 3000);
        for i in [0usize, 1023, 1024, 1499, 1500, 1501, 2047, 2048, 2999] {
            assert_eq!(c.get(i), Some(all[i]));
            assert_eq!(all[i].signature, format!("s:{i}"));
        }
        assert_eq!(all[1500].id.len(), 3 << 20);
        assert_eq!(all[2999].hash, c.last_hash());
        assert_eq!(c.get(3000), None);
        let back = AuditChain::import(c.export());
        assert_eq!(back.verify(), Ok(()));
        assert_eq!(back.last_hash(), c.last_hash());
    }

    #[test]
    fn tampered_import_is_rejected_at_the_right_index() {
        let mut c = AuditChain::new();
        for i in 0..4 {
            c.append(
                RecordKind::Neutralization,
                &format!("id{i}"),
                "s:x",
                f64::from(i),
            );
        }
        let mut recs = c.export();
        recs[2].timestamp += 1.0;
        let err = AuditChain::import(recs.clone()).verify().unwrap_err();
        assert_eq!(
            err,
            ChainError {
                index: 2,
                fault: ChainFault::HashMismatch
            }
        );
        recs[2].timestamp -= 1.0;
        recs[3].previous_hash = ChainHash::GENESIS;
        let err = AuditChain::import(recs).verify().unwrap_err();
        assert_eq!(
            err,
            ChainError {
                index: 3,
                fault: ChainFault::PreviousHashMismatch
            }
        );
    }
}
