//! The daemon's answers as plain, serialisable values: what `--json` prints and what the
//! text output and the dashboard render. Built from the generated messages in one place,
//! so absent sub-messages (proto3) become zeroes here and nowhere else.

use std::collections::BTreeMap;

use serde::Serialize;
use tracehound_rpc::pb;

/// How many result kinds [`StatsView::results`] lists.
pub const RESULT_KINDS: usize = 7;

/// Severity names from the most to the least severe: the order the tools display them.
pub const SEVERITIES: [&str; 4] = ["critical", "high", "medium", "low"];

/// Everything `Stats` returns, with the proto's field names.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatsView {
    pub total_intercepts: u64,
    pub clean: u64,
    pub rate_limited: u64,
    pub payload_too_large: u64,
    pub ignored: u64,
    pub quarantined: u64,
    pub errors: u64,
    pub panics_caught: u64,
    pub quarantine: QuarantineView,
    pub audit: AuditView,
    pub top_sources: Vec<SourceView>,
    pub recent_threats: Vec<ThreatView>,
    pub notifications_dropped: u64,
    pub uptime_ms: u64,
    pub config_generation: u64,
    pub reload_failures: u64,
    pub rate_limited_sources_active: u64,
    pub rate_limited_sources_blocked: u64,
    /// The durable audit ledger; absent when the daemon runs without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger: Option<LedgerView>,
    /// Cold storage; absent when the daemon runs without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cold: Option<crate::cold::ColdStatsView>,
    /// Evidence in memory and in cold storage, by category.
    pub cost_by_category: BTreeMap<String, crate::cold::CostView>,
    /// The lifecycle policy's runs; absent without `[lifecycle]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<crate::cold::LifecycleView>,
    /// Notification sinks (`[[notify.sinks]]`), in configuration order.
    pub notify_sinks: Vec<NotifySinkView>,
    /// Threat coalescing before the sinks; absent without sinks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify_coalesce: Option<NotifyCoalesceView>,
}

/// One notification sink's counters (records).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NotifySinkView {
    pub name: String,
    pub kind: String,
    pub queued: u64,
    pub inflight: u64,
    pub sent: u64,
    pub retried: u64,
    pub dropped: u64,
    pub failed: u64,
    pub acked: u64,
    pub purged: u64,
}

/// Threat coalescing counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NotifyCoalesceView {
    pub window_ms: u64,
    pub key: String,
    pub events_in: u64,
    pub records_out: u64,
    pub merged: u64,
    pub overflow: u64,
    pub open: u64,
    pub input_dropped: u64,
    pub shed: u64,
}

/// The durable audit ledger's counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LedgerView {
    pub fsync: String,
    pub entries: u64,
    pub acknowledged: u64,
    pub pending: u64,
    pub syncs: u64,
    pub failures: u64,
    pub checkpoint_size: u64,
}

/// Quarantine fill and pressure.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QuarantineView {
    pub count: u64,
    pub bytes: u64,
    pub max_count: u64,
    pub max_bytes: u64,
    pub pressure: String,
    pub count_by_severity: BTreeMap<String, u64>,
}

/// The audit chain's length and last hash.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AuditView {
    pub length: u64,
    pub head_hash: String,
}

/// One of the busiest sources.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SourceView {
    pub source: String,
    pub intercepts: u64,
    pub threats: u64,
    pub blocked: bool,
}

/// One recently quarantined threat (metadata only).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ThreatView {
    pub signature: String,
    pub category: String,
    pub severity: String,
    pub size: u64,
    pub captured_ms: f64,
}

