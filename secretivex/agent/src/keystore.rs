//! The agent's identities, in insertion order, with a pre-encoded identities answer.
//!
//! Listing is the hottest request under fan-out, so the `IDENTITIES_ANSWER` frame is
//! encoded once per change and shared by every connection that may see all keys.
//! Keys with a lifetime are dropped by a timer task and, as a second line, by a sweep at
//! the start of every request, so an expired key is never used even if the timer is late.
//!
//! Every identity also holds its private key sealed (see [`crate::vault`]): under a random
//! per-agent key while unlocked, under the lock passphrase's key while locked. Locking
//! drops the parsed key pairs; unlocking parses them again from the sealed copies.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use secretivex_keys::KeyPair;
use secretivex_proto::{DestinationConstraint, Identity as WireIdentity, Response};
use zeroize::Zeroizing;

use crate::pending::PendingKey;
use crate::vault::{Sealed, SealingKey, VaultError};

mod config_keys;
mod external;

pub use config_keys::{ConfigKeysChange, ReplaceError};
pub use external::{ExternalIdentity, ExternalKey, ExternalSignError, SignFuture};

/// Where an identity came from. Reloads replace `Config` identities only: a key added
/// with `ssh-add` is never touched by a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Added by a client (`ssh-add`).
    Client,
    /// Loaded from a `[[keys]]` source of the configuration (or `--key`).
    Config,
    /// Held by an external store (a PKCS#11 token); see [`ExternalKey`].
    External,
}

/// One loaded key and its constraints.
pub struct Identity {
    /// Unique per add, so a timer for a replaced key never removes its successor.
    pub serial: u64,
    /// The parsed key pair, shared with in-flight signatures; zeroized when the last
    /// reference goes. `None` while the agent is locked.
    pub key: Option<Arc<KeyPair>>,
    /// The private key in sealable form (an encoded ADD_IDENTITY body), sealed.
    sealed: Sealed,
    /// Public key (or certificate) blob as listed.
    pub blob: Vec<u8>,
    pub comment: String,
    /// `SHA256:...` fingerprint, for prompts and logs.
    pub fingerprint: String,
    /// When the key is dropped; `None` keeps it until removed.
    pub expires: Option<Instant>,
    /// Ask through SSH_ASKPASS before every signature (`ssh-add -c`).
    pub confirm: bool,
    /// `restrict-destination-v00@openssh.com` hops; empty means unrestricted.
    pub destinations: Vec<DestinationConstraint>,
    /// Who added it.
    pub origin: Origin,
    /// The store that signs with this key when its private half is not in the agent.
    pub external: Option<Arc<dyn ExternalKey>>,
    /// The external store instance that owns this identity (PKCS#11: the module path).
    pub owner: Option<String>,
}

impl Identity {
    /// The identity of a newly added key, its private part already sealed under `serial`.
    fn from_new(serial: u64, new: NewIdentity, sealed: Sealed, origin: Origin) -> Identity {
        Identity {
            serial,
            key: Some(new.key),
            sealed,
            blob: new.blob,
            comment: new.comment,
            fingerprint: new.fingerprint,
            expires: new.lifetime.map(|life| Instant::now() + life),
            confirm: new.confirm,
            destinations: new.destinations,
            origin,
            external: None,
            owner: None,
        }
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key material; the fingerprint names the key well enough.
        f.debug_struct("Identity")
            .field("serial", &self.serial)
            .field("fingerprint", &self.fingerprint)
            .field("comment", &self.comment)
            .field("expires", &self.expires)
            .field("confirm", &self.confirm)
            .field("destinations", &self.destinations.len())
            .field("origin", &self.origin)
            .finish()
    }
}

/// What to add: everything of an [`Identity`] but its serial and expiry instant.
pub struct NewIdentity {
    pub key: Arc<KeyPair>,
    /// The private key as an encoded ADD_IDENTITY body (see
    /// [`keyops::sealable_body`](crate::keyops::sealable_body)); sealed at add time.
    pub private: Zeroizing<Vec<u8>>,
    pub blob: Vec<u8>,
    pub comment: String,
    pub fingerprint: String,
    pub lifetime: Option<Duration>,
    pub confirm: bool,
    pub destinations: Vec<DestinationConstraint>,
}

