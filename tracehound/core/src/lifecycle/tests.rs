use std::collections::HashSet;

use proptest::prelude::*;

use super::*;
use crate::types::{Severity, ThreatCategory};

const H: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

fn sig(category: &str, n: u64) -> String {
    format!("{category}:{:0>64}", format!("{n:x}"))
}

fn mem(category: &str, n: u64, severity: Severity, captured_ms: f64, size: u64) -> MemoryItem {
    MemoryItem {
        signature: sig(category, n),
        severity,
        captured_ms,
        size,
    }
}

fn cold(category: &str, n: u64, stored_ms: f64, size: u64) -> ColdItem {
    ColdItem {
        signature: sig(category, n),
        severity: None,
        stored_ms,
        size,
    }
}

fn kinds(plan: &Plan) -> Vec<(ActionKind, String, Reason)> {
    plan.actions
        .iter()
        .map(|a| (a.kind, a.signature.clone(), a.reason))
        .collect()
}

#[test]
fn parses_and_rejects_unknown_names() {
    // The daemon reads TOML; the shape is the same through any serde format.
    let p: LifecyclePolicy = serde_json::from_str(
        r#"{"memory_max_bytes": 100, "default": {"memory_ttl_ms": 10},
            "rules": [{"severity": "critical", "cold_retention_ms": 5}]}"#,
    )
    .unwrap();
    assert_eq!(p.default.memory_ttl_ms, Some(10));
    assert_eq!(p.rules[0].severity, Some(Severity::Critical));
    assert!(p.validate().is_ok());
    for bad in [
        r#"{"rules": [{"severity": "urgent", "memory_ttl_ms": 1}]}"#,
        r#"{"rules": [{"category": "phishing", "memory_ttl_ms": 1}]}"#,
        r#"{"default": {"ttl": 1}}"#,
        r#"{"budget": 1}"#,
    ] {
        assert!(
            serde_json::from_str::<LifecyclePolicy>(bad).is_err(),
            "{bad}"
        );
    }
    let empty_rule: LifecyclePolicy =
        serde_json::from_str(r#"{"rules": [{"memory_ttl_ms": 1}]}"#).unwrap();
    assert_eq!(empty_rule.validate().unwrap_err().field, "rules[0]");
}

#[test]
fn first_matching_rule_wins_and_falls_back_to_default() {
    let p = LifecyclePolicy {
        default: Retention {
            memory_ttl_ms: Some(100),
            cold_retention_ms: Some(1000),
        },
        rules: vec![
            Rule {
                severity: Some(Severity::Critical),
                category: Some(ThreatCategory::Injection),
                memory_ttl_ms: Some(5),
                ..Rule::default()
            },
            Rule {
                category: Some(ThreatCategory::Injection),
                cold_retention_ms: Some(7),
                ..Rule::default()
            },
        ],
        ..LifecyclePolicy::default()
    };
    let r = p.retention_for(Some(Severity::Critical), "injection");
    assert_eq!(
        (r.memory_ttl_ms, r.cold_retention_ms),
        (Some(5), Some(1000))
    );
    let r = p.retention_for(Some(Severity::Low), "injection");
    assert_eq!((r.memory_ttl_ms, r.cold_retention_ms), (Some(100), Some(7)));
    // Unknown severity (a cold object of an earlier run) skips severity rules.
    let r = p.retention_for(None, "injection");
    assert_eq!(r.cold_retention_ms, Some(7));
    assert_eq!(p.retention_for(None, "spam"), p.default);
}

#[test]
fn ttl_evacuates_with_cold_and_neutralizes_without() {
    let p = LifecyclePolicy {
        default: Retention {
            memory_ttl_ms: Some(100),
            cold_retention_ms: None,
        },
        ..LifecyclePolicy::default()
    };
    let memory = [
        mem("spam", 1, Severity::Low, 0.0, 10),
        mem("spam", 2, Severity::Low, 950.0, 10),
    ];
    let with_cold = plan(&p, &memory, Some(&[]), 1000.0);
    assert_eq!(
        kinds(&with_cold),
        vec![(ActionKind::Evacuate, sig("spam", 1), Reason::MemoryTtl)]
    );
    let without = plan(&p, &memory, None, 1000.0);
    assert_eq!(
        kinds(&without),
        vec![(ActionKind::Neutralize, sig("spam", 1), Reason::MemoryTtl)]
    );
    // Exactly at the TTL counts as reached.
    assert_eq!(plan(&p, &memory, None, 100.0).actions.len(), 1);
    // Non-finite times never expire.
    let odd = [mem("spam", 3, Severity::Low, f64::NAN, 1)];
    assert!(plan(&p, &odd, None, 1e12).actions.is_empty());
    assert!(plan(&p, &memory, None, f64::INFINITY).actions.is_empty());
}

