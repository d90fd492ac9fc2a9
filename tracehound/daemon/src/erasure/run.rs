//! One erasure, step by step (see the [module docs](super)).
//!
//! Order matters: signatures are tombstoned first (so an evacuation in flight cannot seal
//! them under a new key), then removed from the quarantine (bytes zeroized), then the
//! evacuation queue is let drain (anything written meanwhile is deleted next), then cold
//! objects are deleted and their keys destroyed, pending notifications purged and the
//! in-memory tables cleaned. The audit records come last: they attest work done.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tracehound_rpc::pb;

use crate::engine::Engine;

/// The longest an erasure waits for the evacuation queue to drain before deleting.
const DRAIN_WAIT: Duration = Duration::from_secs(30);
/// Id prefix of the audit record of a signature whose erasure had a failed step (the
/// complete ones use the core's `erasure-` prefix).
pub const INCOMPLETE_ID_PREFIX: &str = "incomplete-erasure-";
/// Longest selector accepted (bytes).
const MAX_SELECTOR: usize = 1024;

/// What to erase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// The evidence one scent produced.
    ScentId(String),
    /// Everything one source produced, and the source itself in the daemon's tables.
    Source(String),
    /// One piece of evidence.
    Signature(String),
}

/// Why an erasure was refused before it started.
#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    /// The selector is empty, too long or (for a signature) malformed.
    #[error("{0}")]
    Invalid(String),
}

/// What an erasure did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErasureReport {
    /// The signatures erased (sorted).
    pub signatures: Vec<String>,
    /// Quarantine entries removed (bytes zeroized).
    pub quarantine_removed: u64,
    /// Cold objects deleted.
    pub cold_deleted: u64,
    /// Vault keys destroyed (keys that existed and were destroyed by this erasure).
    pub keys_destroyed: u64,
    /// Pending notifications purged.
    pub notifications_purged: u64,
    /// Chain indexes of the erasure audit records (this run's chain).
    pub audit_indexes: Vec<u64>,
    /// With `[ledger]` and `fsync = "every"`: the records are durable in the ledger.
    pub ledger_durable: bool,
    /// Steps that failed (the rest was still done); no personal data in them.
    pub errors: Vec<String>,
    /// False when the index ever dropped a link for capacity (or a lookup failed): a
    /// source or scent-id erasure may then have missed evidence.
    pub coverage_complete: bool,
}

impl ErasureReport {
    /// The gRPC reply.
    pub fn into_reply(self) -> pb::EraseReply {
        pb::EraseReply {
            signatures: self.signatures,
            quarantine_removed: self.quarantine_removed,
            cold_deleted: self.cold_deleted,
            keys_destroyed: self.keys_destroyed,
            notifications_purged: self.notifications_purged,
            audit_indexes: self.audit_indexes,
            ledger_durable: self.ledger_durable,
            errors: self.errors,
            coverage_complete: self.coverage_complete,
        }
    }
}

impl Selector {
    /// From the request's `oneof`.
    pub fn from_request(req: pb::EraseRequest) -> Result<Selector, EraseError> {
        use pb::erase_request::Target;
        let selector = match req.target {
            Some(Target::ScentId(s)) => Selector::ScentId(s),
            Some(Target::Source(s)) => Selector::Source(s),
            Some(Target::Signature(s)) => Selector::Signature(s),
            None => {
                return Err(EraseError::Invalid(
                    "give one of scent_id, source or signature".into(),
                ))
            }
        };
        let value = match &selector {
            Selector::ScentId(s) | Selector::Source(s) | Selector::Signature(s) => s,
        };
        if value.is_empty() || value.len() > MAX_SELECTOR {
            return Err(EraseError::Invalid(format!(
                "the selector must be 1 to {MAX_SELECTOR} bytes long"
            )));
        }
        if let Selector::Signature(s) = &selector {
            tracehound_cold::layout::parse_signature(s)
                .map_err(|e| EraseError::Invalid(e.to_string()))?;
        }
        Ok(selector)
    }
}

/// Runs one erasure as its own task (one at a time per daemon) and waits for it. The
/// task holds the erasure lock and finishes even if this future is dropped (a client
/// that disconnects cannot leave an erasure half done).
pub async fn erase(engine: &Arc<Engine>, selector: Selector) -> ErasureReport {
    let engine = Arc::clone(engine);
    let serial = Arc::clone(&engine.erasure().serial);
    let task = tokio::spawn(async move {
        let _serial = serial.lock_owned().await;
        run(&engine, selector).await
    });
    task.await.unwrap_or_else(|e| ErasureReport {
        errors: vec![format!("erasure task failed: {e}")],
        coverage_complete: false,
        ..ErasureReport::default()
    })
}