/// Result of [`KeyStore::add`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    Added,
    /// The same key was present and has been replaced with the new constraints.
    Replaced,
    /// The same key is present but not visible to this caller; left untouched.
    Refused,
    /// The store is locked.
    Locked,
    /// The key could not be sealed.
    Failed,
}

#[derive(Default)]
struct Inner {
    ids: Vec<Arc<Identity>>,
    /// Encoded answer frame listing every identity; `None` after a change.
    answer: Option<Arc<Vec<u8>>>,
    next_serial: u64,
    /// Keys are sealed under the lock key and their pairs dropped.
    locked: bool,
    /// Encrypted key files configured to unlock on first use: listed, not yet loaded.
    pending: Vec<Arc<PendingKey>>,
}

/// Thread-safe identity table.
pub struct KeyStore {
    inner: RwLock<Inner>,
    /// Some identity has a lifetime. Lets the per-request sweep skip the lock entirely in
    /// the usual case of keys without one.
    expiring: AtomicBool,
    /// Seals private keys while the store is unlocked.
    shield: SealingKey,
}

/// Authenticated context of a sealed key: its serial, so sealed copies cannot be swapped.
fn context(serial: u64) -> [u8; 8] {
    serial.to_be_bytes()
}

impl Identity {
    /// Same identity with another key state and sealed copy.
    fn with_key(&self, key: Option<Arc<KeyPair>>, sealed: Sealed) -> Identity {
        Identity {
            serial: self.serial,
            key,
            sealed,
            blob: self.blob.clone(),
            comment: self.comment.clone(),
            fingerprint: self.fingerprint.clone(),
            expires: self.expires,
            confirm: self.confirm,
            destinations: self.destinations.clone(),
            origin: self.origin,
            external: self.external.clone(),
            owner: self.owner.clone(),
        }
    }
}

impl KeyStore {
    /// An empty store.
    pub fn new() -> Result<Arc<KeyStore>, VaultError> {
        Ok(Arc::new(KeyStore {
            inner: RwLock::new(Inner::default()),
            expiring: AtomicBool::new(false),
            shield: SealingKey::random()?,
        }))
    }

    /// Adds or replaces a key. `visible` tells whether an existing identity with the same
    /// blob may be touched by this caller (destination constraints, as OpenSSH does).
    /// Keys with a lifetime get a timer task when a tokio runtime is running.
    pub fn add(
        self: &Arc<Self>,
        new: NewIdentity,
        visible: impl Fn(&Identity) -> bool,
    ) -> AddOutcome {
        self.add_from(new, Origin::Client, visible)
    }

    /// [`add`](Self::add) with the identity tagged as coming from `origin`.
    pub fn add_from(
        self: &Arc<Self>,
        new: NewIdentity,
        origin: Origin,
        visible: impl Fn(&Identity) -> bool,
    ) -> AddOutcome {
        let (outcome, serial, expires) = {
            let mut inner = self.inner.write();
            if inner.locked {
                return AddOutcome::Locked;
            }
            let serial = inner.next_serial;
            inner.next_serial = inner.next_serial.wrapping_add(1);
            let Ok(sealed) = self.shield.seal(&new.private, &context(serial)) else {
                return AddOutcome::Failed;
            };
            let identity = Arc::new(Identity::from_new(serial, new, sealed, origin));
            let expires = identity.expires;
            // A pending (first-use) entry for the same key is superseded by the key.
            inner.pending.retain(|p| p.blob != identity.blob);
            let outcome = match inner.ids.iter().position(|i| i.blob == identity.blob) {
                Some(pos) => {
                    let Some(existing) = inner.ids.get(pos) else {
                        return AddOutcome::Refused;
                    };
                    if !visible(existing) {
                        return AddOutcome::Refused;
                    }
                    if let Some(slot) = inner.ids.get_mut(pos) {
                        *slot = identity;
                    }
                    AddOutcome::Replaced
                }
                None => {
                    inner.ids.push(identity);
                    AddOutcome::Added
                }
            };
            self.changed(&mut inner);
            (outcome, serial, expires)
        };
        if let Some(deadline) = expires {
            self.schedule_expiry(serial, deadline);
        }
        outcome
    }