impl From<pb::StatsReply> for StatsView {
    fn from(r: pb::StatsReply) -> Self {
        let quarantine = r.quarantine.unwrap_or_default();
        let audit = r.audit.unwrap_or_default();
        let ledger = r.ledger.map(|l| LedgerView {
            fsync: l.fsync,
            entries: l.entries,
            acknowledged: l.acknowledged,
            pending: l.pending,
            syncs: l.syncs,
            failures: l.failures,
            checkpoint_size: l.checkpoint_size,
        });
        Self {
            ledger,
            cold: r.cold.map(crate::cold::ColdStatsView::from),
            cost_by_category: crate::cold::cost_view(r.cost_by_category),
            lifecycle: r.lifecycle.map(crate::cold::LifecycleView::from),
            notify_sinks: r
                .notify_sinks
                .into_iter()
                .map(|k| NotifySinkView {
                    name: k.name,
                    kind: k.kind,
                    queued: k.queued,
                    inflight: k.inflight,
                    sent: k.sent,
                    retried: k.retried,
                    dropped: k.dropped,
                    failed: k.failed,
                    acked: k.acked,
                    purged: k.purged,
                })
                .collect(),
            notify_coalesce: r.notify_coalesce.map(|c| NotifyCoalesceView {
                window_ms: c.window_ms,
                key: c.key,
                events_in: c.events_in,
                records_out: c.records_out,
                merged: c.merged,
                overflow: c.overflow,
                open: c.open,
                input_dropped: c.input_dropped,
                shed: c.shed,
            }),
            total_intercepts: r.total_intercepts,
            clean: r.clean,
            rate_limited: r.rate_limited,
            payload_too_large: r.payload_too_large,
            ignored: r.ignored,
            quarantined: r.quarantined,
            errors: r.errors,
            panics_caught: r.panics_caught,
            quarantine: QuarantineView {
                count: quarantine.count,
                bytes: quarantine.bytes,
                max_count: quarantine.max_count,
                max_bytes: quarantine.max_bytes,
                pressure: quarantine.pressure,
                count_by_severity: quarantine.count_by_severity.into_iter().collect(),
            },
            audit: AuditView {
                length: audit.length,
                head_hash: audit.head_hash,
            },
            top_sources: r
                .top_sources
                .into_iter()
                .map(|s| SourceView {
                    source: s.source,
                    intercepts: s.intercepts,
                    threats: s.threats,
                    blocked: s.blocked,
                })
                .collect(),
            recent_threats: r
                .recent_threats
                .into_iter()
                .map(|t| ThreatView {
                    signature: t.signature,
                    category: t.category,
                    severity: t.severity,
                    size: t.size,
                    captured_ms: t.captured_ms,
                })
                .collect(),
            notifications_dropped: r.notifications_dropped,
            uptime_ms: r.uptime_ms,
            config_generation: r.config_generation,
            reload_failures: r.reload_failures,
            rate_limited_sources_active: r.rate_limited_sources_active,
            rate_limited_sources_blocked: r.rate_limited_sources_blocked,
        }
    }
}

impl StatsView {
    /// Results by kind, in the order the core checks for them.
    pub fn results(&self) -> [(&'static str, u64); RESULT_KINDS] {
        [
            ("clean", self.clean),
            ("rate_limited", self.rate_limited),
            ("payload_too_large", self.payload_too_large),
            ("ignored", self.ignored),
            ("quarantined", self.quarantined),
            ("error", self.errors),
            ("panics_caught", self.panics_caught),
        ]
    }
}

impl QuarantineView {
    /// Held evidence per severity, most severe first, then any names this tool does not
    /// know (a newer daemon), alphabetically.
    pub fn by_severity(&self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = SEVERITIES
            .iter()
            .map(|s| {
                (
                    (*s).to_owned(),
                    self.count_by_severity.get(*s).copied().unwrap_or(0),
                )
            })
            .collect();
        out.extend(
            self.count_by_severity
                .iter()
                .filter(|(k, _)| !SEVERITIES.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), *v)),
        );
        out
    }

    /// Fill as a fraction of the tighter of the two bounds (0 when unbounded).
    pub fn fill_ratio(&self) -> f64 {
        let ratio = |used: u64, max: u64| {
            if max == 0 {
                0.0
            } else {
                used as f64 / max as f64
            }
        };
        ratio(self.count, self.max_count)
            .max(ratio(self.bytes, self.max_bytes))
            .clamp(0.0, 1.0)
    }

    /// The pressure level, or `unknown` when the daemon sent none.
    pub fn pressure_name(&self) -> &str {
        if self.pressure.is_empty() {
            "unknown"
        } else {
            &self.pressure
        }
    }
}

/// What `status --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct StatusView {
    pub reachable: bool,
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_generation: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reload_failures: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_intercepts: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditView>,
}

