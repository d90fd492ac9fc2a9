//! `tracehound demo`: an embedded scenario through the real core, on a scripted clock so
//! every run prints the same results (record ids and hashes aside).

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use tracehound_core::agent::{
    Agent, AgentConfig, Clock, InterceptResult, ManualClock, RuntimeHooks,
};
use tracehound_core::audit::AuditChain;
use tracehound_core::notify::{EventType, NotificationEmitter, NotifyConfig};
use tracehound_core::quarantine::QuarantineConfig;
use tracehound_core::rate_limit::RateLimitConfig;
use tracehound_core::state::{SecurityState, SecurityStateConfig};
use tracehound_core::types::{Scent, Severity, ThreatCategory, ThreatSignal};

const START_MS: u64 = 1_700_000_000_000;

struct Step {
    at_ms: u64,
    source: &'static str,
    payload: Value,
    threat: Option<(ThreatCategory, Severity)>,
}

fn step(
    at_ms: u64,
    source: &'static str,
    payload: Value,
    threat: Option<(ThreatCategory, Severity)>,
) -> Step {
    Step {
        at_ms,
        source,
        payload,
        threat,
    }
}

fn scenario() -> Vec<Step> {
    use Severity::*;
    use ThreatCategory::*;
    let sqli = json!({"path": "/login", "query": {"q": "' OR 1=1--"}});
    let mut steps = vec![
        step(0, "web-1", json!({"path": "/", "method": "GET"}), None),
        step(1, "web-1", sqli.clone(), Some((Injection, High))),
        // Same category and content from elsewhere, other severity: a duplicate.
        step(2, "web-2", sqli.clone(), Some((Injection, Low))),
        // Same content, other category: a new threat.
        step(3, "web-2", sqli, Some((Spam, Low))),
        step(
            4,
            "web-3",
            json!({"upload": "x.exe", "sha": "44d88612fea8a8f36de82e1278abb02f"}),
            Some((Malware, Medium)),
        ),
        // Quarantine full (3): the low-severity spam goes first.
        step(
            5,
            "web-3",
            json!({"flood": [1, 2, 3]}),
            Some((Ddos, Critical)),
        ),
        // A new low-severity threat is itself the lowest and oldest-ranked: evicted at once.
        step(6, "web-4", json!({"burst": "y"}), Some((Flood, Low))),
        step(
            7,
            "web-4",
            json!({"blob": "z".repeat(200)}),
            Some((Unknown, Medium)),
        ),
    ];
    // A burst from one source: 5 pass per window, the 6th is rate limited and blocked.
    for i in 0..7 {
        steps.push(step(10 + i, "burst", json!({"n": i}), None));
    }
    // After the block expires the source is served again.
    steps.push(step(2_100, "burst", json!({"n": "late"}), None));
    steps
}

fn describe(r: &InterceptResult) -> String {
    match r {
        InterceptResult::Clean => "clean".into(),
        InterceptResult::RateLimited { retry_after_ms } => {
            format!("rate_limited (retry after {retry_after_ms} ms)")
        }
        InterceptResult::PayloadTooLarge { limit } => {
            format!("payload_too_large (limit {limit} B)")
        }
        InterceptResult::Ignored { signature } => format!("ignored (duplicate of {signature})"),
        InterceptResult::Quarantined { handle } => format!(
            "quarantined {} ({} B, {}){}",
            handle.signature(),
            handle.size(),
            handle.severity(),
            if handle.is_disposed() {
                " - evicted at once"
            } else {
                ""
            }
        ),
        InterceptResult::Error { error } => format!("error {}: {}", error.code(), error.message()),
    }
}

