//! The lifecycle scheduler task: every `[lifecycle] interval_ms` it plans with
//! tracehound-core's [`plan`] over the quarantine's metadata and the cold store's listing,
//! then applies the plan. Every removal is audited: evacuations and neutralizations by the
//! core, deletions from cold storage by [`ColdWiring::delete_audited`] (destination
//! `cold-expired` or `cold-budget`).
//!
//! Runs are serialised (the periodic task and the `RunLifecycle` method share a lock), so
//! two runs never plan over the same state. Each run is its own spawned task, which
//! callers only await: cancelling a caller never cuts a run short; at shutdown [`drain`]
//! stops runs between actions and waits for the one in progress (bounded).
//!
//! [`ColdWiring::delete_audited`]: crate::cold_wiring::ColdWiring::delete_audited

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracehound_cold::EvacuateError;
use tracehound_core::lifecycle::{plan, ActionKind, MemoryItem, PlanTotals};
use tracehound_rpc::pb;

use crate::cold_rpc::nudge_ledger;
use crate::cold_wiring::Listed;
use crate::engine::Engine;

/// How often the task looks again when `[lifecycle]` is absent (a reload may add it).
const IDLE_RECHECK: Duration = Duration::from_secs(1);

/// Counters of every run since start, and the lock that serialises runs.
#[derive(Debug, Default)]
pub struct LifecycleState {
    run_lock: tokio::sync::Mutex<()>,
    /// Set at shutdown: no new run starts, a run in progress stops between actions.
    closing: std::sync::atomic::AtomicBool,
    runs: AtomicU64,
    evacuated: AtomicU64,
    neutralized: AtomicU64,
    deleted_from_cold: AtomicU64,
    deleted_bytes: AtomicU64,
    deferred: AtomicU64,
    failures: AtomicU64,
    orphan_keys_destroyed: AtomicU64,
    last_run_ms: AtomicU64,
    last_error: Mutex<String>,
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Evidence moved to cold storage.
    pub evacuated: u64,
    /// Evidence neutralized in memory.
    pub neutralized: u64,
    /// Objects deleted from cold storage, and their bytes.
    pub deleted_from_cold: u64,
    /// Bytes those objects took.
    pub deleted_bytes: u64,
    /// Planned evacuations left for the next run (queue full).
    pub deferred: u64,
    /// Actions that failed (store errors), with the first reason.
    pub failures: u64,
    /// The first failure.
    pub error: String,
    /// Orphan vault keys destroyed after the cold pass (`[erasure]` and `[cold]`).
    pub orphan_keys_destroyed: u64,
    /// Bytes before and after, as planned.
    pub totals: PlanTotals,
}

impl LifecycleState {
    /// The counters for `Stats`.
    pub fn stats(&self) -> pb::LifecycleStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        pb::LifecycleStats {
            runs: get(&self.runs),
            evacuated: get(&self.evacuated),
            neutralized: get(&self.neutralized),
            deleted_from_cold: get(&self.deleted_from_cold),
            deleted_bytes: get(&self.deleted_bytes),
            deferred: get(&self.deferred),
            failures: get(&self.failures),
            last_run_ms: get(&self.last_run_ms),
            last_error: self.last_error.lock().clone(),
            orphan_keys_destroyed: get(&self.orphan_keys_destroyed),
        }
    }

    fn count(&self, r: &RunReport, now_ms: u64) {
        let add = |c: &AtomicU64, n: u64| c.fetch_add(n, Ordering::Relaxed);
        add(&self.runs, 1);
        add(&self.evacuated, r.evacuated);
        add(&self.neutralized, r.neutralized);
        add(&self.deleted_from_cold, r.deleted_from_cold);
        add(&self.deleted_bytes, r.deleted_bytes);
        add(&self.deferred, r.deferred);
        add(&self.failures, r.failures);
        add(&self.orphan_keys_destroyed, r.orphan_keys_destroyed);
        self.last_run_ms.store(now_ms, Ordering::Relaxed);
        if !r.error.is_empty() {
            *self.last_error.lock() = r.error.clone();
        }
    }
}

