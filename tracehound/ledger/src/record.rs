//! The payload of one ledger entry: one audit record in v1's chain format.
//!
//! An entry is the record exactly as v1's `AuditChain.export()` prints it, as compact JSON
//! with v1's key order: `{"id":…,"type":…,"signature":…,"timestamp":…,"previousHash":…,
//! "hash":…}` (ECMAScript string escaping and number formatting, non-finite timestamps as
//! `null`). `hash` is v1's chain hash (spec §9) over `id`, `signature`, `timestamp` and
//! `previousHash`, so the entries of a ledger, concatenated into a JSON array, are a v1
//! export that `tracehound verify-chain` accepts; the Merkle tree is built over these
//! exact bytes.

use sha2::{Digest, Sha256};
use tracehound_core::audit::{AuditChain, AuditRecord, ChainHash, RecordKind};

/// A record to append: what the caller knows. The ledger supplies `previousHash` and
/// computes `hash`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewRecord<'a> {
    /// Neutralization or evacuation (v1's exported `type`; not covered by the chain hash).
    pub kind: RecordKind,
    /// Record id (v1: a secure id).
    pub id: &'a str,
    /// The evidence signature the record is about.
    pub signature: &'a str,
    /// Milliseconds since the epoch (a JS number).
    pub timestamp: f64,
}

/// Why an entry's bytes are not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// Not JSON of the expected shape.
    #[error("entry is not an audit record: {0}")]
    Shape(String),
    /// `type` is not `neutralization` or `evacuation`.
    #[error("entry has an unknown record type")]
    Kind,
    /// `previousHash` or `hash` is not 64 lowercase hex digits.
    #[error("entry has a malformed hash")]
    HashFormat,
}

/// v1's chain hash of a record: SHA-256 of its hash input (spec §9).
pub fn chain_hash(id: &str, signature: &str, timestamp: f64, previous: &ChainHash) -> ChainHash {
    let input = AuditChain::hash_input(id, signature, timestamp, previous);
    ChainHash(Sha256::digest(input.as_bytes()).into())
}

/// Links `record` to `previous` and computes its hash.
pub fn chain_record(previous: &ChainHash, record: &NewRecord<'_>) -> AuditRecord {
    AuditRecord {
        id: record.id.to_owned(),
        kind: record.kind,
        signature: record.signature.to_owned(),
        timestamp: record.timestamp,
        previous_hash: *previous,
        hash: chain_hash(record.id, record.signature, record.timestamp, previous),
    }
}

/// True if the record's `hash` is the chain hash of its contents.
pub fn record_hash_ok(record: &AuditRecord) -> bool {
    chain_hash(
        &record.id,
        &record.signature,
        record.timestamp,
        &record.previous_hash,
    ) == record.hash
}

