//! What the audit RPCs answer: proofs, checkpoints, verification and counters.

use std::sync::atomic::Ordering;

use tracehound_rpc::pb;

use super::AuditLog;

/// Why a proof could not be given.
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    /// The index or a size is past the acknowledged entries, or the sizes are reversed.
    #[error("{0}")]
    OutOfRange(String),
    /// Reading the ledger failed.
    #[error("audit ledger: {0}")]
    Ledger(#[from] tracehound_ledger::LedgerError),
}

impl AuditLog {
    /// The inclusion bundle of entry `index` at the acknowledged size (with a checkpoint
    /// signed for that size) and, if asked, the consistency bundle between two sizes
    /// (`second` 0: the acknowledged size). Blocks on the ledger lock: call it from a
    /// blocking context. The lock is held for bounded work only, whatever the ledger's
    /// size: the Merkle tree is in memory (proofs and roots are O(log² n) hashes), the
    /// entry is one positioned read of one frame, and the checkpoint one signature.
    pub fn prove(
        &self,
        index: u64,
        consistency: Option<(u64, u64)>,
    ) -> Result<pb::AuditProveReply, ProveError> {
        let ledger = self.shared.ledger.lock();
        let acked = ledger.acknowledged();
        if index >= acked {
            return Err(ProveError::OutOfRange(format!(
                "no acknowledged entry {index}: the log has {acked}"
            )));
        }
        let origin = self.shared.settings.origin.as_str();
        let inclusion = ledger.prove(index, Some((origin, &self.shared.signer)))?;
        let consistency_bundle = match consistency {
            None => String::new(),
            Some((first, second)) => {
                let second = if second == 0 { acked } else { second };
                if first > second || second > acked {
                    return Err(ProveError::OutOfRange(format!(
                        "consistency needs first <= second <= {acked} (the acknowledged size), \
                         got {first} and {second}"
                    )));
                }
                ledger.prove_consistency(first, second)?.to_json()
            }
        };
        Ok(pb::AuditProveReply {
            inclusion_bundle: inclusion.to_json(),
            consistency_bundle,
            verifier_key: self.shared.verifier_key.clone(),
        })
    }

    /// The latest signed checkpoint.
    pub fn checkpoint(&self) -> Option<pb::AuditCheckpointReply> {
        let latest = self.shared.latest.lock().clone()?;
        Some(pb::AuditCheckpointReply {
            checkpoint: latest.note,
            origin: self.shared.settings.origin.clone(),
            size: latest.size,
            root_hash: hex::encode(latest.root),
            verifier_key: self.shared.verifier_key.clone(),
            signed_at_ms: latest.signed_at_ms,
        })
    }

    /// Re-reads and checks the ledger (framing, chain from genesis, tree) up to the entries
    /// it held when called. The ledger lock is held only to capture that size, the
    /// segments' lengths and the expected tree and chain heads (no I/O); the files are
    /// read without it, so the writer keeps appending and acknowledging meanwhile and
    /// entries appended since are not part of the answer. Reads every segment: call it
    /// from a blocking context.
    pub fn verify(&self) -> pb::LedgerVerify {
        self.verify_pausing(|| {})
    }

    /// [`verify`](Self::verify), calling `paused` after the capture, before any file is
    /// read (with the lock released). For tests that check the writer is not held up.
    #[doc(hidden)]
    pub fn verify_pausing(&self, paused: impl FnOnce()) -> pb::LedgerVerify {
        let snapshot = self.shared.ledger.lock().verify_snapshot();
        paused();
        match snapshot.run() {
            Ok(r) => pb::LedgerVerify {
                ok: true,
                entries: r.entries,
                root_hash: hex::encode(r.root),
                head_hash: r.last_hash.to_hex(),
                error: String::new(),
            },
            Err(e) => pb::LedgerVerify {
                ok: false,
                entries: snapshot.size(),
                error: e.to_string(),
                ..Default::default()
            },
        }
    }

    /// Counters for `Stats` (no lock on the ledger: the writer publishes them).
    pub fn stats(&self) -> pb::LedgerStats {
        let s = &self.shared;
        let core_len = s.quarantine.with_audit(|a| a.len() as u64);
        pb::LedgerStats {
            fsync: s.settings.fsync.as_str().to_owned(),
            entries: s.entries.load(Ordering::Relaxed),
            acknowledged: s.acknowledged.load(Ordering::Relaxed),
            pending: core_len.saturating_sub(s.copied.load(Ordering::Relaxed)),
            syncs: s.syncs.load(Ordering::Relaxed),
            failures: s.failures.load(Ordering::Relaxed),
            checkpoint_size: s.latest.lock().as_ref().map_or(0, |c| c.size),
        }
    }
}
