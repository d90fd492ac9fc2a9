//! What each method answers, computed from the engine (no I/O, so unit-testable).

use std::sync::atomic::Ordering;

use serde_json::json;
use sha2::{Digest, Sha256};
use tracehound_core::quarantine::PressureLevel;
use tracehound_core::state::{Health, LicenseStatus, StateSnapshot};
use tracehound_core::types::Severity;
use tracehound_rpc::pb;

use crate::config::MAX_TOP;
use crate::convert::{error_reply, reply_from, scent_from};
use crate::engine::Engine;

/// One intercept on the agent in force, and, when the reply must wait for the audit
/// ledger (`fsync = "every"` and evidence was quarantined), the number of this run's
/// audit records that must be durable first ([`AuditLog::acknowledge`]).
///
/// Only a quarantining insert can add audit records (evictions), so every other answer
/// leaves the ledger writer alone.
///
/// [`AuditLog::acknowledge`]: crate::audit_log::AuditLog::acknowledge
pub fn intercept(engine: &Engine, req: pb::InterceptRequest) -> (pb::InterceptReply, Option<u64>) {
    let sequence = req.sequence;
    let agent = engine.agent();
    let now = agent.clock().now_ms() as f64;
    let reply = match scent_from(req, now) {
        Ok(scent) => reply_from(sequence, &agent.intercept(&scent)),
        Err(bad) => {
            engine.request_errors.fetch_add(1, Ordering::Relaxed);
            error_reply(sequence, bad)
        }
    };
    let wait = match engine.audit_log() {
        Some(log) if reply.status() == pb::Status::Quarantined => {
            if log.acknowledges() {
                Some(log.durability_target())
            } else {
                log.nudge();
                None
            }
        }
        _ => None,
    };
    (reply, wait)
}

/// The contract's pressure names for the core's levels (70/85/95 %).
pub fn pressure_name(level: PressureLevel) -> &'static str {
    match level {
        PressureLevel::Normal => "normal",
        PressureLevel::Warning => "elevated",
        PressureLevel::Critical => "high",
        PressureLevel::Emergency => "critical",
    }
}

/// Counters, fill, audit head, top sources and recent threats.
pub fn stats(engine: &Engine, top: u32) -> pb::StatsReply {
    let config = engine.config();
    let top = if top == 0 {
        config.stats.top_default
    } else {
        top.min(MAX_TOP)
    } as usize;
    let agent = engine.agent();
    let s = agent.stats();
    let now = agent.clock().now_ms();
    let limiter = agent.rate_limiter().stats(now);
    let q = engine.quarantine.stats();
    let qc = engine.quarantine.with_store(|st| st.config());
    let (audit_len, head) = engine
        .quarantine
        .with_audit(|a| (a.len() as u64, a.last_hash().to_hex()));
    let request_errors = engine.request_errors.load(Ordering::Relaxed);
    // Read once: three reads could disagree with each other.
    let notify = engine.notifications().map(|n| n.stats());
    let count_by_severity = Severity::ALL
        .iter()
        .map(|&sev| (sev.as_str().to_owned(), q.by_severity.get(sev) as u64))
        .collect();
    pb::StatsReply {
        total_intercepts: s.total_intercepts + request_errors,
        clean: s.clean_count,
        rate_limited: s.rate_limited_count,
        payload_too_large: s.validation_failures,
        ignored: s.ignored_count,
        quarantined: s.quarantined_count,
        errors: s.error_count + request_errors,
        panics_caught: s.panics_caught,
        quarantine: Some(pb::QuarantineFill {
            count: q.count as u64,
            bytes: q.bytes as u64,
            max_count: qc.max_count as u64,
            max_bytes: qc.max_bytes as u64,
            pressure: pressure_name(PressureLevel::for_usage(q.bytes, qc.max_bytes)).to_owned(),
            count_by_severity,
        }),
        audit: Some(pb::AuditHead {
            length: audit_len,
            head_hash: head,
        }),
        top_sources: engine
            .insight
            .top_sources
            .top(top)
            .into_iter()
            .map(|(source, c)| pb::SourceCount {
                source,
                intercepts: c.intercepts,
                threats: c.threats,
                blocked: c.blocked,
            })
            .collect(),
        recent_threats: engine
            .insight
            .recent_threats
            .recent(top)
            .into_iter()
            .map(|t| pb::ThreatSummary {
                signature: t.signature,
                category: t.category.to_owned(),
                severity: t.severity.to_owned(),
                size: t.size,
                captured_ms: t.seen_ms,
            })
            .collect(),
        // Events the notifier lost before coalescing (0 without [notify] sinks).
        notifications_dropped: notify.as_ref().map_or(0, |(_, c)| c.input_dropped),
        notify_sinks: notify.as_ref().map(|(s, _)| s.clone()).unwrap_or_default(),
        notify_coalesce: notify.map(|(_, c)| c),
        ledger: engine.audit_log().map(|l| l.stats()),
        erasure: Some(engine.erasure().stats()),
        cold: engine.cold().map(crate::cold_rpc::cold_stats),
        cost_by_category: crate::cold_rpc::cost_by_category(engine)
            .into_iter()
            .collect(),
        lifecycle: config
            .lifecycle
            .as_ref()
            .map(|_| engine.lifecycle_state().stats()),
        uptime_ms: engine.uptime_ms(),
        config_generation: engine.generation(),
        reload_failures: engine.reload_failures(),
        rate_limited_sources_active: limiter.sources as u64,
        rate_limited_sources_blocked: limiter.blocked as u64,
    }
}

