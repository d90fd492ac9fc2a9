//! OCSF Detection Finding (class 2004, category 2 "Findings", schema 1.1): one JSON
//! object per record, usable as the body of a generic HTTP sink.
//!
//! `activity_id` 1 (Create), `type_uid` = class × 100 + activity = 200401, `severity_id`
//! Low 2 / Medium 3 / High 4 / Critical 5, `status_id` 1 (New), `time` the first seen
//! instant in ms, `finding_info` {uid, title, types, first_seen_time, last_seen_time},
//! `count`, `src_endpoint` {ip | name}; Tracehound's own fields under `unmapped`.

use std::net::IpAddr;

use serde_json::{json, Map, Value};

use crate::format::{severity_id, severity_name, summary};
use crate::record::Record;

/// Detection Finding.
pub const CLASS_UID: u32 = 2004;
/// Findings.
pub const CATEGORY_UID: u32 = 2;
/// Create.
pub const ACTIVITY_ID: u32 = 1;
/// OCSF schema version of the mapping.
pub const SCHEMA_VERSION: &str = "1.1.0";

/// The finding for one record.
pub fn finding(r: &Record) -> Value {
    let mut f = Map::new();
    f.insert("activity_id".into(), ACTIVITY_ID.into());
    f.insert("activity_name".into(), "Create".into());
    f.insert("category_uid".into(), CATEGORY_UID.into());
    f.insert("category_name".into(), "Findings".into());
    f.insert("class_uid".into(), CLASS_UID.into());
    f.insert("class_name".into(), "Detection Finding".into());
    f.insert("type_uid".into(), (CLASS_UID * 100 + ACTIVITY_ID).into());
    f.insert("type_name".into(), "Detection Finding: Create".into());
    f.insert("severity_id".into(), severity_id(r.severity).into());
    f.insert("severity".into(), severity_name(r.severity).into());
    f.insert("status_id".into(), 1.into());
    f.insert("status".into(), "New".into());
    f.insert("time".into(), r.first_seen_ms.into());
    f.insert("start_time".into(), r.first_seen_ms.into());
    f.insert("end_time".into(), r.last_seen_ms.into());
    f.insert("count".into(), r.count.into());
    f.insert("message".into(), summary(r).into());
    f.insert(
        "metadata".into(),
        json!({
            "version": SCHEMA_VERSION,
            "uid": r.id,
            "product": {"name": "Tracehound", "vendor_name": "Tracehound",
                        "version": env!("CARGO_PKG_VERSION")},
        }),
    );
    let mut info = Map::new();
    info.insert(
        "uid".into(),
        r.signature.clone().unwrap_or_else(|| r.id.clone()).into(),
    );
    info.insert("title".into(), summary(r).into());
    if let Some(c) = &r.category {
        info.insert("types".into(), json!([c]));
    }
    info.insert("first_seen_time".into(), r.first_seen_ms.into());
    info.insert("last_seen_time".into(), r.last_seen_ms.into());
    info.insert(
        "analytic".into(),
        json!({"type_id": 0, "type": "Unknown", "name": r.event_type.as_str()}),
    );
    f.insert("finding_info".into(), Value::Object(info));
    if let Some(src) = &r.source {
        let ep = match src.parse::<IpAddr>() {
            Ok(ip) => json!({"ip": ip.to_string()}),
            Err(_) => json!({"name": src}),
        };
        f.insert("src_endpoint".into(), ep);
    }
    let mut un = Map::new();
    un.insert("event_type".into(), r.event_type.as_str().into());
    for (k, v) in [("signature", &r.signature), ("scent_id", &r.scent_id)] {
        if let Some(v) = v {
            un.insert(k.into(), v.clone().into());
        }
    }
    if let Some(h) = r.hash() {
        un.insert("hash".into(), h.into());
    }
    if let Some(s) = r.size {
        un.insert("size".into(), s.into());
    }
    if r.count > 1 && !r.signatures.is_empty() {
        un.insert("signatures".into(), r.signatures.clone().into());
    }
    f.insert("unmapped".into(), Value::Object(un));
    Value::Object(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::fixtures::records;

    #[test]
    fn detection_finding_shape() {
        let (q, t) = records();
        let f = finding(&q);
        assert_eq!(f["class_uid"], 2004);
        assert_eq!(f["category_uid"], 2);
        assert_eq!(f["activity_id"], 1);
        assert_eq!(f["type_uid"], 200401);
        assert_eq!(f["severity_id"], 5);
        assert_eq!(f["severity"], "Critical");
        assert_eq!(f["time"], 1_700_000_000_123u64);
        assert_eq!(f["count"], 3);
        assert_eq!(f["finding_info"]["uid"], "injection:abcd");
        assert_eq!(f["finding_info"]["types"], json!(["injection"]));
        assert_eq!(f["finding_info"]["last_seen_time"], 1_700_000_005_000u64);
        assert_eq!(f["unmapped"]["hash"], "abcd");
        let f = finding(&t);
        assert_eq!(f["severity_id"], 4);
        assert_eq!(f["src_endpoint"]["ip"], "10.1.2.3");
        assert_eq!(f["finding_info"]["uid"], "evt-2");
    }
}
