//! The cold-storage methods (`ColdRetrieve`, `Evacuate`) and the cold parts of `Stats`.
//! Payload bytes never leave the daemon: a retrieval is verified and answered with
//! metadata only.

use std::collections::BTreeMap;
use std::str::FromStr;

use object_store::ObjectStoreExt;
use tonic::Status;
use tracehound_cold::{ColdError, EvacuateError};
use tracehound_core::types::{category_of, hash_of, Severity, ThreatCategory};
use tracehound_rpc::pb;

use crate::cold_wiring::ColdWiring;
use crate::engine::Engine;

/// Longest a request with `wait` waits for the writes it queued (then answers anyway;
/// the writes go on).
pub(crate) const WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

fn no_cold() -> Status {
    Status::failed_precondition(
        "tracehoundd runs without cold storage (add a [cold] section to its config)",
    )
}

/// The cold store of `engine`, or FAILED_PRECONDITION.
pub(crate) fn cold_of(engine: &Engine) -> Result<&ColdWiring, Status> {
    engine.cold().ok_or_else(no_cold)
}

/// Tells the ledger writer (if any) that the core chain grew outside an intercept.
pub(crate) fn nudge_ledger(engine: &Engine) {
    if let Some(log) = engine.audit_log() {
        log.nudge();
    }
}

fn now_ms(engine: &Engine) -> f64 {
    engine.agent().clock().now_ms() as f64
}

/// `ColdRetrieve`: reads and verifies the object; answers metadata only.
pub(crate) async fn retrieve(
    engine: &Engine,
    signature: &str,
) -> Result<pb::ColdRetrieveReply, Status> {
    let cold = cold_of(engine)?;
    let store = cold.store();
    let key = store
        .key_for(signature)
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    let mut reply = pb::ColdRetrieveReply {
        signature: signature.to_owned(),
        hash: hash_of(signature).unwrap_or("").to_owned(),
        severity: cold
            .severity_of(signature)
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        key,
        store: store.description().to_owned(),
        ..Default::default()
    };
    match cold.retrieve(signature.to_owned()).await {
        Ok(evidence) => {
            reply.found = true;
            reply.verified = true;
            reply.size = evidence.payload.len() as u64;
            reply.compressed_size = evidence.compressed.len() as u64;
            reply.object_size = evidence.object_len;
            // `evidence` (the payload) is dropped here: it never leaves the daemon.
        }
        Err(ColdError::NotFound { .. }) => {}
        Err(ColdError::Corrupt { reason, .. }) => {
            reply.found = true;
            reply.verified = false;
            reply.corrupt_reason = reason;
            reply.object_size = store
                .object_store()
                .head(&object_store::path::Path::from(reply.key.as_str()))
                .await
                .map_or(0, |meta| meta.size);
        }
        // Stored, but its key was destroyed: it reads as erased, never as corrupt.
        Err(ColdError::Erased { .. }) => {
            reply.found = true;
            reply.erased = true;
        }
        Err(ColdError::InvalidSignature { reason }) => {
            return Err(Status::invalid_argument(format!(
                "invalid evidence signature: {reason}"
            )))
        }
        Err(e) => return Err(Status::unavailable(format!("cold storage: {e}"))),
    }
    Ok(reply)
}

/// `Evacuate`: one signature, or everything matching a filter, moved to cold storage with
/// its audit record.
pub(crate) async fn evacuate(
    engine: &Engine,
    req: pb::EvacuateRequest,
) -> Result<pb::EvacuateReply, Status> {
    let cold = cold_of(engine)?;
    let filtered = !req.severity.is_empty() || !req.category.is_empty();
    let selectors = [!req.signature.is_empty(), filtered, req.all]
        .iter()
        .filter(|&&b| b)
        .count();
    if selectors != 1 {
        return Err(Status::invalid_argument(
            "give exactly one of: a signature, a severity and/or category filter, or all",
        ));
    }
    let now = now_ms(engine);
    let quarantine = &engine.quarantine;
    let (records, left) = if !req.signature.is_empty() {
        let record = cold
            .evacuate(quarantine, &req.signature, now)
            .map_err(|e| match e {
                EvacuateError::NotHeld { .. } => Status::not_found(e.to_string()),
                EvacuateError::QueueFull => Status::resource_exhausted(e.to_string()),
                EvacuateError::Closed => Status::unavailable(e.to_string()),
            })?;
        (vec![record], 0)
    } else {
        let severity = match req.severity.as_str() {
            "" => None,
            s => Some(Severity::from_str(s).map_err(|e| Status::invalid_argument(e.to_string()))?),
        };
        let category = match req.category.as_str() {
            "" => None,
            c => Some(
                ThreatCategory::from_str(c)
                    .map_err(|e| Status::invalid_argument(e.to_string()))?
                    .as_str(),
            ),
        };
        let outcome = cold.evacuate_where(quarantine, now, |h| {
            severity.is_none_or(|s| h.severity() == s)
                && category.is_none_or(|c| category_of(h.signature()) == Some(c))
        });
        (outcome.evacuated, outcome.left_in_quarantine as u64)
    };
    if !records.is_empty() {
        nudge_ledger(engine);
    }
    if req.wait && !cold.wait_queued(WAIT_LIMIT).await {
        tracing::warn!("evacuate: still writing after {WAIT_LIMIT:?}; answering anyway");
    }
    Ok(pb::EvacuateReply {
        destination: cold.store().description().to_owned(),
        evacuated: records
            .into_iter()
            .map(|r| pb::EvacuatedEvidence {
                signature: r.signature,
                record_id: r.id,
                size: r.size as u64,
                timestamp_ms: r.timestamp,
            })
            .collect(),
        left_in_quarantine: left,
        cold: Some(cold_stats(cold)),
    })
}

/// The evacuator's counters and what the store holds.
pub(crate) fn cold_stats(cold: &ColdWiring) -> pb::ColdStats {
    let s = cold.stats();
    let total = cold.total();
    pb::ColdStats {
        store: cold.store().description().to_owned(),
        queued: s.pending,
        enqueued: s.enqueued,
        from_evictions: s.from_evictions,
        explicit: s.explicit,
        objects_written: s.objects_written,
        bytes_written: s.bytes_written,
        retries: s.retries,
        failures: s.failures,
        dropped: s.dropped(),
        stored_objects: total.count,
        stored_bytes: total.bytes,
    }
}

/// Objects and bytes by category, in memory and in cold storage (the running tally).
/// Memory: under the quarantine's lock only a snapshot of metadata handles is taken (one
/// vector, a reference-count increment per held evidence, no per-item allocation); the
/// counting happens after the lock is released.
pub(crate) fn cost_by_category(engine: &Engine) -> BTreeMap<String, pb::CategoryCost> {
    let mut out: BTreeMap<String, pb::CategoryCost> = BTreeMap::new();
    let held = engine.quarantine.with_store(|s| s.eviction_order());
    for h in held {
        let category = category_of(h.signature()).unwrap_or("");
        let c = out.entry(category.to_owned()).or_default();
        c.memory_count += 1;
        c.memory_bytes += h.size() as u64;
    }
    if let Some(cold) = engine.cold() {
        for (category, t) in cold.cost() {
            let c = out.entry(category).or_default();
            c.cold_count = t.count;
            c.cold_bytes = t.bytes;
        }
    }
    out
}