#[test]
fn zero_cold_retention_neutralizes_instead_of_evacuating() {
    let p = LifecyclePolicy {
        default: Retention {
            memory_ttl_ms: Some(1),
            cold_retention_ms: Some(0),
        },
        ..LifecyclePolicy::default()
    };
    let out = plan(
        &p,
        &[mem("ddos", 1, Severity::High, 0.0, 5)],
        Some(&[]),
        10.0,
    );
    assert_eq!(out.actions[0].kind, ActionKind::Neutralize);
}

#[test]
fn cold_retention_deletes_expired_objects() {
    let p = LifecyclePolicy {
        default: Retention {
            memory_ttl_ms: None,
            cold_retention_ms: Some(50),
        },
        ..LifecyclePolicy::default()
    };
    let objects = [cold("spam", 1, 0.0, 100), cold("spam", 2, 60.0, 100)];
    let out = plan(&p, &[], Some(&objects), 100.0);
    assert_eq!(
        kinds(&out),
        vec![(
            ActionKind::DeleteCold,
            sig("spam", 1),
            Reason::ColdRetention
        )]
    );
    assert_eq!(out.totals.cold_before, 200);
    assert_eq!(out.totals.cold_after, 100);
}

#[test]
fn memory_budget_sheds_lowest_priority_first() {
    let p = LifecyclePolicy {
        memory_max_bytes: Some(25),
        ..LifecyclePolicy::default()
    };
    let memory = [
        mem("spam", 1, Severity::Critical, 0.0, 10),
        mem("spam", 2, Severity::Low, 5.0, 10),
        mem("spam", 3, Severity::Low, 1.0, 10),
    ];
    let out = plan(&p, &memory, Some(&[]), 10.0);
    assert_eq!(
        kinds(&out),
        vec![(ActionKind::Evacuate, sig("spam", 3), Reason::MemoryBudget)]
    );
    assert_eq!(out.totals.memory_after, 20);
}

#[test]
fn cold_budget_deletes_oldest_then_neutralizes_what_cannot_fit() {
    let p = LifecyclePolicy {
        cold_max_bytes: Some(1000),
        memory_max_bytes: Some(0),
        ..LifecyclePolicy::default()
    };
    let low = |n, t| ColdItem {
        severity: Some(Severity::Low),
        ..cold("spam", n, t, 400)
    };
    let objects = [low(1, 5.0), low(2, 1.0)];
    let memory = [mem("flood", 9, Severity::Medium, 0.0, 300)];
    let out = plan(&p, &memory, Some(&objects), 10.0);
    // 800 + estimate(300) > 1000: the oldest low object (spam 2) goes, the medium
    // evidence fits.
    assert_eq!(
        kinds(&out),
        vec![
            (ActionKind::Evacuate, sig("flood", 9), Reason::MemoryBudget),
            (ActionKind::DeleteCold, sig("spam", 2), Reason::ColdBudget),
        ]
    );
    assert!(out.totals.cold_after <= 1000);
    // Evidence bigger than the whole cold budget is neutralized.
    let big = [mem("flood", 8, Severity::Low, 0.0, 5000)];
    let out = plan(&p, &big, Some(&[]), 10.0);
    assert_eq!(out.actions[0].kind, ActionKind::Neutralize);
}

#[test]
fn cold_budget_keeps_critical_objects_over_incoming_low_evidence() {
    let p = LifecyclePolicy {
        cold_max_bytes: Some(1000),
        memory_max_bytes: Some(0),
        ..LifecyclePolicy::default()
    };
    let objects = [
        ColdItem {
            severity: Some(Severity::Critical),
            ..cold("injection", 1, 0.0, 400)
        },
        // Unknown severity (written before a restart): ranks above critical.
        cold("injection", 2, 0.0, 400),
    ];
    let memory = [mem("spam", 9, Severity::Low, 5.0, 300)];
    let out = plan(&p, &memory, Some(&objects), 10.0);
    assert_eq!(
        kinds(&out),
        vec![(ActionKind::Neutralize, sig("spam", 9), Reason::MemoryBudget)]
    );
    assert_eq!(out.totals.cold_after, 800);
}

