//! Incident records and the ledger's part of a snapshot export.
//!
//! An incident is one `incident` audit record appended to the core chain for evidence
//! the quarantine holds; the writer copies it into the ledger like any other record.
//! The reply waits until that entry is in the ledger, syncs it, signs a checkpoint that
//! covers it (so `AuditCheckpoint` and `DIR/checkpoint` move on too) and returns the
//! descriptor of `tracehound_ledger::incident`, checked against the log's own key before
//! it leaves.
//!
//! Settling (wait for the copy, sync, publish, checkpoint) is shared with the snapshot
//! export, which needs the ledger head and checkpoint to be a function of the captured
//! audit length rather than of the fsync policy or the checkpoint timer. Concurrent
//! settlers share the work: they are serialized by the ledger lock, `Ledger::sync` is a
//! no-op once everything is acknowledged and a checkpoint is only signed when the size
//! moved, so N simultaneous incidents cost one fsync and one signature for the entries
//! they find, not N.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::MutexGuard;

use tracehound_core::audit::RecordKind;
use tracehound_core::snapshot_export::{CheckpointFacts, LedgerFacts};
use tracehound_ledger::incident::{incident_id, IncidentEvidence};
use tracehound_ledger::{
    verify_incident_record, IncidentError, IncidentRecord, Ledger, LedgerError,
};
use tracehound_rpc::pb;

use super::{writer, AuditLog, Shared};

/// The longest a settler waits for the writer to copy its record. The writer is nudged
/// and normally copies within a millisecond; this only bounds a stuck or failed writer.
const COPY_DEADLINE: Duration = Duration::from_secs(10);
/// How often the copy cursor is looked at while waiting (the writer publishes no event
/// per copy outside `fsync = "every"`).
const COPY_POLL: Duration = Duration::from_millis(1);

/// Why the ledger could not be settled up to a core record.
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    /// The ledger failed a write or sync, or its writer is stopping.
    #[error("the ledger has failed or is stopping")]
    Failed,
    /// The writer did not copy the records within the bound.
    #[error("the writer did not copy the audit records in time")]
    Timeout,
    /// Syncing the ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Why an incident could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum IncidentRecordError {
    /// The quarantine holds no evidence under this signature.
    #[error("no evidence under {0} in the quarantine")]
    NotFound(String),
    /// The evidence cannot be described (a non-finite capture time).
    #[error("cannot describe the evidence: {0}")]
    Evidence(IncidentError),
    /// The ledger failed, stopped, or did not take the record in time.
    #[error("audit ledger: {0}")]
    Unavailable(String),
    /// Reading or proving from the ledger failed.
    #[error("audit ledger: {0}")]
    Ledger(#[from] LedgerError),
    /// The descriptor did not verify against the log's own key (a bug, never sent).
    #[error("internal: the incident record does not verify: {0}")]
    Internal(IncidentError),
}

fn describe(h: &tracehound_core::evidence::EvidenceHandle) -> IncidentEvidence {
    let signature = h.signature().to_owned();
    let category = signature.split_once(':').map_or("", |(c, _)| c).to_owned();
    IncidentEvidence {
        hash: h.hash().to_owned(),
        category,
        severity: h.severity().as_str().to_owned(),
        size: h.size() as u64,
        captured_ms: h.captured(),
        signature,
    }
}

