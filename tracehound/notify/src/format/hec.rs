//! Splunk HTTP Event Collector: events to `/services/collector/event` (one JSON object
//! per record, concatenated), `Authorization: Splunk TOKEN`, and a channel id in
//! `X-Splunk-Request-Channel` so indexer acknowledgement can be used: the reply carries
//! an `ackId`, and `/services/collector/ack` answers `{"acks":{"ID":true}}` once indexed.

use serde_json::{json, Map, Value};

use crate::format::{rfc3339_ms, severity_id};
use crate::record::Record;

/// Event endpoint path.
pub const EVENT_PATH: &str = "/services/collector/event";
/// Acknowledgement endpoint path.
pub const ACK_PATH: &str = "/services/collector/ack";
/// The channel header.
pub const CHANNEL_HEADER: &str = "X-Splunk-Request-Channel";

/// Per-sink HEC settings that end up in each event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HecFields {
    /// `index`, when the token's default is not wanted.
    pub index: Option<String>,
    /// `sourcetype` (default `tracehound:event`).
    pub sourcetype: Option<String>,
    /// `host`.
    pub host: Option<String>,
}

/// The `event` object: the record's metadata.
pub fn event_fields(r: &Record) -> Value {
    let mut e = Map::new();
    e.insert("type".into(), r.event_type.as_str().into());
    e.insert("id".into(), r.id.clone().into());
    e.insert("count".into(), r.count.into());
    e.insert("first_seen".into(), rfc3339_ms(r.first_seen_ms).into());
    e.insert("last_seen".into(), rfc3339_ms(r.last_seen_ms).into());
    let opt = |e: &mut Map<String, Value>, k: &str, v: &Option<String>| {
        if let Some(v) = v {
            e.insert(k.into(), v.clone().into());
        }
    };
    opt(&mut e, "scent_id", &r.scent_id);
    opt(&mut e, "signature", &r.signature);
    if let Some(h) = r.hash() {
        e.insert("hash".into(), h.into());
    }
    opt(&mut e, "category", &r.category);
    if let Some(s) = r.severity {
        e.insert("severity".into(), s.as_str().into());
        e.insert("severity_id".into(), severity_id(Some(s)).into());
    }
    if let Some(s) = r.size {
        e.insert("size".into(), s.into());
    }
    opt(&mut e, "source", &r.source);
    if r.count > 1 && !r.signatures.is_empty() {
        e.insert("signatures".into(), r.signatures.clone().into());
    }
    Value::Object(e)
}

/// The request body for `records`: one HEC envelope per record, concatenated.
pub fn body(records: &[&Record], f: &HecFields) -> String {
    let mut out = String::new();
    for r in records {
        let mut env = Map::new();
        // HEC takes epoch seconds with a fraction.
        env.insert("time".into(), json!(r.first_seen_ms as f64 / 1000.0));
        if let Some(h) = &f.host {
            env.insert("host".into(), h.clone().into());
        }
        env.insert("source".into(), "tracehound".into());
        env.insert(
            "sourcetype".into(),
            f.sourcetype
                .clone()
                .unwrap_or_else(|| "tracehound:event".into())
                .into(),
        );
        if let Some(i) = &f.index {
            env.insert("index".into(), i.clone().into());
        }
        env.insert("event".into(), event_fields(r));
        out.push_str(&Value::Object(env).to_string());
    }
    out
}

/// `ackId` of an event reply (`{"text":"Success","code":0,"ackId":7}`).
pub fn parse_ack_id(reply: &[u8]) -> Option<u64> {
    serde_json::from_slice::<Value>(reply)
        .ok()?
        .get("ackId")?
        .as_u64()
}

/// The ack poll body: `{"acks":[ID,…]}`.
pub fn ack_body(ids: &[u64]) -> String {
    json!({ "acks": ids }).to_string()
}

/// The ids a poll reply (`{"acks":{"7":true}}`) reports as indexed.
pub fn parse_acked(reply: &[u8]) -> Vec<u64> {
    let Ok(v) = serde_json::from_slice::<Value>(reply) else {
        return Vec::new();
    };
    let Some(acks) = v.get("acks").and_then(Value::as_object) else {
        return Vec::new();
    };
    acks.iter()
        .filter(|(_, v)| v.as_bool() == Some(true))
        .filter_map(|(k, _)| k.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::fixtures::records;

    #[test]
    fn envelope_shape() {
        let (q, t) = records();
        let f = HecFields {
            index: Some("sec".into()),
            ..HecFields::default()
        };
        let b = body(&[&t, &q], &f);
        let first = b.split_inclusive('}').next().unwrap_or_default();
        assert!(b.starts_with(r#"{"time":1700000000.0,"source":"tracehound","sourcetype":"tracehound:event","index":"sec","event":{"type":"threat.detected","id":"evt-2","count":1,"#), "{first}");
        assert!(b.contains(r#""signature":"injection:abcd","hash":"abcd","category":"injection","severity":"critical","severity_id":5,"size":1050"#), "{b}");
        let docs: Vec<Value> = serde_json::Deserializer::from_str(&b)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .unwrap_or_default();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1]["event"]["count"], 3);
    }

    #[test]
    fn ack_parsing() {
        assert_eq!(
            parse_ack_id(br#"{"text":"Success","code":0,"ackId":7}"#),
            Some(7)
        );
        assert_eq!(parse_ack_id(br#"{"text":"Success","code":0}"#), None);
        assert_eq!(ack_body(&[7, 9]), r#"{"acks":[7,9]}"#);
        let mut acked = parse_acked(br#"{"acks":{"7":true,"9":false,"x":true}}"#);
        acked.sort_unstable();
        assert_eq!(acked, vec![7]);
        assert!(parse_acked(b"garbage").is_empty());
    }
}