/// Runs `f` on the blocking pool (vault lookups and key files block on locks and fsync).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("erasure task failed: {e}"))
}

/// Destroys the vault keys of `sigs`; counts only keys actually destroyed. Signatures
/// whose key could not be destroyed go to `failed`.
async fn destroy_keys(
    vault: &Option<Arc<tracehound_vault::Vault>>,
    sigs: &[String],
    report: &mut ErasureReport,
    failed: &mut BTreeSet<String>,
    gone: &mut BTreeSet<String>,
) {
    let Some(v) = vault.clone() else { return };
    let list = sigs.to_vec();
    let outcome = blocking(move || {
        list.into_iter()
            .filter_map(|sig| {
                let id = v.find_signature(&sig)?;
                Some((sig, v.destroy(&id).map_err(|e| e.to_string())))
            })
            .collect::<Vec<_>>()
    })
    .await;
    match outcome {
        Ok(results) => {
            for (sig, r) in results {
                match r {
                    Ok(true) => {
                        report.keys_destroyed += 1;
                        gone.insert(sig);
                    }
                    Ok(false) => {}
                    Err(e) => {
                        report.errors.push(format!("key vault, {sig}: {e}"));
                        failed.insert(sig);
                    }
                }
            }
        }
        Err(e) => {
            report.errors.push(e);
            failed.extend(sigs.iter().cloned());
        }
    }
}

/// Deletes the cold objects of `sigs` that exist.
async fn delete_cold(
    cold: &crate::cold_wiring::ColdWiring,
    sigs: &[String],
    report: &mut ErasureReport,
    failed: &mut BTreeSet<String>,
    found: &mut BTreeSet<String>,
) {
    let store = cold.store();
    for sig in sigs {
        match store.contains(sig).await {
            Ok(false) => {}
            Ok(true) => match store.delete(sig).await {
                Ok(()) => {
                    report.cold_deleted += 1;
                    found.insert(sig.clone());
                }
                Err(e) => {
                    report.errors.push(format!("cold storage, {sig}: {e}"));
                    failed.insert(sig.clone());
                }
            },
            Err(e) => {
                report.errors.push(format!("cold storage, {sig}: {e}"));
                failed.insert(sig.clone());
            }
        }
    }
}