impl AuditLog {
    /// Records an incident for `signature` at `now_ms` and returns its descriptor once a
    /// signed checkpoint covers it.
    pub async fn record_incident(
        &self,
        signature: &str,
        now_ms: f64,
    ) -> Result<pb::IncidentRecordReply, IncidentRecordError> {
        // Look up and append under one quarantine lock: the evidence described is the
        // evidence held when the record was chained.
        let appended = self.shared.quarantine.with_store(|s| {
            let Some(h) = s.get(signature) else {
                return Err(IncidentRecordError::NotFound(signature.to_owned()));
            };
            let evidence = describe(&h);
            let id = incident_id(&evidence).map_err(IncidentRecordError::Evidence)?;
            let k = s.audit().len() as u64;
            s.audit_mut()
                .append(RecordKind::Incident, &id, signature, now_ms);
            Ok((evidence, k))
        });
        let (evidence, k) = appended?;
        self.nudge();
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || finish(&shared, k, evidence, now_ms))
            .await
            .map_err(|e| IncidentRecordError::Unavailable(format!("incident task failed: {e}")))?
    }

    /// The ledger's head and latest checkpoint once the first `core_len` records of this
    /// run's core chain are copied, durable and covered by a signed checkpoint: for a
    /// snapshot export, whose ledger part must not depend on the fsync policy or the
    /// checkpoint timer. Blocks (waits for the writer, locks the ledger): call from a
    /// blocking context.
    pub fn settled_facts(&self, core_len: u64) -> Result<LedgerFacts, SettleError> {
        self.nudge();
        let ledger = settle(&self.shared, core_len)?;
        // Read under the same lock hold as the checkpoint: size and checkpoint agree.
        let size = ledger.acknowledged();
        let root = ledger.root(size)?;
        let checkpoint = self.shared.latest.lock().as_ref().map(|c| CheckpointFacts {
            size: c.size,
            root: c.root,
            note: c.note.clone(),
        });
        Ok(LedgerFacts {
            size,
            root,
            checkpoint,
        })
    }
}

/// Waits (bounded) until the writer has copied the first `core_len` records of this run's
/// core chain, then, under the ledger lock, syncs, publishes the durable mark (so
/// `acknowledged`, stats and `every` waiters see it now, not at the writer's next pass)
/// and signs a checkpoint covering it. Returns the held lock. Blocking.
fn settle(shared: &Shared, core_len: u64) -> Result<MutexGuard<'_, Ledger>, SettleError> {
    let start = Instant::now();
    while shared.copied.load(Ordering::Acquire) < core_len {
        if shared.marks.borrow().failed {
            return Err(SettleError::Failed);
        }
        if start.elapsed() >= COPY_DEADLINE {
            return Err(SettleError::Timeout);
        }
        std::thread::sleep(COPY_POLL);
    }
    let mut ledger = shared.ledger.lock();
    if shared.marks.borrow().failed {
        return Err(SettleError::Failed);
    }
    // The writer may not have synced yet (interval, batch): this makes the entries
    // durable whatever the policy. Under this lock `copied` is the writer's cursor (it
    // appends and publishes under the same lock).
    ledger.sync()?;
    writer::publish(shared, &ledger, shared.copied.load(Ordering::Acquire));
    writer::sign_checkpoint(shared, &ledger);
    Ok(ledger)
}

/// Settles the ledger past core record `k`, then proves its entry (blocking).
fn finish(
    shared: &Shared,
    k: u64,
    evidence: IncidentEvidence,
    recorded_ms: f64,
) -> Result<pb::IncidentRecordReply, IncidentRecordError> {
    let entry = shared.base + k;
    let bundle = {
        let ledger = settle(shared, k + 1).map_err(|e| match e {
            SettleError::Failed => IncidentRecordError::Unavailable(
                "the ledger has failed or is stopping; the incident record is in memory only"
                    .to_owned(),
            ),
            SettleError::Timeout => IncidentRecordError::Unavailable(
                "the writer did not take the incident record in time".to_owned(),
            ),
            SettleError::Ledger(e) => IncidentRecordError::Ledger(e),
        })?;
        ledger.prove(
            entry,
            Some((shared.settings.origin.as_str(), &shared.signer)),
        )?
    };
    let verifier = shared.signer.verifier();
    let text = IncidentRecord::new(evidence, recorded_ms, &bundle, &verifier)
        .and_then(|r| r.to_canonical_json())
        .map_err(IncidentRecordError::Internal)?;
    verify_incident_record(&text, &verifier).map_err(IncidentRecordError::Internal)?;
    Ok(pb::IncidentRecordReply {
        record: text,
        verifier_key: shared.verifier_key.clone(),
        index: entry,
        tree_size: bundle.tree_size,
    })
}
