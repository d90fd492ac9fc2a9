//! Keys from the configuration: replaced as a set on reload, in one step under the
//! store's write lock, so a concurrent list or sign sees either the old set or the new
//! one. Identities added by clients (`ssh-add`) are never touched here.

use std::sync::Arc;

use super::{context, Identity, KeyStore, NewIdentity, Origin};
use crate::pending::PendingKey;

/// What a [`KeyStore::replace_config_keys`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConfigKeysChange {
    /// Configuration keys loaded now.
    pub added: usize,
    /// Configuration keys no longer configured, removed.
    pub removed: usize,
    /// Configuration keys already loaded and still configured, left as they were.
    pub kept: usize,
    /// Keys waiting for their first use.
    pub pending: usize,
}

/// Why the configuration keys were not replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplaceError {
    /// The agent is locked: keys cannot be sealed for it now.
    #[error("the agent is locked")]
    Locked,
    /// A key could not be sealed.
    #[error("a key could not be sealed")]
    Seal,
}

impl KeyStore {
    /// Makes the configuration's keys exactly `keep` (blobs of configuration keys already
    /// loaded, left untouched so their lifetime runs on) plus `load` (keys read now),
    /// with `pending` listed for first use. A key also present as a client key stays the
    /// client's. All or nothing: on error nothing changed.
    ///
    /// # Errors
    /// When the store is locked or a key cannot be sealed.
    pub fn replace_config_keys(
        self: &Arc<Self>,
        keep: &[Vec<u8>],
        load: Vec<NewIdentity>,
        pending: Vec<Arc<PendingKey>>,
    ) -> Result<ConfigKeysChange, ReplaceError> {
        let mut change = ConfigKeysChange::default();
        let mut timers = Vec::new();
        {
            let mut inner = self.inner.write();
            if inner.locked {
                return Err(ReplaceError::Locked);
            }
            // Build the new list first; only then swap it in (all or nothing).
            let wanted =
                |blob: &[u8]| keep.iter().any(|k| k == blob) || load.iter().any(|n| n.blob == blob);
            let mut ids: Vec<Arc<Identity>> = Vec::with_capacity(inner.ids.len() + load.len());
            for id in &inner.ids {
                if id.origin == Origin::Config && !wanted(&id.blob) {
                    change.removed += 1;
                } else {
                    ids.push(id.clone());
                }
            }
            let mut next_serial = inner.next_serial;
            for new in load {
                if let Some(existing) = ids.iter().position(|i| i.blob == new.blob) {
                    let same = ids
                        .get(existing)
                        .is_some_and(|i| i.origin == Origin::Client || i.confirm == new.confirm);
                    if same {
                        change.kept += 1;
                        continue;
                    }
                }
                let serial = next_serial;
                next_serial = next_serial.wrapping_add(1);
                let sealed = self
                    .shield
                    .seal(&new.private, &context(serial))
                    .map_err(|_| ReplaceError::Seal)?;
                let identity = Arc::new(Identity::from_new(serial, new, sealed, Origin::Config));
                if let Some(deadline) = identity.expires {
                    timers.push((serial, deadline));
                }
                match ids.iter().position(|i| i.blob == identity.blob) {
                    Some(pos) => {
                        if let Some(slot) = ids.get_mut(pos) {
                            *slot = identity;
                        }
                    }
                    None => ids.push(identity),
                }
                change.added += 1;
            }
            change.kept += keep
                .iter()
                .filter(|b| ids.iter().any(|i| i.blob == **b))
                .count();
            let pending: Vec<_> = pending
                .into_iter()
                .filter(|p| !ids.iter().any(|i| i.blob == p.blob))
                .collect();
            change.pending = pending.len();
            inner.ids = ids;
            inner.pending = pending;
            inner.next_serial = next_serial;
            self.changed(&mut inner);
        }
        for (serial, deadline) in timers {
            self.schedule_expiry(serial, deadline);
        }
        Ok(change)
    }

    /// Blobs of the configuration keys loaded now.
    pub fn config_blobs(&self) -> Vec<Vec<u8>> {
        self.inner
            .read()
            .ids
            .iter()
            .filter(|i| i.origin == Origin::Config)
            .map(|i| i.blob.clone())
            .collect()
    }

    /// The pending (first-use) key with this blob, if listed.
    pub fn pending_key(&self, blob: &[u8]) -> Option<Arc<PendingKey>> {
        self.inner
            .read()
            .pending
            .iter()
            .find(|p| p.blob == blob)
            .cloned()
    }

    /// Every pending (first-use) key, in listing order.
    pub fn pending_keys(&self) -> Vec<Arc<PendingKey>> {
        self.inner.read().pending.clone()
    }
}