async fn run(engine: &Arc<Engine>, selector: Selector) -> ErasureReport {
    let erasure = engine.erasure();
    erasure.requests.fetch_add(1, Ordering::Relaxed);
    let mut report = ErasureReport {
        coverage_complete: true,
        ..ErasureReport::default()
    };
    let vault = erasure.vault().cloned();
    let index = Arc::clone(erasure.index());
    // Links recorded from here on (new evidence during the erasure) are not forgotten.
    let generation = index.generation();

    // 1. Which signatures (vault lookups block on its lock: off the async workers).
    let mut sigs: BTreeSet<String> = BTreeSet::new();
    let mut scents: BTreeSet<String> = BTreeSet::new();
    let source = match &selector {
        Selector::Signature(s) => {
            sigs.insert(s.clone());
            None
        }
        Selector::ScentId(id) => {
            scents.insert(id.clone());
            report.coverage_complete = index.coverage_complete();
            sigs.extend(index.signature_of_scent(id));
            if let Some(v) = vault.clone() {
                let id = id.clone();
                match blocking(move || v.find_scent(&id)).await {
                    Ok(found) => sigs.extend(found.into_iter().map(|(_, s)| s)),
                    Err(e) => {
                        report.errors.push(e);
                        report.coverage_complete = false;
                    }
                }
            }
            None
        }
        Selector::Source(src) => {
            report.coverage_complete = index.coverage_complete();
            sigs.extend(index.signatures_of_source(src));
            if let Some(v) = vault.clone() {
                let src = src.clone();
                match blocking(move || v.find_source(&src)).await {
                    Ok(found) => sigs.extend(found.into_iter().map(|(_, s)| s)),
                    Err(e) => {
                        report.errors.push(e);
                        report.coverage_complete = false;
                    }
                }
            }
            Some(src.clone())
        }
    };
    // Key files record a bounded number of sources and scent ids: past it, the vault
    // cannot find everything by link either.
    if source.is_some() || matches!(selector, Selector::ScentId(_)) {
        if let Some(v) = &vault {
            if v.stats().metadata_not_recorded > 0 {
                report.coverage_complete = false;
            }
        }
    }
    let sigs: Vec<String> = sigs.into_iter().collect();
    // Pinned for the whole run: the sealer and the evacuator's write filter refuse them.
    index.tombstone(&sigs);
    let mut found: BTreeSet<String> = sigs.iter().filter(|s| index.knows(s)).cloned().collect();
    let mut failed: BTreeSet<String> = BTreeSet::new();
    // Scent ids linked to the signatures (read before they are forgotten): pending
    // `threat.detected` events carry the scent id, not the signature.
    for sig in &sigs {
        scents.extend(index.links(sig).scent_ids);
    }

    // 2. The quarantine: remove and zeroize.
    let removed: Vec<String> = engine.quarantine.with_store(|q| {
        sigs.iter()
            .filter(|s| q.erase_evidence(s))
            .cloned()
            .collect()
    });
    report.quarantine_removed = removed.len() as u64;
    found.extend(removed);

    // 3. Keys first: every stored copy becomes unreadable at once (crypto-shredding).
    let mut gone = BTreeSet::new();
    destroy_keys(&vault, &sigs, &mut report, &mut failed, &mut gone).await;

    // 4. Cold storage: let the writes queued before now land (later ones are refused by
    //    the write filter), delete, then check again for a write that was in flight.
    if let Some(cold) = engine.cold() {
        let drained = cold.wait_queued(DRAIN_WAIT).await;
        delete_cold(cold, &sigs, &mut report, &mut failed, &mut found).await;
        if !cold.wait_queued(DRAIN_WAIT).await || !drained {
            report
                .errors
                .push("cold storage: the evacuation queue did not drain in time".into());
            failed.extend(sigs.iter().cloned());
        }
        delete_cold(cold, &sigs, &mut report, &mut failed, &mut found).await;
        // Keys made by a write in flight meanwhile.
        destroy_keys(&vault, &sigs, &mut report, &mut failed, &mut gone).await;
    }
    found.extend(gone);

    // 5. Pending notifications.
    let participants = erasure.participants();
    let purged = {
        let sigs = sigs.clone();
        let source = source.clone();
        let scents: Vec<String> = scents.into_iter().collect();
        blocking(move || {
            let mut purged = 0u64;
            for p in &participants {
                for sig in &sigs {
                    purged += p.purge_matching(Some(sig), None) as u64;
                }
                if let Some(src) = &source {
                    purged += p.purge_matching(None, Some(src)) as u64;
                }
                purged += p.purge_scents(&scents) as u64;
            }
            purged
        })
        .await
    };
    match purged {
        Ok(n) => report.notifications_purged = n,
        Err(e) => {
            report.errors.push(e);
            failed.extend(sigs.iter().cloned());
        }
    }

    // 6. The daemon's own tables.
    if let Some(src) = &source {
        engine.insight.top_sources.forget(src);
        // The rate limiter's window for the source (a v1 `reset`).
        engine.agent().rate_limiter().reset(src);
    }
    engine.state.forget_source(source.as_deref(), &sigs);
    engine.insight.recent_threats.forget(&sigs);
    index.forget(&sigs, source.as_deref(), generation);
    index.unpin(&sigs);

    // 7. The audit chain: one record per erased signature (a distinct id prefix where a
    //    step failed), then the ledger.
    let now = engine.agent().clock().now_ms() as f64;
    let erased: Vec<String> = found.into_iter().collect();
    report.audit_indexes = engine.quarantine.with_store(|q| {
        erased
            .iter()
            .map(|sig| {
                if failed.contains(sig) {
                    let id = format!(
                        "{INCOMPLETE_ID_PREFIX}{}",
                        tracehound_core::id::generate_secure_id()
                    );
                    let index = q.audit_mut().len();
                    q.audit_mut().append(
                        tracehound_core::audit::RecordKind::Neutralization,
                        &id,
                        sig,
                        now,
                    );
                    index as u64
                } else {
                    q.append_erasure(sig, now).0 as u64
                }
            })
            .collect()
    });
    report.ledger_durable = match engine.audit_log() {
        Some(log) if !erased.is_empty() && log.acknowledges() => {
            let target = log.durability_target();
            let mut probe = pb::InterceptReply {
                status: pb::Status::Quarantined.into(),
                ..Default::default()
            };
            log.acknowledge(target, &mut probe).await;
            probe.status() != pb::Status::Error
        }
        Some(log) => {
            log.nudge();
            false
        }
        None => false,
    };
    erasure
        .signatures
        .fetch_add(erased.len() as u64, Ordering::Relaxed);
    erasure
        .keys_destroyed
        .fetch_add(report.keys_destroyed, Ordering::Relaxed);
    tracing::info!(
        signatures = erased.len(),
        incomplete = failed.len(),
        quarantine = report.quarantine_removed,
        cold = report.cold_deleted,
        keys = report.keys_destroyed,
        notifications = report.notifications_purged,
        coverage_complete = report.coverage_complete,
        errors = report.errors.len(),
        "erasure done"
    );
    report.signatures = erased;
    report
}