/// Appends the entry bytes of `record` (v1 export JSON, see the module docs) to `out`.
pub fn encode_entry(record: &AuditRecord, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"id\":");
    write_js_string(out, &record.id);
    out.extend_from_slice(b",\"type\":\"");
    out.extend_from_slice(record.kind.as_str().as_bytes());
    out.extend_from_slice(b"\",\"signature\":");
    write_js_string(out, &record.signature);
    out.extend_from_slice(b",\"timestamp\":");
    if record.timestamp.is_finite() {
        let mut buf = ryu_js::Buffer::new();
        out.extend_from_slice(buf.format_finite(record.timestamp).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
    out.extend_from_slice(b",\"previousHash\":\"");
    out.extend_from_slice(record.previous_hash.to_hex().as_bytes());
    out.extend_from_slice(b"\",\"hash\":\"");
    out.extend_from_slice(record.hash.to_hex().as_bytes());
    out.extend_from_slice(b"\"}");
}

/// `JSON.stringify` of a well-formed string: `"` and `\` escaped, `\b \t \n \f \r` short,
/// other controls as lowercase `\u00xx`; serde_json's writer does exactly this.
fn write_js_string(out: &mut Vec<u8>, s: &str) {
    if serde_json::to_writer(&mut *out, s).is_err() {
        // Writing a &str into a Vec cannot fail; keep the output valid JSON regardless.
        out.extend_from_slice(b"\"\"");
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    signature: String,
    timestamp: Option<f64>,
    #[serde(rename = "previousHash")]
    previous_hash: String,
    hash: String,
}

/// Parses entry bytes back into a record. Does not check the hash (see
/// [`record_hash_ok`]) nor the link to the previous record.
pub fn decode_entry(bytes: &[u8]) -> Result<AuditRecord, EntryError> {
    let wire: Wire = serde_json::from_slice(bytes).map_err(|e| EntryError::Shape(e.to_string()))?;
    let kind = match wire.kind.as_str() {
        "neutralization" => RecordKind::Neutralization,
        "evacuation" => RecordKind::Evacuation,
        "incident" => RecordKind::Incident,
        _ => return Err(EntryError::Kind),
    };
    Ok(AuditRecord {
        id: wire.id,
        kind,
        signature: wire.signature,
        timestamp: wire.timestamp.unwrap_or(f64::NAN),
        previous_hash: ChainHash::from_hex(&wire.previous_hash).ok_or(EntryError::HashFormat)?,
        hash: ChainHash::from_hex(&wire.hash).ok_or(EntryError::HashFormat)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export_one(record: &AuditRecord) -> String {
        let json = AuditChain::import([record.clone()]).export_json();
        // export_json prints an array of one object.
        json.trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned()
    }

    #[test]
    fn entries_are_byte_identical_to_the_core_export() {
        let mut prev = ChainHash::GENESIS;
        for (i, (id, sig, ts)) in [
            ("a", "injection:00", 1.0),
            ("q\"u\\o\u{1}\n\u{7f}é😀", "x:y", 1_700_000_000_000.5),
            ("b", "s", 1e21),
            ("c", "s", f64::NAN),
            ("d", "s", -0.0),
            ("e", "s", 5e-7),
            ("f", "s", f64::INFINITY),
        ]
        .into_iter()
        .enumerate()
        {
            let kind = if i % 2 == 0 {
                RecordKind::Neutralization
            } else {
                RecordKind::Evacuation
            };
            let rec = chain_record(
                &prev,
                &NewRecord {
                    kind,
                    id,
                    signature: sig,
                    timestamp: ts,
                },
            );
            let mut bytes = Vec::new();
            encode_entry(&rec, &mut bytes);
            assert_eq!(String::from_utf8(bytes.clone()).unwrap(), export_one(&rec));
            let back = decode_entry(&bytes).unwrap();
            assert_eq!(back.id, rec.id);
            assert_eq!(back.hash, rec.hash);
            assert!(
                record_hash_ok(&back),
                "record {i} must re-hash after a round trip"
            );
            prev = rec.hash;
        }
    }

    #[test]
    fn chain_hash_matches_the_core_chain() {
        let mut chain = AuditChain::new();
        let h = chain.append(RecordKind::Neutralization, "id-1", "ddos:ab", 12.5);
        assert_eq!(chain_hash("id-1", "ddos:ab", 12.5, &ChainHash::GENESIS), h);
    }

    #[test]
    fn malformed_entries_are_errors() {
        assert!(matches!(decode_entry(b"{"), Err(EntryError::Shape(_))));
        assert!(matches!(decode_entry(b"[]"), Err(EntryError::Shape(_))));
        let rec = chain_record(
            &ChainHash::GENESIS,
            &NewRecord {
                kind: RecordKind::Evacuation,
                id: "i",
                signature: "s",
                timestamp: 0.0,
            },
        );
        let mut bytes = Vec::new();
        encode_entry(&rec, &mut bytes);
        let text = String::from_utf8(bytes).unwrap();
        let bad_kind = text.replace("evacuation", "eviction");
        assert_eq!(decode_entry(bad_kind.as_bytes()), Err(EntryError::Kind));
        let upper = text.replace(&rec.hash.to_hex(), &rec.hash.to_hex().to_uppercase());
        assert_eq!(decode_entry(upper.as_bytes()), Err(EntryError::HashFormat));
        let extra = text.replace("{\"id\"", "{\"x\":1,\"id\"");
        assert!(matches!(
            decode_entry(extra.as_bytes()),
            Err(EntryError::Shape(_))
        ));
    }
}
