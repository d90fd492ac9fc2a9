//! Offline checking of an export: every derived member is recomputed from the entries,
//! so an edit that keeps the JSON canonical still has to keep every total, every entry's
//! `category:hash` signature and the ledger head consistent — and then the SHA-256
//! differs from the one the operator kept.
//!
//! What this cannot establish alone is that the content is the daemon's: a consistent
//! forgery verifies. That is what an anchor is for (the SHA-256 obtained from the daemon,
//! or the ledger checkpoint's signature checked by `tracehound snapshot verify --key`).

use std::str::FromStr;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{
    canonical, export, AuditFacts, CheckpointFacts, EvidenceFacts, LedgerFacts, SnapshotError,
    SnapshotState, VerifiedSnapshot, MAX_SNAPSHOT_BYTES, SNAPSHOT_FORMAT,
};
use crate::audit::ChainHash;
use crate::canonical::canonical_json_from_text;
use crate::hash::validate_signature;
use crate::types::Severity;

/// 32 bytes from 64 lowercase hex digits (uppercase is refused: exports print lowercase).
fn hash32(text: &str) -> Option<[u8; 32]> {
    ChainHash::from_hex(text).map(|h| h.0)
}

fn entry(index: usize, e: &Value) -> Result<EvidenceFacts, SnapshotError> {
    let bad = |reason| SnapshotError::Entry { index, reason };
    let text = |key: &'static str| e.get(key).and_then(Value::as_str);
    let signature = text("signature").ok_or(bad("signature is not a string"))?;
    let hash = text("hash").ok_or(bad("hash is not a string"))?;
    let category = text("category").ok_or(bad("category is not a string"))?;
    if hash32(hash).is_none() {
        return Err(bad("hash is not 64 lowercase hex digits"));
    }
    if !validate_signature(signature) {
        return Err(bad("signature is not category:<64 lowercase hex>"));
    }
    if signature.split_once(':') != Some((category, hash)) {
        return Err(bad("signature is not category:hash of this entry"));
    }
    let severity = text("severity")
        .and_then(|s| Severity::from_str(s).ok())
        .ok_or(bad("severity is not a known severity"))?;
    let size = e
        .get("size")
        .and_then(Value::as_u64)
        .ok_or(bad("size is not a non-negative integer"))?;
    let captured_ms = match e.get("captured_ms") {
        // A non-finite capture time exports as null (see `EvidenceFacts::captured_ms`).
        Some(Value::Null) => f64::NAN,
        Some(v) => v.as_f64().ok_or(bad("captured_ms is not a number"))?,
        None => return Err(bad("captured_ms is missing")),
    };
    let compressed = e
        .get("compressed")
        .and_then(Value::as_bool)
        .ok_or(bad("compressed is not a boolean"))?;
    Ok(EvidenceFacts {
        signature: signature.to_owned(),
        hash: hash.to_owned(),
        severity,
        size,
        captured_ms,
        compressed,
    })
}

fn summary(doc: &Value, evidence: &[EvidenceFacts]) -> Result<(), SnapshotError> {
    let q = doc
        .get("quarantine")
        .ok_or(SnapshotError::Shape("quarantine"))?;
    if q.get("count").and_then(Value::as_u64) != Some(evidence.len() as u64) {
        return Err(SnapshotError::Summary("count"));
    }
    let total = evidence
        .iter()
        .try_fold(0u64, |acc, e| acc.checked_add(e.size));
    if total.is_none() || q.get("bytes").and_then(Value::as_u64) != total {
        return Err(SnapshotError::Summary("bytes"));
    }
    let by = q
        .get("by_severity")
        .and_then(Value::as_object)
        .ok_or(SnapshotError::Summary("by_severity"))?;
    if by.len() != Severity::ALL.len() {
        return Err(SnapshotError::Summary("by_severity"));
    }
    for sev in Severity::ALL {
        let n = evidence.iter().filter(|e| e.severity == sev).count() as u64;
        if by.get(sev.as_str()).and_then(Value::as_u64) != Some(n) {
            return Err(SnapshotError::Summary("by_severity"));
        }
    }
    Ok(())
}

