//! v1's export format: a JSON array of `{id, type, signature, timestamp, previousHash, hash}`
//! objects, and the import that lets a v1 export be verified.

use super::{AuditChain, ChainHash, RecordKind};
use crate::canonical::{write_number_or_null, write_string};
use crate::hexfmt::hex32;

/// One exported record (v1 `AuditRecord`), owned.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Record id.
    pub id: String,
    /// Exported as `type`.
    pub kind: RecordKind,
    /// The evidence signature.
    pub signature: String,
    /// Milliseconds since the epoch (a JS number; NaN/±Infinity export as `null`).
    pub timestamp: f64,
    /// Exported as `previousHash` (lowercase hex).
    pub previous_hash: ChainHash,
    /// Exported as `hash` (lowercase hex).
    pub hash: ChainHash,
}

/// Why an exported chain could not be read. Verification failures are not import errors:
/// a well-formed but tampered chain imports, and [`AuditChain::verify`] names the record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// The text is not JSON.
    #[error("not valid JSON: {0}")]
    Json(String),
    /// The top-level value is not an array.
    #[error("an exported audit chain must be a JSON array of records")]
    NotArray,
    /// Record `index` is malformed.
    #[error("record {index}: {reason}")]
    Record {
        /// Zero-based index of the malformed record.
        index: usize,
        /// What is wrong (never contains record contents).
        reason: &'static str,
    },
}

impl AuditChain {
    /// v1 `export()`: owned copies of every record, oldest first (mutating them cannot
    /// affect this chain, unlike v1's shared objects).
    pub fn export(&self) -> Vec<AuditRecord> {
        self.iter()
            .map(|r| AuditRecord {
                id: r.id.to_owned(),
                kind: r.kind,
                signature: r.signature.to_owned(),
                timestamp: r.timestamp,
                previous_hash: r.previous_hash,
                hash: r.hash,
            })
            .collect()
    }

    /// The export as compact JSON text, as `JSON.stringify(chain.export())` prints it.
    pub fn export_json(&self) -> String {
        let mut out = Vec::with_capacity(self.len().saturating_mul(260).saturating_add(2));
        out.push(b'[');
        for (i, r) in self.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"id\":");
            write_string(&mut out, r.id.as_bytes());
            out.extend_from_slice(b",\"type\":\"");
            out.extend_from_slice(r.kind.as_str().as_bytes());
            out.extend_from_slice(b"\",\"signature\":");
            write_string(&mut out, r.signature.as_bytes());
            out.extend_from_slice(b",\"timestamp\":");
            write_number_or_null(&mut out, r.timestamp);
            out.extend_from_slice(b",\"previousHash\":\"");
            out.extend_from_slice(&hex32(&r.previous_hash.0));
            out.extend_from_slice(b"\",\"hash\":\"");
            out.extend_from_slice(&hex32(&r.hash.0));
            out.extend_from_slice(b"\"}");
        }
        out.push(b']');
        // Only valid UTF-8 (from &str) and ASCII was written.
        String::from_utf8(out).unwrap_or_default()
    }

    /// Rebuilds a chain from exported records exactly as given (nothing is recomputed), so
    /// [`verify`](Self::verify) can check them. `last_hash` becomes the last record's hash.
    pub fn import(records: impl IntoIterator<Item = AuditRecord>) -> AuditChain {
        let mut chain = AuditChain::new();
        for r in records {
            chain.push_raw(&r);
        }
        chain
    }

    /// Parses v1's export format (any JSON formatting) and imports it. Every record needs
    /// `id`, `type` (`neutralization`|`evacuation`), `signature`, `timestamp` (number, or
    /// `null` for a non-finite v1 timestamp), and `previousHash`/`hash` as 64 lowercase hex
    /// digits; other keys are ignored.
    pub fn import_json(text: &str) -> Result<AuditChain, ImportError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ImportError::Json(e.to_string()))?;
        let items = value.as_array().ok_or(ImportError::NotArray)?;
        let mut chain = AuditChain::new();
        for (index, item) in items.iter().enumerate() {
            let record =
                parse_record(item).map_err(|reason| ImportError::Record { index, reason })?;
            chain.push_raw(&record);
        }
        Ok(chain)
    }
}

fn parse_record(item: &serde_json::Value) -> Result<AuditRecord, &'static str> {
    let obj = item.as_object().ok_or("not an object")?;
    let text = |key: &'static str, missing: &'static str| -> Result<&str, &'static str> {
        obj.get(key).and_then(|v| v.as_str()).ok_or(missing)
    };
    let id = text("id", "missing or non-string \"id\"")?;
    let kind = match text("type", "missing or non-string \"type\"")? {
        "neutralization" => RecordKind::Neutralization,
        "evacuation" => RecordKind::Evacuation,
        "incident" => RecordKind::Incident,
        _ => return Err("\"type\" must be \"neutralization\", \"evacuation\" or \"incident\""),
    };
    let signature = text("signature", "missing or non-string \"signature\"")?;
    let timestamp = match obj.get("timestamp") {
        Some(serde_json::Value::Number(n)) => n.as_f64().ok_or("\"timestamp\" is not a number")?,
        Some(serde_json::Value::Null) => f64::NAN,
        _ => return Err("missing or non-numeric \"timestamp\""),
    };
    let previous_hash = ChainHash::from_hex(text(
        "previousHash",
        "missing or non-string \"previousHash\"",
    )?)
    .ok_or("\"previousHash\" is not 64 lowercase hex digits")?;
    let hash = ChainHash::from_hex(text("hash", "missing or non-string \"hash\"")?)
        .ok_or("\"hash\" is not 64 lowercase hex digits")?;
    Ok(AuditRecord {
        id: id.to_owned(),
        kind,
        signature: signature.to_owned(),
        timestamp,
        previous_hash,
        hash,
    })
}