impl StatusView {
    /// A daemon that answered.
    pub fn up(target: &str, stats: &StatsView) -> Self {
        Self {
            reachable: true,
            target: target.to_owned(),
            error: None,
            uptime_ms: Some(stats.uptime_ms),
            config_generation: Some(stats.config_generation),
            reload_failures: Some(stats.reload_failures),
            total_intercepts: Some(stats.total_intercepts),
            audit: Some(stats.audit.clone()),
        }
    }

    /// A daemon that could not be reached, and why.
    pub fn down(target: &str, error: String) -> Self {
        Self {
            reachable: false,
            target: target.to_owned(),
            error: Some(error),
            uptime_ms: None,
            config_generation: None,
            reload_failures: None,
            total_intercepts: None,
            audit: None,
        }
    }
}

/// What `inspect --json` prints: the proto's InspectReply fields.
#[derive(Debug, Clone, Serialize)]
pub struct InspectView {
    pub found: bool,
    pub signature: String,
    pub category: String,
    pub severity: String,
    pub size: u64,
    pub stored_bytes: u64,
    pub hash: String,
    pub captured_ms: f64,
    pub disposed: bool,
}

impl InspectView {
    /// From the reply; the signature asked for is kept when the daemon found nothing.
    pub fn new(asked: &str, r: pb::InspectReply) -> Self {
        Self {
            found: r.found,
            signature: if r.signature.is_empty() {
                asked.to_owned()
            } else {
                r.signature
            },
            category: r.category,
            severity: r.severity,
            size: r.size,
            stored_bytes: r.stored_bytes,
            hash: r.hash,
            captured_ms: r.captured_ms,
            disposed: r.disposed,
        }
    }
}

/// What `verify-chain --json` prints, for the daemon's chain and an exported one alike.
#[derive(Debug, Clone, Serialize)]
pub struct ChainView {
    pub ok: bool,
    pub length: u64,
    pub head_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad_index: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The daemon's durable ledger, re-read from disk (absent without one, and offline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger: Option<LedgerCheckView>,
}

/// The daemon's verification of its durable audit ledger.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerCheckView {
    pub ok: bool,
    pub entries: u64,
    pub root_hash: String,
    pub head_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<pb::VerifyChainReply> for ChainView {
    fn from(r: pb::VerifyChainReply) -> Self {
        Self {
            ledger: r.ledger.map(|l| LedgerCheckView {
                ok: l.ok,
                entries: l.entries,
                root_hash: l.root_hash,
                head_hash: l.head_hash,
                error: (!l.ok).then_some(l.error),
            }),
            ok: r.ok,
            length: r.length,
            head_hash: r.head_hash,
            first_bad_index: (!r.ok).then_some(r.first_bad_index),
            error: (!r.ok).then_some(r.error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_submessages_become_zero_and_severities_are_ordered() {
        let view = StatsView::from(pb::StatsReply {
            total_intercepts: 5,
            clean: 3,
            quarantined: 2,
            ..Default::default()
        });
        assert_eq!(view.total_intercepts, 5);
        assert_eq!(view.quarantine.pressure_name(), "unknown");
        assert_eq!(view.quarantine.fill_ratio(), 0.0);
        assert_eq!(view.audit.length, 0);
        let sum: u64 = view.results().iter().map(|(_, n)| n).sum();
        assert_eq!(sum, 5);

        let q = QuarantineView {
            count: 5,
            max_count: 10,
            bytes: 900,
            max_bytes: 1000,
            count_by_severity: [("low", 1), ("critical", 2), ("weird", 2)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            ..Default::default()
        };
        assert!((q.fill_ratio() - 0.9).abs() < 1e-9);
        let names: Vec<String> = q.by_severity().into_iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["critical", "high", "medium", "low", "weird"]);
    }

    #[test]
    fn chain_view_names_the_fault_only_when_broken() {
        let ok = ChainView::from(pb::VerifyChainReply {
            ok: true,
            length: 3,
            head_hash: "ab".into(),
            ..Default::default()
        });
        let json = serde_json::to_value(&ok).unwrap_or_default();
        assert_eq!(json.get("first_bad_index"), None);
        let bad = ChainView::from(pb::VerifyChainReply {
            ok: false,
            length: 3,
            first_bad_index: 1,
            error: "hash mismatch".into(),
            ..Default::default()
        });
        assert_eq!(bad.first_bad_index, Some(1));
    }
}