fn ledger(doc: &Value) -> Result<Option<LedgerFacts>, SnapshotError> {
    let l = match doc.get("ledger") {
        Some(Value::Null) => return Ok(None),
        Some(l) => l,
        None => return Err(SnapshotError::Shape("ledger")),
    };
    let size = l
        .get("size")
        .and_then(Value::as_u64)
        .ok_or(SnapshotError::Shape("ledger.size"))?;
    let root = l
        .get("root")
        .and_then(Value::as_str)
        .and_then(hash32)
        .ok_or(SnapshotError::Shape("ledger.root"))?;
    let checkpoint = match l.get("checkpoint") {
        Some(Value::Null) => None,
        Some(c) => Some(CheckpointFacts {
            size: c
                .get("size")
                .and_then(Value::as_u64)
                .ok_or(SnapshotError::Shape("ledger.checkpoint.size"))?,
            root: c
                .get("root")
                .and_then(Value::as_str)
                .and_then(hash32)
                .ok_or(SnapshotError::Shape("ledger.checkpoint.root"))?,
            note: c
                .get("note")
                .and_then(Value::as_str)
                .ok_or(SnapshotError::Shape("ledger.checkpoint.note"))?
                .to_owned(),
        }),
        None => return Err(SnapshotError::Shape("ledger.checkpoint")),
    };
    if let Some(c) = &checkpoint {
        // Checkpoints only ever cover acknowledged entries, and one tree has one root
        // per size.
        if c.size > size {
            return Err(SnapshotError::Checkpoint(
                "checkpoint.size is past ledger.size",
            ));
        }
        if c.size == size && c.root != root {
            return Err(SnapshotError::Checkpoint(
                "checkpoint.root differs from ledger.root at the same size",
            ));
        }
    }
    Ok(Some(LedgerFacts {
        size,
        root,
        checkpoint,
    }))
}

