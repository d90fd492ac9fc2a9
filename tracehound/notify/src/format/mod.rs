//! Request bodies for each sink kind, without I/O: pure functions of records and
//! settings, unit-tested against golden shapes.
//!
//! * [`webhook`] — v1's signed webhook (spec §21), built by the core.
//! * [`hec`] — Splunk HTTP Event Collector events and indexer-acknowledgement polls.
//! * [`ecs`] — Elasticsearch `_bulk` NDJSON with Elastic Common Schema fields.
//! * [`datadog`] — Datadog Logs intake (`/api/v2/logs`).
//! * [`ocsf`] — an OCSF Detection Finding (class 2004) per record.

pub mod datadog;
pub mod ecs;
pub mod hec;
pub mod ocsf;
pub mod webhook;

use tracehound_core::types::Severity;

use crate::record::Record;

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for ms since the epoch (proleptic Gregorian, UTC).
pub fn rfc3339_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        ms % 1000
    )
}

/// Days since 1970-01-01 → (year, month, day), after H. Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// OCSF `severity_id` (also used as ECS `event.severity`): Low 2, Medium 3, High 4,
/// Critical 5; 1 (Informational) when the event has no severity.
pub fn severity_id(s: Option<Severity>) -> u8 {
    match s {
        Some(Severity::Low) => 2,
        Some(Severity::Medium) => 3,
        Some(Severity::High) => 4,
        Some(Severity::Critical) => 5,
        None => 1,
    }
}

/// OCSF's name for [`severity_id`].
pub fn severity_name(s: Option<Severity>) -> &'static str {
    match s {
        Some(Severity::Low) => "Low",
        Some(Severity::Medium) => "Medium",
        Some(Severity::High) => "High",
        Some(Severity::Critical) => "Critical",
        None => "Informational",
    }
}

/// A one-line human summary: `threat.detected injection/high from 10.0.0.1 (x1000)`.
pub fn summary(r: &Record) -> String {
    let mut s = r.event_type.as_str().to_owned();
    if let Some(c) = &r.category {
        s.push(' ');
        s.push_str(c);
    }
    if let Some(sev) = r.severity {
        s.push('/');
        s.push_str(sev.as_str());
    }
    if let Some(src) = &r.source {
        s.push_str(" from ");
        s.push_str(src);
    }
    if r.count > 1 {
        s.push_str(&format!(" (x{})", r.count));
    }
    s
}

#[cfg(test)]
pub(crate) mod fixtures {
    use serde_json::json;
    use tracehound_core::notify::{Event, EventType};

    use crate::record::Record;

    /// A coalesced quarantine record and a single threat record.
    pub fn records() -> (Record, Record) {
        let mut q = Record::from_event(&Event::new(
            EventType::EvidenceQuarantined,
            1_700_000_000_123,
            json!({"signature": "injection:abcd", "size": 1050, "severity": "critical"}),
            "evt-1".into(),
        ));
        q.count = 3;
        q.last_seen_ms = 1_700_000_005_000;
        let t = Record::from_event(&Event::new(
            EventType::ThreatDetected,
            1_700_000_000_000,
            json!({"scentId": "s-1", "category": "injection", "severity": "high", "source": "10.1.2.3"}),
            "evt-2".into(),
        ));
        (q, t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