/// Runs the scenario and writes the report to `out`.
pub fn run(out: &mut impl Write) -> Result<()> {
    let config = AgentConfig {
        max_payload_size: 128,
        rate_limit: RateLimitConfig {
            window_ms: 1_000,
            max_requests: 5,
            block_duration_ms: 2_000,
            ..Default::default()
        },
        quarantine: QuarantineConfig {
            max_count: 3,
            max_bytes: 1_000_000,
        },
    };
    let clock = Arc::new(ManualClock::new(START_MS));
    let state = Arc::new(SecurityState::new(SecurityStateConfig::default()));
    let notes = Arc::new(NotificationEmitter::new(NotifyConfig::default()));
    let events = notes
        .subscribe(&EventType::ALL)
        .context("subscribing to notifications")?;
    let hooks = RuntimeHooks {
        state: Some(Arc::clone(&state)),
        notifications: Some(Arc::clone(&notes)),
        quarantine_max_bytes: config.quarantine.max_bytes as u64,
        ..Default::default()
    };
    let agent = Agent::new(config)?
        .with_clock(clock.clone())
        .with_observer(Arc::new(hooks));

    writeln!(
        out,
        "tracehound demo: payload limit {} B, rate limit {} per {} ms (block {} ms), quarantine {} items\n",
        config.max_payload_size,
        config.rate_limit.max_requests,
        config.rate_limit.window_ms,
        config.rate_limit.block_duration_ms,
        config.quarantine.max_count
    )?;
    for (i, s) in scenario().into_iter().enumerate() {
        clock.set(START_MS + s.at_ms);
        let scent = Scent {
            id: format!("s{}", i + 1),
            timestamp: (START_MS + s.at_ms) as f64,
            source: s.source.to_owned(),
            payload: s.payload,
            threat: s
                .threat
                .map(|(category, severity)| ThreatSignal { category, severity }),
            identity: None,
        };
        let threat = scent.threat.map_or_else(
            || "-".to_owned(),
            |t| format!("{}/{}", t.category, t.severity),
        );
        let result = agent.intercept(&scent);
        writeln!(
            out,
            "{:>3}  +{:<7} {:<4} {:<6} {:<16} {}",
            i + 1,
            format!("{}ms", s.at_ms),
            scent.id,
            scent.source,
            threat,
            describe(&result)
        )?;
    }

    let stats = agent.stats();
    writeln!(out, "\nagent stats: {}", stats.to_v1_json())?;
    let q = agent.quarantine().stats();
    writeln!(
        out,
        "quarantine: {} items, {} bytes (low {}, medium {}, high {}, critical {})",
        q.count,
        q.bytes,
        q.by_severity.low,
        q.by_severity.medium,
        q.by_severity.high,
        q.by_severity.critical
    )?;
    let snap = state.snapshot(clock.now_ms());
    writeln!(
        out,
        "security state: {} threats, {} evidence, {} evictions, {} rate limited",
        snap.counters.threats,
        snap.counters.evidence,
        snap.counters.evictions,
        snap.counters.rate_limited
    )?;
    let kinds: Vec<&str> = events
        .drain(usize::MAX)
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    writeln!(out, "notifications: {} ({})", kinds.len(), kinds.join(", "))?;

    let (export, verified) = agent
        .quarantine()
        .with_audit(|c| (c.export_json(), c.verify()));
    let len = agent.quarantine().with_audit(|c| c.len());
    match verified {
        Ok(()) => writeln!(out, "\naudit chain: {len} records (evictions), verify: ok")?,
        Err(e) => writeln!(out, "\naudit chain: {len} records, verify: FAILED ({e})")?,
    }
    let imported = AuditChain::import_json(&export).context("re-importing the exported chain")?;
    let reimport = if imported.verify().is_ok() {
        "ok"
    } else {
        "FAILED"
    };
    writeln!(out, "export -> import -> verify: {reimport}")?;
    // Change one timestamp in the export: verification must name that record.
    let mut records: Value = serde_json::from_str(&export).context("reading the export")?;
    if let Some(ts) = records.get_mut(0).and_then(|r| r.get_mut("timestamp")) {
        *ts = json!(ts.as_f64().unwrap_or(0.0) + 1.0);
    }
    let tampered =
        AuditChain::import_json(&records.to_string()).context("importing the tampered chain")?;
    match tampered.verify() {
        Ok(()) if len == 0 => writeln!(out, "tamper check: skipped (empty chain)")?,
        Ok(()) => writeln!(out, "tamper check: NOT detected")?,
        Err(e) => writeln!(
            out,
            "tamper check (record 0 timestamp + 1): detected at record {}",
            e.index
        )?,
    }
    Ok(())
}
