//! Elasticsearch `_bulk`: NDJSON, an action line (`create`, so data streams work too)
//! then an Elastic Common Schema document per record, each line ending in `\n`.
//!
//! ECS mapping: `@timestamp` (first seen), `event.kind = "alert"`,
//! `event.category = ["intrusion_detection"]` (`["network"]` for rate limits),
//! `event.type` (`["denied"]` for quarantine and rate limits, `["info"]` otherwise),
//! `event.severity` (the OCSF severity id, 1–5), `event.action` (the event type),
//! `event.start`/`event.end`, `source.ip` when the source parses as an IP address
//! (`source.address` always), `rule.name`/`rule.category` (the threat category), the
//! evidence's SHA-256 as `file.hash.sha256`, and Tracehound's own fields (count,
//! signature, signatures sample, size) under `tracehound.*`.

use std::net::IpAddr;

use serde_json::{json, Map, Value};
use tracehound_core::notify::EventType;

use crate::format::{rfc3339_ms, severity_id};
use crate::record::Record;

/// The ECS document of one record.
pub fn document(r: &Record) -> Value {
    let denied = matches!(
        r.event_type,
        EventType::EvidenceQuarantined | EventType::RateLimitExceeded
    );
    let category = if r.event_type == EventType::RateLimitExceeded {
        "network"
    } else {
        "intrusion_detection"
    };
    let mut doc = Map::new();
    doc.insert("@timestamp".into(), rfc3339_ms(r.first_seen_ms).into());
    doc.insert("ecs".into(), json!({"version": "8.11.0"}));
    doc.insert(
        "event".into(),
        json!({
            "kind": "alert",
            "category": [category],
            "type": [if denied { "denied" } else { "info" }],
            "severity": severity_id(r.severity),
            "action": r.event_type.as_str(),
            "id": r.id,
            "start": rfc3339_ms(r.first_seen_ms),
            "end": rfc3339_ms(r.last_seen_ms),
            "dataset": "tracehound.events",
            "provider": "tracehound",
        }),
    );
    if let Some(src) = &r.source {
        let mut s = Map::new();
        if let Ok(ip) = src.parse::<IpAddr>() {
            s.insert("ip".into(), ip.to_string().into());
        }
        s.insert("address".into(), src.clone().into());
        doc.insert("source".into(), Value::Object(s));
    }
    if let Some(c) = &r.category {
        doc.insert("rule".into(), json!({"name": c, "category": c}));
    }
    if let Some(h) = r.hash() {
        doc.insert("file".into(), json!({"hash": {"sha256": h}}));
    }
    let mut th = Map::new();
    th.insert("count".into(), r.count.into());
    if let Some(s) = &r.signature {
        th.insert("signature".into(), s.clone().into());
    }
    if let Some(s) = r.severity {
        th.insert("severity".into(), s.as_str().into());
    }
    if let Some(s) = r.size {
        th.insert("size".into(), s.into());
    }
    if let Some(s) = &r.scent_id {
        th.insert("scent_id".into(), s.clone().into());
    }
    if r.count > 1 && !r.signatures.is_empty() {
        th.insert("signatures".into(), r.signatures.clone().into());
    }
    doc.insert("tracehound".into(), Value::Object(th));
    Value::Object(doc)
}

/// The `_bulk` body for `records` into `index`. Each action names the record's stable
/// [`Record::doc_id`] as `_id`, so a batch resent after a partial failure does not
/// index the items that already succeeded twice (they answer 409, taken as success).
pub fn bulk_body(records: &[&Record], index: &str) -> String {
    let mut out = String::new();
    for r in records {
        let action = json!({"create": {"_index": index, "_id": r.doc_id}}).to_string();
        out.push_str(&action);
        out.push('\n');
        out.push_str(&document(r).to_string());
        out.push('\n');
    }
    out
}

/// Whether a `_bulk` reply reports item errors that need a resend. `"errors": true`
/// counts unless every failed item answered 409 (the `_id` exists: an earlier attempt
/// indexed it). The whole batch is then resent; items already indexed answer 409 again,
/// so there are no duplicates. A reply that is not JSON is taken as success when the
/// status was 2xx (proxies in between may rewrite it).
pub fn bulk_has_errors(reply: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(reply) else {
        return false;
    };
    if v.get("errors").and_then(Value::as_bool) != Some(true) {
        return false;
    }
    let Some(items) = v.get("items").and_then(Value::as_array) else {
        return true;
    };
    // `errors` with no item to show for it: resend rather than guess.
    items.is_empty()
        || items.iter().any(|item| {
            let status = item
                .as_object()
                .and_then(|o| o.values().next())
                .and_then(|op| op.get("status"))
                .and_then(Value::as_u64);
            !matches!(status, Some(200..=299 | 409))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::fixtures::records;

    #[test]
    fn bulk_pairs_and_ecs_fields() {
        let (q, t) = records();
        let b = bulk_body(&[&t, &q], "tracehound-events");
        let lines: Vec<&str> = b.split_terminator('\n').collect();
        assert_eq!(lines.len(), 4);
        assert!(b.ends_with('\n'));
        let action: Value = serde_json::from_str(lines[0]).unwrap_or_default();
        assert_eq!(
            action,
            json!({"create": {"_index": "tracehound-events", "_id": t.doc_id}})
        );
        assert_ne!(t.doc_id, q.doc_id);
        let d: Value = serde_json::from_str(lines[1]).unwrap_or_default();
        assert_eq!(d["@timestamp"], "2023-11-14T22:13:20.000Z");
        assert_eq!(d["event"]["kind"], "alert");
        assert_eq!(d["event"]["category"], json!(["intrusion_detection"]));
        assert_eq!(d["event"]["type"], json!(["info"]));
        assert_eq!(d["event"]["severity"], 4);
        assert_eq!(d["source"]["ip"], "10.1.2.3");
        assert_eq!(d["rule"]["name"], "injection");
        let d: Value = serde_json::from_str(lines[3]).unwrap_or_default();
        assert_eq!(d["event"]["type"], json!(["denied"]));
        assert_eq!(d["event"]["severity"], 5);
        assert_eq!(d["file"]["hash"]["sha256"], "abcd");
        assert_eq!(d["tracehound"]["count"], 3);
        assert!(d.get("source").is_none());
    }

    #[test]
    fn non_ip_sources_are_addresses_only() {
        let (_, mut t) = records();
        t.source = Some("api-key-17".into());
        let d = document(&t);
        assert!(d["source"].get("ip").is_none());
        assert_eq!(d["source"]["address"], "api-key-17");
        assert!(bulk_has_errors(br#"{"took":1,"errors":true,"items":[]}"#));
        assert!(!bulk_has_errors(br#"{"took":1,"errors":false,"items":[]}"#));
        // Only 409s (already indexed by an earlier attempt): success.
        assert!(!bulk_has_errors(
            br#"{"errors":true,"items":[{"create":{"status":201}},{"create":{"status":409}}]}"#
        ));
        assert!(bulk_has_errors(
            br#"{"errors":true,"items":[{"create":{"status":409}},{"create":{"status":429}}]}"#
        ));
        assert!(bulk_has_errors(
            br#"{"errors":true,"items":[{"create":{}}]}"#
        ));
    }
}
