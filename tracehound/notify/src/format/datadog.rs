//! Datadog Logs intake: `POST /api/v2/logs` with `DD-API-KEY`, a JSON array of log
//! entries (`ddsource`, `service`, `ddtags`, `hostname`, `message`, `status`) with the
//! record's metadata as attributes (`evt.name`, `network.client.ip`, `tracehound.*`).

use std::net::IpAddr;

use serde_json::{json, Map, Value};
use tracehound_core::types::Severity;

use crate::format::{rfc3339_ms, summary};
use crate::record::Record;

/// Intake path.
pub const PATH: &str = "/api/v2/logs";
/// The API key header.
pub const KEY_HEADER: &str = "DD-API-KEY";

/// Per-sink Datadog settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatadogFields {
    /// `service` (default `tracehound`).
    pub service: Option<String>,
    /// `ddtags` (`key:value,…`).
    pub tags: Option<String>,
    /// `hostname`.
    pub host: Option<String>,
}

fn status(s: Option<Severity>) -> &'static str {
    match s {
        Some(Severity::Critical) => "critical",
        Some(Severity::High) => "error",
        Some(Severity::Medium | Severity::Low) => "warn",
        None => "info",
    }
}

/// One log entry.
pub fn entry(r: &Record, f: &DatadogFields) -> Value {
    let mut e = Map::new();
    e.insert("ddsource".into(), "tracehound".into());
    e.insert(
        "service".into(),
        f.service
            .clone()
            .unwrap_or_else(|| "tracehound".into())
            .into(),
    );
    if let Some(t) = &f.tags {
        e.insert("ddtags".into(), t.clone().into());
    }
    if let Some(h) = &f.host {
        e.insert("hostname".into(), h.clone().into());
    }
    e.insert("message".into(), summary(r).into());
    e.insert("status".into(), status(r.severity).into());
    e.insert("date".into(), rfc3339_ms(r.first_seen_ms).into());
    e.insert(
        "evt".into(),
        json!({"name": r.event_type.as_str(), "id": r.id}),
    );
    if let Some(ip) = r.source.as_deref().and_then(|s| s.parse::<IpAddr>().ok()) {
        e.insert("network".into(), json!({"client": {"ip": ip.to_string()}}));
    }
    let mut th = Map::new();
    th.insert("count".into(), r.count.into());
    th.insert("first_seen".into(), r.first_seen_ms.into());
    th.insert("last_seen".into(), r.last_seen_ms.into());
    for (k, v) in [
        ("signature", &r.signature),
        ("category", &r.category),
        ("source", &r.source),
        ("scent_id", &r.scent_id),
    ] {
        if let Some(v) = v {
            th.insert(k.into(), v.clone().into());
        }
    }
    if let Some(s) = r.severity {
        th.insert("severity".into(), s.as_str().into());
    }
    if let Some(h) = r.hash() {
        th.insert("hash".into(), h.into());
    }
    if let Some(s) = r.size {
        th.insert("size".into(), s.into());
    }
    if r.count > 1 && !r.signatures.is_empty() {
        th.insert("signatures".into(), r.signatures.clone().into());
    }
    e.insert("tracehound".into(), Value::Object(th));
    Value::Object(e)
}

/// The request body: a JSON array of entries.
pub fn body(records: &[&Record], f: &DatadogFields) -> String {
    Value::Array(records.iter().map(|r| entry(r, f)).collect()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::fixtures::records;

    #[test]
    fn log_entries_shape() {
        let (q, t) = records();
        let f = DatadogFields {
            tags: Some("env:prod".into()),
            ..DatadogFields::default()
        };
        let v: Value = serde_json::from_str(&body(&[&t, &q], &f)).unwrap_or_default();
        let a = v.as_array().cloned().unwrap_or_default();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0]["ddsource"], "tracehound");
        assert_eq!(a[0]["service"], "tracehound");
        assert_eq!(a[0]["ddtags"], "env:prod");
        assert_eq!(a[0]["status"], "error");
        assert_eq!(a[0]["network"]["client"]["ip"], "10.1.2.3");
        assert_eq!(
            a[0]["message"],
            "threat.detected injection/high from 10.1.2.3"
        );
        assert_eq!(a[1]["status"], "critical");
        assert_eq!(a[1]["tracehound"]["count"], 3);
        assert_eq!(
            a[1]["message"],
            "evidence.quarantined injection/critical (x3)"
        );
    }
}