    /// Bookkeeping after any change of the identity list (write lock held).
    fn changed(&self, inner: &mut Inner) {
        inner.answer = None;
        let expiring = inner.ids.iter().any(|i| i.expires.is_some());
        self.expiring.store(expiring, Ordering::Release);
    }

    fn schedule_expiry(self: &Arc<Self>, serial: u64, deadline: Instant) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            // No runtime (plain unit tests): the sweep on access still enforces expiry.
            return;
        };
        let store: Weak<KeyStore> = Arc::downgrade(self);
        handle.spawn(async move {
            tokio::time::sleep_until(deadline.into()).await;
            if let Some(store) = store.upgrade() {
                if store.remove_serial(serial) {
                    tracing::info!(serial, "key lifetime expired, key removed");
                }
            }
        });
    }

    fn remove_serial(&self, serial: u64) -> bool {
        let mut inner = self.inner.write();
        let before = inner.ids.len();
        inner.ids.retain(|i| i.serial != serial);
        let removed = inner.ids.len() != before;
        if removed {
            self.changed(&mut inner);
        }
        removed
    }

    /// Drops every key whose lifetime has passed. Cheap when nothing expires: one atomic
    /// load when no key has a lifetime, else a read lock and one scan of a short list.
    pub fn sweep_expired(&self) -> usize {
        self.sweep_expired_at(Instant::now())
    }

    /// [`sweep_expired`](Self::sweep_expired) with an explicit clock, for tests.
    pub fn sweep_expired_at(&self, now: Instant) -> usize {
        if !self.expiring.load(Ordering::Acquire) {
            return 0;
        }
        let expired = |i: &Arc<Identity>| i.expires.is_some_and(|t| t <= now);
        if !self.inner.read().ids.iter().any(expired) {
            return 0;
        }
        let mut inner = self.inner.write();
        let before = inner.ids.len();
        inner.ids.retain(|i| !expired(i));
        let removed = before - inner.ids.len();
        if removed > 0 {
            self.changed(&mut inner);
        }
        removed
    }

    /// The identity whose public blob is `blob`.
    pub fn find(&self, blob: &[u8]) -> Option<Arc<Identity>> {
        self.inner
            .read()
            .ids
            .iter()
            .find(|i| i.blob == blob)
            .cloned()
    }

    /// Removes the identity with this blob if `visible` allows it.
    pub fn remove(&self, blob: &[u8], visible: impl Fn(&Identity) -> bool) -> bool {
        let mut inner = self.inner.write();
        let Some(pos) = inner.ids.iter().position(|i| i.blob == blob) else {
            return false;
        };
        if !inner.ids.get(pos).is_some_and(|i| visible(i)) {
            return false;
        }
        inner.ids.remove(pos);
        self.changed(&mut inner);
        true
    }

    /// True while the keys are sealed under a lock key.
    pub fn is_locked(&self) -> bool {
        self.inner.read().locked
    }

    /// Locks the store: every private key is re-sealed under `lock_key` and its parsed
    /// key pair dropped. An identity whose sealed copy cannot be handled is removed
    /// rather than kept in the clear. Returns how many keys were sealed.
    pub fn seal_all(&self, lock_key: &SealingKey) -> usize {
        let mut inner = self.inner.write();
        if inner.locked {
            return 0;
        }
        let ids = std::mem::take(&mut inner.ids);
        for id in ids {
            let ctx = context(id.serial);
            let resealed = self
                .shield
                .open(&id.sealed, &ctx)
                .and_then(|plain| lock_key.seal(&plain, &ctx));
            match resealed {
                Ok(sealed) => inner.ids.push(Arc::new(id.with_key(None, sealed))),
                Err(e) => {
                    tracing::error!(fingerprint = %id.fingerprint, error = %e, "cannot seal key; removing it");
                }
            }
        }
        inner.locked = true;
        self.changed(&mut inner);
        inner.ids.len()
    }

    /// Unlocks the store: opens every sealed key with `lock_key` and parses it again with
    /// `parse`. Blocking (key parsing): call from a blocking thread. A key that cannot be
    /// restored is removed. Returns how many keys were restored.
    pub fn unseal_all(
        &self,
        lock_key: &SealingKey,
        parse: impl Fn(&[u8]) -> Option<KeyPair>,
    ) -> usize {
        let mut inner = self.inner.write();
        if !inner.locked {
            return inner.ids.len();
        }
        let ids = std::mem::take(&mut inner.ids);
        for id in ids {
            let ctx = context(id.serial);
            if id.external.is_some() {
                // A token key has no private part here; it only needs its seal renewed.
                match lock_key
                    .open(&id.sealed, &ctx)
                    .and_then(|p| self.shield.seal(&p, &ctx))
                {
                    Ok(sealed) => inner.ids.push(Arc::new(id.with_key(None, sealed))),
                    Err(_) => {
                        tracing::error!(fingerprint = %id.fingerprint, "cannot restore token key after unlock; removing it")
                    }
                }
                continue;
            }
            let restored = lock_key.open(&id.sealed, &ctx).ok().and_then(|plain| {
                let key = parse(plain.as_slice())?;
                let sealed = self.shield.seal(&plain, &ctx).ok()?;
                Some((key, sealed))
            });
            match restored {
                Some((key, sealed)) => inner
                    .ids
                    .push(Arc::new(id.with_key(Some(Arc::new(key)), sealed))),
                None => {
                    tracing::error!(fingerprint = %id.fingerprint, "cannot restore key after unlock; removing it");
                }
            }
        }
        inner.locked = false;
        self.changed(&mut inner);
        inner.ids.len()
    }

    /// Removes every identity; returns how many there were.
    pub fn remove_all(&self) -> usize {
        let mut inner = self.inner.write();
        let n = inner.ids.len();
        inner.ids.clear();
        inner.pending.clear();
        self.changed(&mut inner);
        n
    }

    /// Number of identities.
    pub fn len(&self) -> usize {
        self.inner.read().ids.len()
    }

    /// True when no identity is loaded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when some identity carries destination constraints, so listings may differ
    /// between connections.
    pub fn has_destination_constraints(&self) -> bool {
        self.inner
            .read()
            .ids
            .iter()
            .any(|i| !i.destinations.is_empty())
    }

    /// All identities in order.
    pub fn snapshot(&self) -> Vec<Arc<Identity>> {
        self.inner.read().ids.clone()
    }

    /// The encoded `IDENTITIES_ANSWER` frame listing every identity, built at most once
    /// per change.
    pub fn answer_frame(&self) -> Arc<Vec<u8>> {
        if let Some(frame) = self.inner.read().answer.clone() {
            return frame;
        }
        let mut inner = self.inner.write();
        if let Some(frame) = inner.answer.clone() {
            return frame;
        }
        let frame = Arc::new(encode_listing(
            inner.ids.iter().map(|i| &**i),
            inner.pending.iter().map(|p| &**p),
        ));
        inner.answer = Some(frame.clone());
        frame
    }
}

/// Encodes an `IDENTITIES_ANSWER` frame for the given identities.
pub fn encode_identities<'a>(ids: impl Iterator<Item = &'a Identity>) -> Vec<u8> {
    encode_listing(ids, std::iter::empty())
}

/// Encodes an `IDENTITIES_ANSWER` frame: loaded identities, then pending (first-use) keys.
pub fn encode_listing<'a>(
    ids: impl Iterator<Item = &'a Identity>,
    pending: impl Iterator<Item = &'a PendingKey>,
) -> Vec<u8> {
    let list = ids
        .map(|i| WireIdentity {
            key_blob: i.blob.clone(),
            comment: i.comment.clone(),
        })
        .chain(pending.map(|p| WireIdentity {
            key_blob: p.blob.clone(),
            comment: p.comment.clone(),
        }))
        .collect();
    let mut out = Vec::new();
    Response::Identities(list).encode_frame(&mut out);
    out
}

#[cfg(test)]
mod tests;