/// Checks an export offline and returns its SHA-256 and facts. Never panics.
///
/// Checked: size bound, canonical form (so the hash is well defined), format, the
/// configuration digest, every evidence entry (signature = `category:hash`, 64 lowercase
/// hex digits, known severity), strict signature order (no duplicates), the quarantine
/// totals recomputed from the entries, the ledger checkpoint against the ledger head,
/// and finally that exporting the parsed content gives exactly these bytes (no extra or
/// altered members). It does not check the checkpoint's signature (the caller has the
/// key, see `tracehound snapshot verify --key`) and cannot tell a consistent forgery from
/// the daemon's export: compare the SHA-256 with one obtained from the daemon.
pub fn verify(bytes: &[u8]) -> Result<VerifiedSnapshot, SnapshotError> {
    if bytes.len() > MAX_SNAPSHOT_BYTES {
        return Err(SnapshotError::TooLarge);
    }
    let again =
        canonical_json_from_text(bytes).map_err(|e| SnapshotError::Canonical(e.to_string()))?;
    if again.as_bytes() != bytes {
        return Err(SnapshotError::NotCanonical);
    }
    let doc: Value =
        serde_json::from_slice(bytes).map_err(|e| SnapshotError::Canonical(e.to_string()))?;
    if doc.get("format").and_then(Value::as_str) != Some(SNAPSHOT_FORMAT) {
        return Err(SnapshotError::Format);
    }
    let config = doc.get("config").ok_or(SnapshotError::Shape("config"))?;
    let settings = config
        .get("settings")
        .ok_or(SnapshotError::Shape("config.settings"))?;
    let digest = config
        .get("sha256")
        .and_then(Value::as_str)
        .ok_or(SnapshotError::Shape("config.sha256"))?;
    if hex::encode(Sha256::digest(canonical(settings)?.as_bytes())) != digest {
        return Err(SnapshotError::ConfigDigest);
    }
    let evidence = doc
        .get("evidence")
        .and_then(Value::as_array)
        .ok_or(SnapshotError::Shape("evidence"))?
        .iter()
        .enumerate()
        .map(|(i, e)| entry(i, e))
        .collect::<Result<Vec<_>, _>>()?;
    for w in evidence.windows(2) {
        match w[0].signature.cmp(&w[1].signature) {
            std::cmp::Ordering::Less => {}
            std::cmp::Ordering::Equal => {
                return Err(SnapshotError::Duplicate(w[1].signature.clone()))
            }
            std::cmp::Ordering::Greater => return Err(SnapshotError::Order),
        }
    }
    summary(&doc, &evidence)?;
    let audit = AuditFacts {
        length: doc
            .pointer("/audit/length")
            .and_then(Value::as_u64)
            .ok_or(SnapshotError::Shape("audit.length"))?,
        head: doc
            .pointer("/audit/head")
            .and_then(Value::as_str)
            .and_then(ChainHash::from_hex)
            .ok_or(SnapshotError::Shape("audit.head"))?,
    };
    let ledger = ledger(&doc)?;
    let state = SnapshotState {
        evidence,
        audit,
        ledger,
        settings: settings.clone(),
    };
    // Catch-all: members no export has, or numbers that do not round-trip.
    if export(&state)?.bytes != bytes {
        return Err(SnapshotError::Inconsistent);
    }
    Ok(VerifiedSnapshot {
        sha256: Sha256::digest(bytes).into(),
        evidence: state.evidence.len() as u64,
        audit_length: audit.length,
        ledger_size: state.ledger.as_ref().map(|l| l.size),
        ledger: state.ledger,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::canonical::canonical_json;

    fn facts(c: char, severity: Severity, size: u64) -> EvidenceFacts {
        let hash: String = std::iter::repeat_n(c, 64).collect();
        EvidenceFacts {
            signature: format!("injection:{hash}"),
            hash,
            severity,
            size,
            captured_ms: 5.0,
            compressed: false,
        }
    }

    fn base() -> Value {
        let state = SnapshotState {
            evidence: vec![facts('a', Severity::Low, 10), facts('b', Severity::High, 7)],
            audit: AuditFacts {
                length: 4,
                head: ChainHash([9; 32]),
            },
            ledger: Some(LedgerFacts {
                size: 4,
                root: [2; 32],
                checkpoint: Some(CheckpointFacts {
                    size: 3,
                    root: [1; 32],
                    note: "n".to_owned(),
                }),
            }),
            settings: json!({"quarantine": {"max_count": 5}}),
        };
        serde_json::from_slice(&export(&state).unwrap().bytes).unwrap()
    }

    /// `base()` edited by `edit`, re-canonicalized (so only consistency can reject it).
    fn edited(edit: impl FnOnce(&mut Value)) -> Result<VerifiedSnapshot, SnapshotError> {
        let mut doc = base();
        edit(&mut doc);
        verify(canonical_json(&doc).unwrap().as_bytes())
    }

    #[test]
    fn the_unedited_export_verifies_with_its_facts() {
        let v = edited(|_| {}).unwrap();
        assert_eq!((v.evidence, v.audit_length, v.ledger_size), (2, 4, Some(4)));
        let cp = v.ledger.unwrap().checkpoint.unwrap();
        assert_eq!((cp.size, cp.root, cp.note.as_str()), (3, [1; 32], "n"));
    }

    #[test]
    fn a_consistent_severity_edit_verifies_but_changes_the_hash() {
        // What an anchor is for: this forgery is internally consistent.
        let honest = edited(|_| {}).unwrap().sha256;
        let forged = edited(|d| {
            d["evidence"][0]["severity"] = json!("high");
            d["quarantine"]["by_severity"]["low"] = json!(0);
            d["quarantine"]["by_severity"]["high"] = json!(2);
        })
        .unwrap();
        assert_ne!(forged.sha256, honest);
    }

    #[test]
    fn totals_must_match_the_entries() {
        let sev = edited(|d| d["evidence"][0]["severity"] = json!("high"));
        assert_eq!(sev.unwrap_err(), SnapshotError::Summary("by_severity"));
        let count = edited(|d| d["quarantine"]["count"] = json!(3));
        assert_eq!(count.unwrap_err(), SnapshotError::Summary("count"));
        let bytes = edited(|d| d["evidence"][1]["size"] = json!(8));
        assert_eq!(bytes.unwrap_err(), SnapshotError::Summary("bytes"));
        let extra = edited(|d| d["quarantine"]["by_severity"]["other"] = json!(0));
        assert_eq!(extra.unwrap_err(), SnapshotError::Summary("by_severity"));
    }

    #[test]
    fn each_entry_must_agree_with_itself() {
        let entry = |r| {
            Err(SnapshotError::Entry {
                index: 0,
                reason: r,
            })
        };
        let upper = "A".repeat(64);
        type Edit = Box<dyn FnOnce(&mut Value)>;
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|d| d["evidence"][0]["category"] = json!("xss")),
                "signature is not category:hash of this entry",
            ),
            (
                Box::new(|d| d["evidence"][0]["hash"] = json!("b".repeat(64))),
                "signature is not category:hash of this entry",
            ),
            (
                Box::new(move |d| {
                    d["evidence"][0]["hash"] = json!(upper);
                    d["evidence"][0]["signature"] = json!(format!("injection:{upper}"));
                }),
                "hash is not 64 lowercase hex digits",
            ),
            (
                Box::new(|d| d["evidence"][0]["hash"] = json!("a".repeat(63))),
                "hash is not 64 lowercase hex digits",
            ),
            (
                Box::new(|d| d["evidence"][0]["severity"] = json!("urgent")),
                "severity is not a known severity",
            ),
            (
                Box::new(|d| d["evidence"][0]["size"] = json!(-1)),
                "size is not a non-negative integer",
            ),
            (
                Box::new(|d| d["evidence"][0]["compressed"] = json!(0)),
                "compressed is not a boolean",
            ),
        ];
        let n = cases.len();
        for (edit, reason) in cases {
            assert_eq!(edited(edit), entry(reason), "{reason}");
        }
        assert_eq!(n, 7);
    }

    #[test]
    fn duplicates_and_disorder_are_rejected() {
        let dup = edited(|d| {
            let first = d["evidence"][0].clone();
            d["evidence"][1] = first;
            d["quarantine"]["bytes"] = json!(20);
            d["quarantine"]["by_severity"]["low"] = json!(2);
            d["quarantine"]["by_severity"]["high"] = json!(0);
        });
        let sig = format!("injection:{}", "a".repeat(64));
        assert_eq!(dup.unwrap_err(), SnapshotError::Duplicate(sig));
        let swapped = edited(|d| {
            let list = d["evidence"].as_array_mut().unwrap();
            list.swap(0, 1);
        });
        assert_eq!(swapped.unwrap_err(), SnapshotError::Order);
    }

    #[test]
    fn the_checkpoint_must_fit_the_ledger_head() {
        let past = edited(|d| d["ledger"]["checkpoint"]["size"] = json!(5));
        assert!(matches!(past, Err(SnapshotError::Checkpoint(_))));
        let other_root = edited(|d| d["ledger"]["checkpoint"]["size"] = json!(4));
        assert!(matches!(other_root, Err(SnapshotError::Checkpoint(_))));
        let bad_root = edited(|d| d["ledger"]["root"] = json!("zz"));
        assert_eq!(bad_root.unwrap_err(), SnapshotError::Shape("ledger.root"));
    }

    #[test]
    fn members_no_export_has_are_rejected() {
        let extra = edited(|d| d["evidence"][0]["payload"] = json!("secret"));
        assert_eq!(extra.unwrap_err(), SnapshotError::Inconsistent);
        let top = edited(|d| d["note"] = json!("x"));
        assert_eq!(top.unwrap_err(), SnapshotError::Inconsistent);
        let head = edited(|d| d["audit"]["head"] = json!("0"));
        assert_eq!(head.unwrap_err(), SnapshotError::Shape("audit.head"));
    }
}
