//! The planner: metadata in, actions out (see the [module docs](super)).

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use super::policy::LifecyclePolicy;
use crate::codec::HEADER_SIZE;
use crate::types::{category_of, Severity};

/// One piece of evidence held in memory (metadata only).
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryItem {
    /// `"{category}:{hash}"`.
    pub signature: String,
    /// The detector's severity.
    pub severity: Severity,
    /// Capture time, ms since the epoch.
    pub captured_ms: f64,
    /// Stored bytes (what the quarantine's byte bound counts).
    pub size: u64,
}

/// One object in cold storage (metadata only).
#[derive(Debug, Clone, PartialEq)]
pub struct ColdItem {
    /// `"{category}:{hash}"`.
    pub signature: String,
    /// The severity, when known (objects written by earlier runs carry none).
    pub severity: Option<Severity>,
    /// When the object was written, ms since the epoch.
    pub stored_ms: f64,
    /// Object bytes.
    pub size: u64,
}

/// What to do with one signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    /// Move from memory to cold storage (audited evacuation).
    Evacuate,
    /// Remove from memory for good (audited neutralization).
    Neutralize,
    /// Delete from cold storage (audited deletion).
    DeleteCold,
}

/// Why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Its time in memory is over.
    MemoryTtl,
    /// The memory byte budget.
    MemoryBudget,
    /// Its time in cold storage is over.
    ColdRetention,
    /// The cold byte budget.
    ColdBudget,
}

impl Reason {
    /// A short name for logs and audit destinations (`memory-ttl`, `cold-expired`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::MemoryTtl => "memory-ttl",
            Reason::MemoryBudget => "memory-budget",
            Reason::ColdRetention => "cold-expired",
            Reason::ColdBudget => "cold-budget",
        }
    }
}

/// One planned action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// What.
    pub kind: ActionKind,
    /// On which evidence.
    pub signature: String,
    /// Why.
    pub reason: Reason,
}

/// Bytes before and after the plan (cold figures count what is about to be evacuated at
/// its [`cold_size_estimate`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanTotals {
    /// Stored bytes in memory now.
    pub memory_before: u64,
    /// Stored bytes in memory once the plan is applied.
    pub memory_after: u64,
    /// Bytes in cold storage now.
    pub cold_before: u64,
    /// Upper bound of the bytes in cold storage once the plan is applied.
    pub cold_after: u64,
}

/// The actions, in the order to apply them, and the byte totals they lead to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Memory actions first (evacuations and neutralizations), then cold deletions.
    pub actions: Vec<Action>,
    /// Before and after.
    pub totals: PlanTotals,
}

/// An upper bound of the cold object for evidence of `size` stored bytes: the envelope
/// header plus gzip of the bytes, which for incompressible data adds at most 5 bytes per
/// 16 KiB stored block and 18 bytes of framing (evidence stored compressed is kept as it
/// is, which is smaller still).
pub fn cold_size_estimate(size: u64) -> u64 {
    size.saturating_add(size / 1000)
        .saturating_add(64)
        .saturating_add(HEADER_SIZE as u64)
}

fn category(signature: &str) -> &str {
    category_of(signature).unwrap_or("")
}

/// Budget priority of a severity: unknown (a cold object written before a restart) ranks
/// above critical, so it is the last to go (fail closed).
fn rank_of(severity: Option<Severity>) -> u8 {
    severity.map_or(u8::MAX, Severity::rank)
}

/// What a cold-budget candidate is.
#[derive(Debug, Clone, Copy)]
enum What {
    /// An object already in cold storage (not being rewritten).
    Cold,
    /// Index into the evidence about to be evacuated.
    Incoming(usize),
}

/// One entry of what cold storage will hold once the plan is applied.
#[derive(Debug)]
struct Candidate<'a> {
    rank: u8,
    time: f64,
    signature: &'a str,
    bytes: u64,
    what: What,
}

/// `now - then >= ttl`, false for non-finite times.
fn expired(now_ms: f64, then_ms: f64, ttl_ms: Option<u64>) -> bool {
    match ttl_ms {
        Some(ttl) if now_ms.is_finite() && then_ms.is_finite() => now_ms - then_ms >= ttl as f64,
        _ => false,
    }
}

/// Total order of times where non-finite values sort last (never first to go by age).
fn time_order(a: f64, b: f64) -> Ordering {
    match (a.is_finite(), b.is_finite()) {
        (true, true) => a.total_cmp(&b),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => Ordering::Equal,
    }
}