#[test]
fn unknown_severity_gets_the_longest_retention_its_category_could_have() {
    let p = LifecyclePolicy {
        default: Retention {
            memory_ttl_ms: None,
            cold_retention_ms: Some(10),
        },
        rules: vec![Rule {
            severity: Some(Severity::Critical),
            category: Some(ThreatCategory::Injection),
            memory_ttl_ms: None,
            cold_retention_ms: Some(1000),
        }],
        ..LifecyclePolicy::default()
    };
    assert_eq!(p.cold_retention_unknown_severity("injection"), Some(1000));
    assert_eq!(p.cold_retention_unknown_severity("spam"), Some(10));
    let objects = [cold("injection", 1, 0.0, 5), cold("spam", 2, 0.0, 5)];
    let out = plan(&p, &[], Some(&objects), 500.0);
    // Only the spam object (no rule could keep it longer) expires.
    assert_eq!(
        kinds(&out),
        vec![(
            ActionKind::DeleteCold,
            sig("spam", 2),
            Reason::ColdRetention
        )]
    );
    // A rule that keeps some severity forever keeps unknown ones forever (rule fields
    // left out come from the default, so the default keeps forever here).
    let forever = LifecyclePolicy {
        default: Retention::default(),
        rules: vec![Rule {
            severity: Some(Severity::Low),
            category: None,
            memory_ttl_ms: None,
            cold_retention_ms: Some(1),
        }],
        ..p.clone()
    };
    assert_eq!(forever.cold_retention_unknown_severity("spam"), None);
    assert!(plan(&forever, &[], Some(&objects), 1e12).actions.is_empty());
}

#[test]
fn a_rewritten_object_counts_once_in_the_cold_budget() {
    let p = LifecyclePolicy {
        default: Retention {
            memory_ttl_ms: Some(1),
            cold_retention_ms: None,
        },
        cold_max_bytes: Some(cold_size_estimate(300)),
        ..LifecyclePolicy::default()
    };
    let s = sig("spam", 1);
    let memory = [mem("spam", 1, Severity::Low, 0.0, 300)];
    let objects = [ColdItem {
        severity: Some(Severity::Low),
        ..cold("spam", 1, 0.0, 300)
    }];
    let out = plan(&p, &memory, Some(&objects), 10.0);
    assert_eq!(
        kinds(&out),
        vec![(ActionKind::Evacuate, s, Reason::MemoryTtl)]
    );
    assert_eq!(out.totals.cold_after, cold_size_estimate(300));
}

#[test]
fn an_object_being_rewritten_is_not_deleted() {
    let p = LifecyclePolicy {
        default: Retention {
            memory_ttl_ms: Some(1),
            cold_retention_ms: Some(1),
        },
        ..LifecyclePolicy::default()
    };
    let s = format!("spam:{H}");
    let memory = [MemoryItem {
        signature: s.clone(),
        severity: Severity::Low,
        captured_ms: 0.0,
        size: 3,
    }];
    let objects = [ColdItem {
        signature: s.clone(),
        severity: None,
        stored_ms: 0.0,
        size: 90,
    }];
    let out = plan(&p, &memory, Some(&objects), 10.0);
    assert_eq!(
        kinds(&out),
        vec![(ActionKind::Evacuate, s, Reason::MemoryTtl)]
    );
}

fn severity() -> impl Strategy<Value = Severity> {
    prop::sample::select(Severity::ALL.to_vec())
}

fn time() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => 0.0..2000.0f64,
        1 => Just(f64::NAN),
        1 => Just(f64::NEG_INFINITY),
    ]
}

fn category_name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["spam", "injection", "ddos"])
}

prop_compose! {
    fn memory_item()(c in category_name(), n in 0u64..40, s in severity(), t in time(), size in 0u64..500)
        -> MemoryItem { mem(c, n, s, t, size) }
}

prop_compose! {
    fn cold_item()(c in category_name(), n in 0u64..40, s in prop::option::of(severity()),
                   t in time(), size in 0u64..700) -> ColdItem {
        ColdItem { severity: s, ..cold(c, n, t, size) }
    }
}

prop_compose! {
    fn policy()(ttl in prop::option::of(0u64..1500), keep in prop::option::of(0u64..1500),
                rule_ttl in prop::option::of(0u64..1500), rule_sev in prop::option::of(severity()),
                mem_budget in prop::option::of(0u64..3000), cold_budget in prop::option::of(0u64..5000))
        -> LifecyclePolicy {
        LifecyclePolicy {
            default: Retention { memory_ttl_ms: ttl, cold_retention_ms: keep },
            rules: vec![Rule {
                severity: rule_sev.or(Some(Severity::Critical)),
                category: None,
                memory_ttl_ms: rule_ttl,
                cold_retention_ms: Some(0).filter(|_| rule_ttl.is_none()),
            }],
            memory_max_bytes: mem_budget,
            cold_max_bytes: cold_budget,
        }
    }
}