/// Why a run did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// Cold storage could not be listed (planning without it would neutralize what
    /// should be evacuated, so the run is skipped).
    #[error("cannot list cold storage: {0}")]
    ListCold(#[source] tracehound_cold::ColdError),
    /// The daemon is shutting down.
    #[error("the daemon is shutting down")]
    ShuttingDown,
    /// The run's task ended abnormally.
    #[error("lifecycle run failed: {0}")]
    Task(String),
}

/// Longest [`drain`] waits for a run in progress at shutdown.
pub const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// Plans and applies the policy in force once. `Ok(None)` when `[lifecycle]` is not
/// configured. With `wait`, returns only once the evacuations it queued are written (at
/// most the evacuation RPC's wait limit, 30 s, without holding the run lock).
///
/// The run itself is a spawned task that the caller only awaits: a client that goes away
/// (or a periodic task aborted at shutdown) cannot cancel it between an audit record and
/// the deletion it records; shutdown waits for it with [`drain`].
pub async fn run_once(
    engine: &Arc<Engine>,
    wait: bool,
) -> Result<Option<RunReport>, LifecycleError> {
    let run = tokio::spawn(run_serial(Arc::clone(engine)));
    let report = run
        .await
        .map_err(|e| LifecycleError::Task(e.to_string()))??;
    if let (true, Some(_), Some(cold)) = (wait, &report, engine.cold()) {
        if !cold.wait_queued(crate::cold_rpc::WAIT_LIMIT).await {
            tracing::warn!("lifecycle run: evacuations still being written; answering anyway");
        }
    }
    Ok(report)
}

/// Stops new runs and waits (at most [`DRAIN_GRACE`]) for one in progress to finish, so
/// its audit records reach the ledger before it is closed.
pub async fn drain(engine: &Engine) {
    let state = engine.lifecycle_state();
    state.closing.store(true, Ordering::Release);
    if tokio::time::timeout(DRAIN_GRACE, state.run_lock.lock())
        .await
        .is_err()
    {
        tracing::warn!(grace = ?DRAIN_GRACE, "a lifecycle run was still going at shutdown");
    }
}

