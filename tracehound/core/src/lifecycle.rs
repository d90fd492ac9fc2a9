//! Evidence lifecycle policy: how long evidence stays in memory and in cold storage, by
//! severity and category, and byte budgets for both — as data and a pure planner.
//!
//! No I/O, no clock, no parsing of files: a caller (the daemon's scheduler task) hands
//! [`plan`] the quarantine's metadata, the cold store's listing, the [`LifecyclePolicy`]
//! and the current time, and applies the [`Action`]s it returns, in order:
//!
//! 1. **TTL in memory** — evidence older than its `memory_ttl_ms` is evacuated to cold
//!    storage, or neutralized when there is no cold storage (or its rule keeps nothing in
//!    cold: `cold_retention_ms = 0`).
//! 2. **Memory budget** — while the evidence left in memory exceeds `memory_max_bytes`,
//!    the lowest-priority evidence (the quarantine's eviction order: lowest severity,
//!    then oldest) leaves the same way.
//! 3. **Cold retention** — cold objects older than their `cold_retention_ms` are deleted.
//!    An object whose severity is unknown (written before a restart) fails closed: it
//!    gets the longest retention any rule that could match its category (or the
//!    default) gives.
//! 4. **Cold budget** — what cold storage will hold (objects that stay, plus an upper
//!    bound of the envelopes about to be written, [`cold_size_estimate`]; an object about
//!    to be rewritten counts once, as its replacement) is one list ordered by severity
//!    (unknown above critical), then age; while it exceeds `cold_max_bytes`, the lowest
//!    entry goes: a stored object is deleted, evidence on its way is neutralized instead
//!    of evacuated (and the object it would have replaced deleted).
//!
//! Age is measured from the evidence's capture time in memory and from the object's
//! write time in cold storage. Times that are not finite never expire anything (the
//! budgets still apply).

mod plan;
mod policy;

pub use plan::{
    cold_size_estimate, plan, Action, ActionKind, ColdItem, MemoryItem, Plan, PlanTotals, Reason,
};
pub use policy::{LifecyclePolicy, PolicyError, Retention, Rule};

#[cfg(test)]
mod tests;