proptest! {
    /// Applying the plan never leaves memory or cold storage over budget (cold counted
    /// with the estimate for incoming evidence), touches each signature once per store,
    /// and only names signatures it was given.
    #[test]
    fn plans_respect_budgets(
        p in policy(),
        memory in prop::collection::vec(memory_item(), 0..40),
        objects in prop::option::of(prop::collection::vec(cold_item(), 0..40)),
        now in prop_oneof![0.0..3000.0f64, Just(f64::NAN)],
    ) {
        let out = plan(&p, &memory, objects.as_deref(), now);
        let mut seen_mem = HashSet::new();
        let mut seen_cold = HashSet::new();
        let mut mem_by_sig = std::collections::HashMap::new();
        for m in &memory { mem_by_sig.entry(m.signature.clone()).or_insert(m.size); }
        let mut cold_by_sig = std::collections::HashMap::new();
        for c in objects.iter().flatten() { cold_by_sig.entry(c.signature.clone()).or_insert(c.size); }
        let mut memory_left: u64 = mem_by_sig.values().sum();
        let mut cold_left: u64 = cold_by_sig.values().sum();
        for a in &out.actions {
            match a.kind {
                ActionKind::Evacuate | ActionKind::Neutralize => {
                    prop_assert!(seen_mem.insert(a.signature.clone()));
                    let size = mem_by_sig[&a.signature];
                    memory_left -= size;
                    if a.kind == ActionKind::Evacuate {
                        prop_assert!(objects.is_some());
                        // Overwriting an object replaces it.
                        if let Some(old) = cold_by_sig.remove(&a.signature) {
                            cold_left -= old;
                        }
                        cold_left += cold_size_estimate(size);
                    }
                }
                ActionKind::DeleteCold => {
                    prop_assert!(seen_cold.insert(a.signature.clone()));
                    // Never an object this plan rewrites (its evacuation comes first).
                    prop_assert!(cold_by_sig.contains_key(&a.signature));
                    cold_left -= cold_by_sig.remove(&a.signature).unwrap_or(0);
                }
            }
        }
        prop_assert_eq!(memory_left, out.totals.memory_after);
        prop_assert_eq!(cold_left, out.totals.cold_after);
        if let Some(b) = p.memory_max_bytes { prop_assert!(memory_left <= b); }
        if let (Some(b), Some(_)) = (p.cold_max_bytes, &objects) { prop_assert!(cold_left <= b); }
    }

    /// The cold budget sheds by priority: no object or incoming evidence of a higher
    /// severity (unknown counts highest) is removed for the budget while one of a lower
    /// severity stays or arrives.
    #[test]
    fn cold_budget_sheds_lowest_severity_first(
        memory in prop::collection::vec(memory_item(), 0..30),
        objects in prop::collection::vec(cold_item(), 0..30),
        budget in 0u64..6000,
    ) {
        let p = LifecyclePolicy {
            memory_max_bytes: Some(0),
            cold_max_bytes: Some(budget),
            ..LifecyclePolicy::default()
        };
        let out = plan(&p, &memory, Some(&objects), 100.0);
        let rank = |s: Option<Severity>| s.map_or(u8::MAX, Severity::rank);
        let mut sev = std::collections::HashMap::new();
        for c in &objects { sev.entry(c.signature.clone()).or_insert(rank(c.severity)); }
        // Evidence on its way (evacuated, or shed instead) replaces an object's entry;
        // evidence the plan leaves in memory is not a cold-storage candidate at all.
        let leaving: HashSet<&str> = out
            .actions
            .iter()
            .filter(|a| matches!(a.kind, ActionKind::Evacuate | ActionKind::Neutralize))
            .map(|a| a.signature.as_str())
            .collect();
        let mut first_mem = HashSet::new();
        for m in memory
            .iter()
            .filter(|m| leaving.contains(m.signature.as_str()))
            .filter(|m| first_mem.insert(m.signature.clone()))
        {
            sev.insert(m.signature.clone(), rank(Some(m.severity)));
        }
        let mut removed = HashSet::new();
        for a in &out.actions {
            if a.kind == ActionKind::Neutralize || a.reason == Reason::ColdBudget {
                removed.insert(a.signature.clone());
            }
        }
        let highest_removed = removed.iter().map(|s| sev[s]).max();
        let lowest_kept = sev.iter().filter(|(s, _)| !removed.contains(*s)).map(|(_, r)| *r).min();
        if let (Some(h), Some(l)) = (highest_removed, lowest_kept) {
            prop_assert!(h <= l, "removed rank {} while rank {} stays", h, l);
        }
    }
}
