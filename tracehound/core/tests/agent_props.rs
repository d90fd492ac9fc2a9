//! Property tests of `Agent::intercept`: any sequence of scents gives v1-consistent
//! counters, never panics, and keeps the quarantine within bounds.

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::Value;
use tracehound_core::agent::{Agent, AgentConfig, InterceptResult, ManualClock};
use tracehound_core::quarantine::QuarantineConfig;
use tracehound_core::rate_limit::RateLimitConfig;
use tracehound_core::types::{Scent, Severity, ThreatCategory, ThreatSignal};

fn payload() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<i32>().prop_map(Value::from),
        "[a-z]{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-d0-9]{1,3}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn scent() -> impl Strategy<Value = (u64, Scent)> {
    (
        0u64..50,
        0usize..4,
        payload(),
        prop::option::of((0usize..6, 0usize..4)),
    )
        .prop_map(|(dt, src, payload, threat)| {
            let threat = threat.map(|(c, s)| ThreatSignal {
                category: ThreatCategory::ALL[c],
                severity: Severity::ALL[s],
            });
            (
                dt,
                Scent {
                    id: "p".into(),
                    timestamp: dt as f64,
                    source: format!("src-{src}"),
                    payload,
                    threat,
                    identity: None,
                },
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn counters_and_bounds_hold(steps in prop::collection::vec(scent(), 1..60)) {
        let config = AgentConfig {
            max_payload_size: 120,
            rate_limit: RateLimitConfig { window_ms: 100, max_requests: 5, block_duration_ms: 200, ..Default::default() },
            quarantine: QuarantineConfig { max_count: 4, max_bytes: 300 },
        };
        let clock = Arc::new(ManualClock::new(1_000));
        let agent = Agent::new(config).unwrap().with_clock(clock.clone());
        let mut statuses = [0u64; 6];
        for (dt, s) in &steps {
            clock.advance(*dt);
            let r = agent.intercept(s);
            let i = match &r {
                InterceptResult::Clean => { prop_assert!(s.threat.is_none()); 0 }
                InterceptResult::RateLimited { retry_after_ms } => { prop_assert!(*retry_after_ms <= 200); 1 }
                InterceptResult::PayloadTooLarge { limit } => { prop_assert_eq!(*limit, 120); 2 }
                InterceptResult::Ignored { signature } => {
                    prop_assert!(signature.starts_with(s.threat.unwrap().category.as_str()));
                    3
                }
                InterceptResult::Quarantined { handle } => {
                    prop_assert_eq!(handle.severity(), s.threat.unwrap().severity);
                    4
                }
                InterceptResult::Error { error } => {
                    return Err(TestCaseError::fail(format!("unexpected error {error}")));
                }
            };
            statuses[i] += 1;
            let q = agent.quarantine().stats();
            prop_assert!(q.count <= 4 && q.bytes <= 300, "{:?}", q);
        }
        let st = agent.stats();
        prop_assert_eq!(st.total_intercepts, steps.len() as u64);
        prop_assert_eq!(
            [st.clean_count, st.rate_limited_count, st.validation_failures, st.ignored_count, st.quarantined_count, st.error_count],
            [statuses[0], statuses[1], statuses[2], statuses[3], statuses[4], 0]
        );
        prop_assert!(agent.quarantine().with_audit(|c| c.verify().is_ok()));
    }
}