/// Metadata of one piece of evidence; never its bytes.
pub fn inspect(engine: &Engine, signature: &str) -> pb::InspectReply {
    let Some(h) = engine.quarantine.get(signature) else {
        return pb::InspectReply {
            found: false,
            signature: signature.to_owned(),
            ..Default::default()
        };
    };
    let category = h
        .signature()
        .split_once(':')
        .map_or("", |(c, _)| c)
        .to_owned();
    pb::InspectReply {
        found: true,
        signature: h.signature().to_owned(),
        category,
        severity: h.severity().as_str().to_owned(),
        // The daemon's factory stores canonical bytes uncompressed, so both sizes agree.
        size: h.size() as u64,
        stored_bytes: h.size() as u64,
        hash: h.hash().to_owned(),
        captured_ms: h.captured(),
        disposed: h.is_disposed(),
    }
}

/// Recomputes the in-memory audit chain and, with a ledger, re-reads and checks the
/// durable one (blocking: call from a blocking context).
pub fn verify_chain(engine: &Engine) -> pb::VerifyChainReply {
    let mut reply = verify_memory_chain(engine);
    reply.ledger = engine.audit_log().map(|l| l.verify());
    reply
}

fn verify_memory_chain(engine: &Engine) -> pb::VerifyChainReply {
    let (result, length, head) = engine
        .quarantine
        .with_audit(|a| (a.verify(), a.len() as u64, a.last_hash().to_hex()));
    match result {
        Ok(()) => pb::VerifyChainReply {
            ok: true,
            length,
            head_hash: head,
            ..Default::default()
        },
        Err(e) => pb::VerifyChainReply {
            ok: false,
            length,
            head_hash: head,
            first_bad_index: e.index as u64,
            error: e.to_string(),
            ledger: None,
        },
    }
}

fn health_name(h: Health) -> &'static str {
    match h {
        Health::Healthy => "healthy",
        Health::Degraded => "degraded",
        Health::Critical => "critical",
    }
}

fn license_name(s: LicenseStatus) -> &'static str {
    match s {
        LicenseStatus::None => "none",
        LicenseStatus::Valid => "valid",
        LicenseStatus::Grace => "grace",
        LicenseStatus::Expired => "expired",
    }
}

/// The core's `StateSnapshot` as JSON (v1's camelCase names).
pub fn snapshot_json(s: &StateSnapshot) -> serde_json::Value {
    let c = &s.counters;
    json!({
        "counters": {
            "clean": c.clean,
            "threats": c.threats,
            "threatsByCategory": c.threats_by_category,
            "threatsBySeverity": c.threats_by_severity,
            "evidence": c.evidence,
            "evidenceBytes": c.evidence_bytes,
            "evictions": c.evictions,
            "rateLimited": c.rate_limited,
            "blockedSources": c.blocked_sources,
            "errors": c.errors,
            "panics": c.panics,
        },
        "quarantine": {"count": s.quarantine_count, "bytes": s.quarantine_bytes,
                       "capacityPercent": s.capacity_percent},
        "rateLimit": {"activeSources": s.active_sources, "blockedNow": s.blocked_now},
        "license": {"tier": s.license.tier, "status": license_name(s.license.status),
                    "daysRemaining": s.license.days_remaining},
        "historyLength": s.history_len,
        "health": health_name(s.health),
        "timestamp": s.timestamp,
    })
}

/// The security state as JSON text with its SHA-256.
pub fn snapshot(engine: &Engine) -> pb::SnapshotReply {
    let agent = engine.agent();
    let now = agent.clock().now_ms();
    let rl = agent.rate_limiter().stats(now);
    engine
        .state
        .update_rate_limits(rl.sources as u64, rl.blocked as u64);
    let json = snapshot_json(&engine.state.snapshot(now)).to_string();
    let sha256 = hex::encode(Sha256::digest(json.as_bytes()));
    pb::SnapshotReply {
        json,
        sha256,
        taken_at_ms: now as f64,
    }
}
