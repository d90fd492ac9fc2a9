//! Vector `agent_intercept_sequence`: ten scripted scents through an agent built like
//! v1's `createTracehound({maxPayloadSize: 64, rateLimit: {1000, 3, 2000},
//! quarantine: {maxCount: 2}})` on an injected clock.

mod vectors_support;

use std::sync::Arc;

use tracehound_core::agent::{Agent, AgentConfig, ManualClock};
use tracehound_core::canonical::{canonical_json, JsValue};
use tracehound_core::quarantine::QuarantineConfig;
use tracehound_core::rate_limit::RateLimitConfig;
use tracehound_core::types::{Scent, ThreatSignal};
use vectors_support::{arr_of, load, num_of, section, str_of, to_serde};

fn scent_from(v: &JsValue) -> Scent {
    let threat = v.get("threat").map(|t| ThreatSignal {
        category: str_of(t, "category").parse().expect("category"),
        severity: str_of(t, "severity").parse().expect("severity"),
    });
    Scent {
        id: str_of(v, "id").to_owned(),
        timestamp: num_of(v, "timestamp"),
        source: str_of(v, "source").to_owned(),
        payload: to_serde(v.get("payload").expect("payload")),
        threat,
        identity: None,
    }
}

/// Compares JSON values the way JavaScript would print them (2 and 2.0 are the same).
fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    canonical_json(a).unwrap() == canonical_json(b).unwrap()
}

#[test]
fn agent_intercept_sequence() {
    let all = load();
    let vec = section(&all, "agent_intercept_sequence");
    let cfg = vec.get("config").expect("config");
    let rl = cfg.get("rateLimit").expect("rateLimit");
    let q = cfg.get("quarantine").expect("quarantine");
    let config = AgentConfig {
        max_payload_size: num_of(cfg, "maxPayloadSize") as usize,
        rate_limit: RateLimitConfig {
            window_ms: num_of(rl, "windowMs") as u64,
            max_requests: num_of(rl, "maxRequests") as usize,
            block_duration_ms: num_of(rl, "blockDurationMs") as u64,
            ..RateLimitConfig::default()
        },
        quarantine: QuarantineConfig {
            max_count: num_of(q, "maxCount") as usize,
            max_bytes: num_of(q, "maxBytes") as usize,
        },
    };
    let clock = Arc::new(ManualClock::new(num_of(vec, "clock_start") as u64));
    let agent = Agent::new(config)
        .expect("config")
        .with_clock(clock.clone());

    let steps = arr_of(vec, "steps");
    assert_eq!(steps.len(), 10);
    for (i, step) in steps.iter().enumerate() {
        clock.set(num_of(step, "now") as u64);
        let scent = scent_from(step.get("scent").expect("scent"));
        let got = agent.intercept(&scent).to_json();
        let want = to_serde(step.get("result").expect("result"));
        assert!(
            same_json(&got, &want),
            "step {i} ({}): got {got}, want {want}",
            scent.id
        );
    }

    let stats = agent.stats();
    assert!(
        same_json(
            &stats.to_v1_json(),
            &to_serde(vec.get("agent_stats").unwrap())
        ),
        "{stats:?}"
    );
    assert_eq!(stats.panics_caught, 0);

    let qs = agent.quarantine().stats();
    let want_q = vec.get("quarantine_stats").unwrap();
    assert_eq!(qs.count as f64, num_of(want_q, "count"));
    assert_eq!(qs.bytes as f64, num_of(want_q, "bytes"));
    let sev = want_q.get("bySeverity").unwrap();
    assert_eq!(qs.by_severity.low as f64, num_of(sev, "low"));
    assert_eq!(qs.by_severity.medium as f64, num_of(sev, "medium"));
    assert_eq!(qs.by_severity.high as f64, num_of(sev, "high"));
    assert_eq!(qs.by_severity.critical as f64, num_of(sev, "critical"));

    let audit: Vec<String> = agent
        .quarantine()
        .with_audit(|a| a.iter().map(|r| r.signature.to_owned()).collect());
    let want_audit: Vec<&str> = arr_of(vec, "audit_signatures")
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(audit, want_audit);
    assert_eq!(audit.len() as f64, num_of(vec, "audit_length"));
    assert!(agent.quarantine().with_audit(|a| a.verify().is_ok()));
}