/// Plans one lifecycle run. `cold` is `None` when there is no cold storage (memory
/// evidence is then neutralized rather than evacuated). Duplicate signatures in the
/// input are planned once. Never panics.
pub fn plan(
    policy: &LifecyclePolicy,
    memory: &[MemoryItem],
    cold: Option<&[ColdItem]>,
    now_ms: f64,
) -> Plan {
    let mut actions = Vec::new();
    let mut seen = HashSet::new();
    let memory: Vec<&MemoryItem> = memory
        .iter()
        .filter(|m| seen.insert(m.signature.as_str()))
        .collect();
    let mut seen = HashSet::new();
    let cold_items: Vec<&ColdItem> = cold
        .unwrap_or(&[])
        .iter()
        .filter(|c| seen.insert(c.signature.as_str()))
        .collect();
    let memory_before = memory.iter().fold(0u64, |a, m| a.saturating_add(m.size));
    let cold_before = cold_items
        .iter()
        .fold(0u64, |a, c| a.saturating_add(c.size));

    // Where evidence leaving memory goes under its rule.
    let to_cold = |m: &MemoryItem| {
        cold.is_some()
            && policy
                .retention_for(Some(m.severity), category(&m.signature))
                .cold_retention_ms
                != Some(0)
    };

    // 1. TTL in memory; 2. memory budget, lowest priority first.
    let mut leaving: Vec<(&MemoryItem, Reason)> = Vec::new();
    let mut staying: Vec<&MemoryItem> = Vec::new();
    for m in memory {
        let r = policy.retention_for(Some(m.severity), category(&m.signature));
        if expired(now_ms, m.captured_ms, r.memory_ttl_ms) {
            leaving.push((m, Reason::MemoryTtl));
        } else {
            staying.push(m);
        }
    }
    staying.sort_by(|a, b| {
        a.severity
            .rank()
            .cmp(&b.severity.rank())
            .then_with(|| time_order(a.captured_ms, b.captured_ms))
            .then_with(|| a.signature.cmp(&b.signature))
    });
    let mut memory_after = staying.iter().fold(0u64, |a, m| a.saturating_add(m.size));
    if let Some(budget) = policy.memory_max_bytes {
        let mut shed = 0;
        for m in &staying {
            if memory_after <= budget {
                break;
            }
            memory_after = memory_after.saturating_sub(m.size);
            leaving.push((*m, Reason::MemoryBudget));
            shed += 1;
        }
        staying.drain(..shed);
    }
    let mut incoming: Vec<(&MemoryItem, Reason)> = Vec::new();
    let mut neutralized: Vec<(&MemoryItem, Reason)> = Vec::new();
    for (m, why) in leaving {
        if to_cold(m) {
            incoming.push((m, why));
        } else {
            neutralized.push((m, why));
        }
    }
    // A cold object about to be rewritten by an evacuation is left alone by retention:
    // deleting it could race with the write (and the rewrite starts its retention
    // afresh). For the budget the rewrite *replaces* it: its bytes are the incoming
    // estimate, not both.
    let rewritten: HashSet<&str> = incoming.iter().map(|(m, _)| m.signature.as_str()).collect();

    // 3. Cold retention. Unknown severity fails closed (the longest retention the
    // category could have).
    let mut deletions: Vec<Action> = Vec::new();
    let mut kept: Vec<&ColdItem> = Vec::new();
    let mut replaced: HashMap<&str, &ColdItem> = HashMap::new();
    for c in cold_items {
        let cat = category_of(&c.signature).unwrap_or("");
        let keep_ms = match c.severity {
            Some(s) => policy.retention_for(Some(s), cat).cold_retention_ms,
            None => policy.cold_retention_unknown_severity(cat),
        };
        if rewritten.contains(c.signature.as_str()) {
            replaced.insert(c.signature.as_str(), c);
        } else if expired(now_ms, c.stored_ms, keep_ms) {
            deletions.push(Action {
                kind: ActionKind::DeleteCold,
                signature: c.signature.clone(),
                reason: Reason::ColdRetention,
            });
        } else {
            kept.push(c);
        }
    }

    // 4. Cold budget: one list of what cold storage will hold (kept objects and incoming
    // evidence), lowest priority first — severity (unknown ranks above critical), then
    // age — shed from the bottom until it fits. A kept object shed is deleted; incoming
    // evidence shed is neutralized instead of evacuated (and the object it would have
    // replaced, if any, deleted).
    let mut candidates: Vec<Candidate> = kept
        .iter()
        .map(|c| Candidate {
            rank: rank_of(c.severity),
            time: c.stored_ms,
            signature: c.signature.as_str(),
            bytes: c.size,
            what: What::Cold,
        })
        .chain(incoming.iter().enumerate().map(|(i, (m, _))| Candidate {
            rank: rank_of(Some(m.severity)),
            time: m.captured_ms,
            signature: m.signature.as_str(),
            bytes: cold_size_estimate(m.size),
            what: What::Incoming(i),
        }))
        .collect();
    let mut cold_after = candidates
        .iter()
        .fold(0u64, |a, c| a.saturating_add(c.bytes));
    let mut shed_incoming: HashSet<usize> = HashSet::new();
    if let Some(budget) = policy.cold_max_bytes {
        candidates.sort_by(|a, b| {
            a.rank
                .cmp(&b.rank)
                .then_with(|| time_order(a.time, b.time))
                .then_with(|| a.signature.cmp(b.signature))
        });
        for c in &candidates {
            if cold_after <= budget {
                break;
            }
            cold_after = cold_after.saturating_sub(c.bytes);
            if let What::Incoming(i) = c.what {
                shed_incoming.insert(i);
            }
            if matches!(c.what, What::Cold) || replaced.contains_key(c.signature) {
                deletions.push(Action {
                    kind: ActionKind::DeleteCold,
                    signature: c.signature.to_owned(),
                    reason: Reason::ColdBudget,
                });
            }
        }
    }
    let mut evacuated = Vec::with_capacity(incoming.len());
    for (i, (m, why)) in incoming.into_iter().enumerate() {
        if shed_incoming.contains(&i) {
            neutralized.push((m, why));
        } else {
            evacuated.push((m, why));
        }
    }
    let incoming = evacuated;
    let memory_actions = incoming
        .iter()
        .map(|(m, why)| (m, why, ActionKind::Evacuate))
        .chain(
            neutralized
                .iter()
                .map(|(m, why)| (m, why, ActionKind::Neutralize)),
        )
        .map(|(m, why, kind)| Action {
            kind,
            signature: m.signature.clone(),
            reason: *why,
        });
    actions.extend(memory_actions);
    actions.extend(deletions);
    Plan {
        actions,
        totals: PlanTotals {
            memory_before,
            memory_after,
            cold_before,
            cold_after,
        },
    }
}