/// One run, under the run lock.
async fn run_serial(engine: Arc<Engine>) -> Result<Option<RunReport>, LifecycleError> {
    let Some(section) = engine.config().lifecycle.clone() else {
        return Ok(None);
    };
    let state = engine.lifecycle_state();
    let _serial = state.run_lock.lock().await;
    if state.closing.load(Ordering::Acquire) {
        return Err(LifecycleError::ShuttingDown);
    }
    let policy = section.policy();
    let now_u = engine.agent().clock().now_ms();
    let now = now_u as f64;
    // Metadata only, copied out under the quarantine's lock.
    let memory: Vec<MemoryItem> = engine
        .quarantine
        .with_store(|s| s.eviction_order())
        .into_iter()
        .map(|h| MemoryItem {
            signature: h.signature().to_owned(),
            severity: h.severity(),
            captured_ms: h.captured(),
            size: h.size() as u64,
        })
        .collect();
    let cold_items = match engine.cold() {
        Some(cold) => match cold.list_and_reconcile().await {
            Ok(items) => Some(items),
            Err(e) => {
                let e = LifecycleError::ListCold(e);
                let report = RunReport {
                    failures: 1,
                    error: e.to_string(),
                    ..RunReport::default()
                };
                state.count(&report, now_u);
                return Err(e);
            }
        },
        None => None,
    };
    // Planning sorts every item: off the runtime's worker threads.
    let (planned, cold_items) = tokio::task::spawn_blocking(move || {
        let planned = plan(&policy, &memory, cold_items.as_deref(), now);
        (planned, cold_items)
    })
    .await
    .map_err(|e| LifecycleError::Task(e.to_string()))?;
    // What each object was when listed: a deletion only removes that object.
    let listed: HashMap<&str, Listed> = cold_items
        .iter()
        .flatten()
        .map(|c| {
            let l = Listed {
                last_modified_ms: c.stored_ms as i64,
                size: c.size,
            };
            (c.signature.as_str(), l)
        })
        .collect();
    let mut report = RunReport {
        totals: planned.totals,
        ..RunReport::default()
    };
    let fail = |report: &mut RunReport, why: String| {
        report.failures += 1;
        if report.error.is_empty() {
            report.error = why;
        }
    };
    for action in &planned.actions {
        if state.closing.load(Ordering::Acquire) {
            // Shutting down: stop between actions (each one is complete and audited).
            break;
        }
        let sig = action.signature.as_str();
        match (action.kind, engine.cold()) {
            (ActionKind::Evacuate, Some(cold)) => match cold.evacuate(&engine.quarantine, sig, now)
            {
                Ok(_) => report.evacuated += 1,
                // Gone since planning (evicted, neutralized): nothing to do.
                Err(EvacuateError::NotHeld { .. }) => {}
                Err(EvacuateError::QueueFull) => report.deferred += 1,
                Err(e @ EvacuateError::Closed) => fail(&mut report, e.to_string()),
            },
            (ActionKind::Evacuate, None) | (ActionKind::Neutralize, _) => {
                if engine.quarantine.neutralize(sig, now).is_some() {
                    report.neutralized += 1;
                }
            }
            (ActionKind::DeleteCold, Some(cold)) => {
                let why = action.reason.as_str();
                let expected = listed.get(sig).copied();
                match cold
                    .delete_audited(&engine.quarantine, sig, why, now, expected)
                    .await
                {
                    Ok(Some(d)) => {
                        report.deleted_from_cold += 1;
                        report.deleted_bytes += d.bytes;
                    }
                    Ok(None) => {}
                    Err(e) => fail(&mut report, format!("deleting {sig}: {e}")),
                }
            }
            (ActionKind::DeleteCold, None) => {}
        }
    }
    // Orphan keys (a write that failed, a crash between key and write, an object
    // deleted behind the daemon's back): destroyed so a key never outlives its object.
    if let (Some(cold), true) = (engine.cold(), engine.erasure().vault().is_some()) {
        if !state.closing.load(Ordering::Acquire) {
            match engine
                .erasure()
                .collect_orphan_keys(cold, crate::cold_rpc::WAIT_LIMIT)
                .await
            {
                Ok(n) => report.orphan_keys_destroyed = n,
                Err(e) => fail(&mut report, format!("orphan key collection: {e}")),
            }
        }
    }
    // Deletion intents are on the chain even when the delete failed.
    if report.evacuated + report.neutralized + report.deleted_from_cold + report.failures > 0 {
        nudge_ledger(&engine);
    }
    if report.evacuated
        + report.neutralized
        + report.deleted_from_cold
        + report.orphan_keys_destroyed
        > 0
    {
        tracing::info!(
            evacuated = report.evacuated,
            neutralized = report.neutralized,
            deleted_from_cold = report.deleted_from_cold,
            orphan_keys_destroyed = report.orphan_keys_destroyed,
            deferred = report.deferred,
            "lifecycle policy applied"
        );
    }
    if !report.error.is_empty() {
        tracing::warn!(
            failures = report.failures,
            "lifecycle run: {}",
            report.error
        );
    }
    state.count(&report, now_u);
    Ok(Some(report))
}

/// Resolves once `stop` is set or its sender is gone (the guard is not held across an
/// await, which would make the task non-`Send`).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

/// The periodic task: runs the policy every `interval_ms` (re-read after each run, so a
/// reload changes the pace) until `stop`.
pub(crate) fn spawn(engine: Arc<Engine>, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let delay = match &engine.config().lifecycle {
                Some(l) => Duration::from_millis(l.interval_ms),
                None => IDLE_RECHECK,
            };
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = stopped(&mut stop) => return,
            }
            // Errors are counted and logged inside.
            let _ = run_once(&engine, false).await;
        }
    })
}
