//! The snapshot export depends on the state only: inserting the same evidence into a
//! quarantine in any order gives the same bytes, and a different set gives another hash.

use proptest::prelude::*;
use serde_json::json;
use tracehound_core::evidence::{Evidence, EvidenceFactory};
use tracehound_core::quarantine::{Quarantine, QuarantineConfig};
use tracehound_core::snapshot_export::{export, quarantine_state, verify, SnapshotState};
use tracehound_core::types::{Severity, ThreatCategory, ThreatSignal};

fn evidence(n: u32, severity: Severity, captured: f64) -> Evidence {
    let threat = ThreatSignal {
        category: ThreatCategory::ALL[n as usize % ThreatCategory::ALL.len()],
        severity,
    };
    EvidenceFactory::new()
        .create_from(&json!({ "n": n }), threat, captured, 1 << 20)
        .unwrap()
}

/// The quarantine after inserting `items` in `order`, exported.
fn exported(items: &[(u32, Severity, f64)], order: &[usize]) -> Vec<u8> {
    let q = Quarantine::new(QuarantineConfig::default());
    for &i in order {
        let (n, sev, at) = items[i];
        q.insert(evidence(n, sev, at), 0.0);
    }
    let (evidence, audit) = quarantine_state(&q);
    let state = SnapshotState {
        evidence,
        audit,
        ledger: None,
        settings: json!({"quarantine": {"max_count": 10000}}),
    };
    export(&state).unwrap().bytes
}

fn items() -> impl Strategy<Value = Vec<(u32, Severity, f64)>> {
    prop::collection::btree_map(
        0u32..10_000,
        (
            prop::sample::select(Severity::ALL.to_vec()),
            0u32..1_000_000,
        ),
        1..40,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(|(n, (sev, at))| (n, sev, f64::from(at) * 1.5))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn export_is_independent_of_insertion_order(
        (items, order) in items().prop_flat_map(|items| {
            let n = items.len();
            (Just(items), Just((0..n).collect::<Vec<_>>()).prop_shuffle())
        })
    ) {
        let forward: Vec<usize> = (0..items.len()).collect();
        let a = exported(&items, &forward);
        let b = exported(&items, &order);
        prop_assert_eq!(&a, &b);
        prop_assert!(verify(&a).is_ok());
    }

    #[test]
    fn a_different_set_changes_the_bytes(items in items(), drop in any::<prop::sample::Index>()) {
        let all: Vec<usize> = (0..items.len()).collect();
        let skip = drop.index(items.len());
        let fewer: Vec<usize> = all.iter().copied().filter(|&i| i != skip).collect();
        prop_assert_ne!(exported(&items, &all), exported(&items, &fewer));
    }
}
