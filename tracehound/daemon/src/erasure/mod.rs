//! Erasure (GDPR) by scent id, source or signature, across the quarantine, cold storage,
//! the key vault, pending notifications and the daemon's own tables.
//!
//! * [`index`] — which sources and scent ids produced which signatures (bounded, fed by
//!   the intercept observer), and tombstones for signatures being erased.
//! * [`sealer`] — cold objects sealed encrypted under one vault key per evidence
//!   (`[erasure]` configured), so erasing destroys the key and every copy of the object,
//!   wherever it was replicated, becomes unreadable (crypto-shredding).
//! * [`run`] — one erasure: resolve the signatures, remove and zeroize quarantine entries,
//!   delete cold objects, destroy keys, purge pending notifications, forget the source in
//!   the insight tables, then append one audit record per erased signature (it carries the
//!   signature only: never the source, the scent id or payload bytes).
//!
//! Anything else that queues personal data (the notification pipeline) takes part
//! through [`ErasureParticipant`].

pub mod index;
pub mod run;
pub mod sealer;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use tracehound_core::notify::NotificationEmitter;
use tracehound_rpc::pb;
use tracehound_vault::Vault;

use crate::config::{erasure_index_capacity, DaemonConfig};
use index::ErasureIndex;
use sealer::VaultSealer;

pub use run::{ErasureReport, Selector};

/// Something holding queued personal data that an erasure must purge (pending
/// notifications, webhook outboxes). Implementations must not block for long: they run
/// on the erasure's blocking task.
pub trait ErasureParticipant: Send + Sync {
    /// A name for logs.
    fn name(&self) -> &str;
    /// Drops pending items about `signature` or from `source`; returns how many.
    fn purge_matching(&self, signature: Option<&str>, source: Option<&str>) -> usize;
    /// Drops pending items carrying one of `scent_ids` (`threat.detected` carries the
    /// scent id but no signature); returns how many. The default purges nothing: a
    /// participant whose items can carry scent ids must implement it.
    fn purge_scents(&self, scent_ids: &[String]) -> usize {
        let _ = scent_ids;
        0
    }
}

impl ErasureParticipant for NotificationEmitter {
    fn name(&self) -> &str {
        "notifications"
    }

    fn purge_matching(&self, signature: Option<&str>, source: Option<&str>) -> usize {
        NotificationEmitter::purge_matching(self, signature, source)
    }

    fn purge_scents(&self, scent_ids: &[String]) -> usize {
        if scent_ids.is_empty() {
            return 0;
        }
        self.purge_where(|e| {
            e.payload_str("scentId")
                .is_some_and(|id| scent_ids.iter().any(|s| s == id))
        })
    }
}

/// The evacuator's write filter: refuses tombstoned signatures (with or without a vault).
#[derive(Debug)]
struct TombstoneFilter(Arc<ErasureIndex>);

impl tracehound_cold::WriteFilter for TombstoneFilter {
    fn refuses(&self, signature: &str) -> bool {
        self.0.is_tombstoned(signature)
    }
}

/// The daemon's erasure state: index, optional vault, participants and counters.
pub struct Erasure {
    index: Arc<ErasureIndex>,
    vault: Option<Arc<Vault>>,
    participants: RwLock<Vec<Arc<dyn ErasureParticipant>>>,
    /// One erasure at a time (they touch the same stores). Held by the erasure's own
    /// task, never by the request handler.
    serial: Arc<tokio::sync::Mutex<()>>,
    requests: AtomicU64,
    signatures: AtomicU64,
    keys_destroyed: AtomicU64,
}

impl std::fmt::Debug for Erasure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Erasure")
            .field("vault", &self.vault.as_ref().map(|v| v.dir().to_owned()))
            .finish_non_exhaustive()
    }
}

impl Erasure {
    /// The index sized for `config`, and the vault when `[erasure]` is present (opened,
    /// its index rebuilt from the directory).
    pub fn open(config: &DaemonConfig) -> Result<Erasure, String> {
        let section = config.erasure.as_ref();
        let index = Arc::new(ErasureIndex::new(erasure_index_capacity(
            section,
            config.quarantine.max_count,
        )));
        let vault = match section {
            Some(s) => {
                let vault = Vault::open(s.vault_dir(), s.max_keys)
                    .map_err(|e| format!("key vault: {e}"))?;
                tracing::info!(
                    dir = %s.vault_dir().display(),
                    keys = vault.stats().keys,
                    "key vault open"
                );
                Some(Arc::new(vault))
            }
            None => None,
        };
        Ok(Erasure {
            index,
            vault,
            participants: RwLock::new(Vec::new()),
            serial: Arc::new(tokio::sync::Mutex::new(())),
            requests: AtomicU64::new(0),
            signatures: AtomicU64::new(0),
            keys_destroyed: AtomicU64::new(0),
        })
    }

    /// The index the intercept observer feeds.
    pub fn index(&self) -> &Arc<ErasureIndex> {
        &self.index
    }

    /// The key vault, when `[erasure]` is configured.
    pub fn vault(&self) -> Option<&Arc<Vault>> {
        self.vault.as_ref()
    }

    /// The cold store's sealer, when a vault is configured.
    pub fn sealer(&self) -> Option<Arc<dyn tracehound_cold::EvidenceSealer>> {
        let vault = Arc::clone(self.vault.as_ref()?);
        Some(Arc::new(VaultSealer::new(vault, Arc::clone(&self.index))))
    }

    /// The evacuator's write filter: tombstoned signatures are never written.
    pub fn write_filter(&self) -> Arc<dyn tracehound_cold::WriteFilter> {
        Arc::new(TombstoneFilter(Arc::clone(&self.index)))
    }

    /// Waits until no erasure is running (erasures run as their own tasks and finish
    /// even when the request that started them is dropped).
    pub async fn wait_idle(&self) {
        drop(self.serial.lock().await);
    }

    /// Garbage collection of orphan keys: destroys vault keys whose cold object does not
    /// exist (a write that failed before the evacuator discarded keys, a crash between
    /// key creation and write). Two passes around a wait for the evacuation jobs queued
    /// before it, so a key made for a write still in flight is not taken for an orphan.
    /// Returns the keys destroyed. Called by every lifecycle run after its cold pass
    /// (when both `[erasure]` and `[cold]` are configured).
    pub async fn collect_orphan_keys(
        &self,
        cold: &crate::cold_wiring::ColdWiring,
        wait: std::time::Duration,
    ) -> Result<u64, String> {
        let Some(vault) = self.vault.clone() else {
            return Ok(0);
        };
        let store = cold.store();
        let all = {
            let v = Arc::clone(&vault);
            tokio::task::spawn_blocking(move || v.signatures())
                .await
                .map_err(|e| e.to_string())?
        };
        let mut candidates = Vec::new();
        for (id, sig) in all {
            if !store.contains(&sig).await.map_err(|e| e.to_string())? {
                candidates.push((id, sig));
            }
        }
        if candidates.is_empty() {
            return Ok(0);
        }
        if !cold.wait_queued(wait).await {
            return Err("the evacuation queue did not drain in time".into());
        }
        let mut orphans = Vec::new();
        for (id, sig) in candidates {
            if !store.contains(&sig).await.map_err(|e| e.to_string())? {
                orphans.push(id);
            }
        }
        tokio::task::spawn_blocking(move || {
            let mut n = 0;
            for id in orphans {
                if vault.destroy(&id).map_err(|e| e.to_string())? {
                    n += 1;
                }
            }
            Ok(n)
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// Adds a participant (e.g. the notification pipeline) to every later erasure.
    pub fn register(&self, participant: Arc<dyn ErasureParticipant>) {
        self.participants.write().push(participant);
    }

    fn participants(&self) -> Vec<Arc<dyn ErasureParticipant>> {
        self.participants.read().clone()
    }

    /// Counters for `Stats`.
    pub fn stats(&self) -> pb::ErasureStats {
        let vault = self.vault.as_ref().map(|v| v.stats());
        pb::ErasureStats {
            vault: vault.is_some(),
            vault_keys: vault.map_or(0, |s| s.keys),
            index_signatures: self.index.len() as u64,
            erasures: self.requests.load(Ordering::Relaxed),
            signatures_erased: self.signatures.load(Ordering::Relaxed),
            keys_destroyed: self.keys_destroyed.load(Ordering::Relaxed),
        }
    }
}
