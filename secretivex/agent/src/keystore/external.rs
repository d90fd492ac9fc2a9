//! Keys whose private half lives outside the agent (a PKCS#11 token today; the macOS
//! Secure Enclave is the next store of this kind): listed, constrained, policed and
//! confirmed like any identity, signed through an [`ExternalKey`].
//!
//! A store owns its identities by an owner string (for PKCS#11 the module's canonical
//! path) and replaces them as a set: token keys leave the listing when the token is
//! removed and come back when it returns, without touching any other key. An unchanged
//! key keeps its identity (and serial), so a signature in flight across a refresh is not
//! mistaken for one on a replaced key.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secretivex_proto::DestinationConstraint;
use zeroize::Zeroizing;

use super::{context, Identity, KeyStore, Origin};

/// Why an external store could not sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExternalSignError {
    /// No slot of the store's bounded queue became free within `sign_timeout`.
    #[error("no token session became free within {0:?}")]
    Timeout(Duration),
    /// The store cannot be reached right now (helper restarting, token removed).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store refused or failed the operation.
    #[error("store failed: {0}")]
    Failed(String),
}

/// A signature future of an external store.
pub type SignFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, ExternalSignError>> + Send>>;

/// One key held by an external store.
pub trait ExternalKey: Send + Sync {
    /// The store kind, for metrics and logs (`pkcs11`, `secure-enclave`).
    fn store(&self) -> &'static str;
    /// SSH key type label for metrics (`rsa`, `ecdsa-p256`, `ed25519`, ...).
    fn key_type(&self) -> &'static str;
    /// Signs `data` (SSH agent `flags`), returning an SSH signature blob.
    fn sign(&self, data: Vec<u8>, flags: u32) -> SignFuture;
    /// Which instance of the store holds the key (a module removed and added again is a
    /// new instance): an identity whose instance changed is replaced, not kept.
    fn instance(&self) -> usize {
        0
    }
}

/// Whether `id` is the identity `k` of `owner` would create: same owner, same store
/// instance and the same constraints.
fn unchanged(id: &Identity, owner: &str, k: &ExternalIdentity) -> bool {
    id.blob == k.blob
        && id.owner.as_deref() == Some(owner)
        && id.expires == k.expires
        && id.confirm == k.confirm
        && id.destinations == k.destinations
        && id
            .external
            .as_ref()
            .is_some_and(|e| e.instance() == k.key.instance())
}

/// One key of an external store, as its store lists it.
pub struct ExternalIdentity {
    /// Public key (or certificate) blob as listed.
    pub blob: Vec<u8>,
    pub comment: String,
    pub fingerprint: String,
    pub key: Arc<dyn ExternalKey>,
    /// When the identity is dropped (`ssh-add -s -t`).
    pub expires: Option<Instant>,
    pub confirm: bool,
    pub destinations: Vec<DestinationConstraint>,
}

impl KeyStore {
    /// Makes `keys` the identities of external store `owner`: new ones are appended,
    /// unchanged ones kept as they are, missing ones removed. Returns (added, removed);
    /// nothing changes while the store is locked.
    pub fn set_external(&self, owner: &str, keys: Vec<ExternalIdentity>) -> (usize, usize) {
        let mut inner = self.inner.write();
        if inner.locked {
            return (0, 0);
        }
        // Already expired: never listed (the expiry sweep may not have run yet).
        let now = Instant::now();
        let keys: Vec<_> = keys
            .into_iter()
            .filter(|k| k.expires.is_none_or(|t| t > now))
            .collect();
        let before = inner.ids.len();
        // An identity of this owner stays only if it is exactly what would be created now;
        // a re-added module's new handle or constraints replace it.
        inner.ids.retain(|i| {
            i.owner.as_deref() != Some(owner) || keys.iter().any(|k| unchanged(i, owner, k))
        });
        let removed = before - inner.ids.len();
        let mut added = 0;
        for k in keys {
            if inner.ids.iter().any(|i| i.blob == k.blob) {
                continue; // unchanged, or the same key already added another way
            }
            let serial = inner.next_serial;
            inner.next_serial = inner.next_serial.wrapping_add(1);
            // Nothing secret to seal: the token keeps the private key. The sealed empty
            // body keeps the lock/unlock bookkeeping uniform.
            let Ok(sealed) = self
                .shield
                .seal(&Zeroizing::new(Vec::new()), &context(serial))
            else {
                continue;
            };
            inner.ids.push(Arc::new(Identity {
                serial,
                key: None,
                sealed,
                blob: k.blob,
                comment: k.comment,
                fingerprint: k.fingerprint,
                expires: k.expires,
                confirm: k.confirm,
                destinations: k.destinations,
                origin: Origin::External,
                external: Some(k.key),
                owner: Some(owner.to_string()),
            }));
            added += 1;
        }
        if added + removed > 0 {
            self.changed(&mut inner);
        }
        (added, removed)
    }

    /// Removes every identity of external store `owner`; returns how many.
    pub fn remove_external(&self, owner: &str) -> usize {
        let mut inner = self.inner.write();
        let before = inner.ids.len();
        inner.ids.retain(|i| i.owner.as_deref() != Some(owner));
        let removed = before - inner.ids.len();
        if removed > 0 {
            self.changed(&mut inner);
        }
        removed
    }

    /// Number of identities of external store `owner`.
    pub fn external_count(&self, owner: &str) -> usize {
        self.inner
            .read()
            .ids
            .iter()
            .filter(|i| i.owner.as_deref() == Some(owner))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::SealingKey;

    struct Fake;

    impl ExternalKey for Fake {
        fn store(&self) -> &'static str {
            "fake"
        }
        fn key_type(&self) -> &'static str {
            "ed25519"
        }
        fn sign(&self, _data: Vec<u8>, _flags: u32) -> SignFuture {
            Box::pin(async { Ok(vec![1, 2, 3]) })
        }
    }

    fn ext(blob: u8) -> ExternalIdentity {
        ExternalIdentity {
            blob: vec![blob],
            comment: format!("token key {blob}"),
            fingerprint: format!("SHA256:{blob}"),
            key: Arc::new(Fake),
            expires: None,
            confirm: false,
            destinations: Vec::new(),
        }
    }

    fn blobs(store: &KeyStore) -> Vec<u8> {
        store.snapshot().iter().map(|i| i.blob[0]).collect()
    }

    #[test]
    fn set_external_adds_keeps_and_removes_only_its_owners_keys() {
        let store = KeyStore::new().unwrap();
        assert_eq!(store.set_external("a", vec![ext(1), ext(2)]), (2, 0));
        assert_eq!(store.set_external("b", vec![ext(3)]), (1, 0));
        let serial_2 = store.find(&[2]).unwrap().serial;
        // 1 goes, 2 stays as it was (same serial), 4 comes; b's key is untouched.
        assert_eq!(store.set_external("a", vec![ext(2), ext(4)]), (1, 1));
        assert_eq!(blobs(&store), [2, 3, 4]);
        assert_eq!(store.find(&[2]).unwrap().serial, serial_2);
        assert_eq!(store.external_count("a"), 2);
        assert_eq!(store.remove_external("a"), 2);
        assert_eq!(blobs(&store), [3]);
        let id = store.find(&[3]).unwrap();
        assert_eq!(id.origin, Origin::External);
        assert!(id.key.is_none() && id.external.is_some());
    }

    struct Instance(usize);

    impl ExternalKey for Instance {
        fn store(&self) -> &'static str {
            "fake"
        }
        fn key_type(&self) -> &'static str {
            "ed25519"
        }
        fn sign(&self, _data: Vec<u8>, _flags: u32) -> SignFuture {
            Box::pin(async { Ok(vec![]) })
        }
        fn instance(&self) -> usize {
            self.0
        }
    }

    #[test]
    fn set_external_replaces_identities_whose_instance_or_constraints_changed() {
        let store = KeyStore::new().unwrap();
        assert_eq!(store.set_external("a", vec![ext(1)]), (1, 0));
        let first = store.find(&[1]).unwrap().serial;
        // Same blob, new constraints (a re-added module with -c): replaced.
        let mut confirmed = ext(1);
        confirmed.confirm = true;
        assert_eq!(store.set_external("a", vec![confirmed]), (1, 1));
        let id = store.find(&[1]).unwrap();
        assert!(id.confirm);
        assert_ne!(id.serial, first);
        // Same constraints, new store instance (a new provider): replaced.
        let mut other = ext(1);
        other.confirm = true;
        other.key = Arc::new(Instance(7));
        assert_eq!(store.set_external("a", vec![other]), (1, 1));
        assert_eq!(
            store
                .find(&[1])
                .unwrap()
                .external
                .as_ref()
                .unwrap()
                .instance(),
            7
        );
        // Identical again: kept.
        let mut same = ext(1);
        same.confirm = true;
        same.key = Arc::new(Instance(7));
        assert_eq!(store.set_external("a", vec![same]), (0, 0));
    }

    #[test]
    fn set_external_skips_already_expired_keys() {
        let store = KeyStore::new().unwrap();
        let mut old = ext(1);
        old.expires = Some(Instant::now() - Duration::from_secs(1));
        assert_eq!(store.set_external("a", vec![old, ext(2)]), (1, 0));
        assert_eq!(blobs(&store), [2]);
    }

    #[test]
    fn external_keys_survive_lock_and_unlock() {
        let store = KeyStore::new().unwrap();
        store.set_external("a", vec![ext(1)]);
        let lock_key = SealingKey::random().unwrap();
        assert_eq!(store.seal_all(&lock_key), 1);
        // While locked the set is frozen.
        assert_eq!(store.set_external("a", vec![]), (0, 0));
        assert_eq!(store.unseal_all(&lock_key, |_| None), 1);
        assert!(store.find(&[1]).unwrap().external.is_some());
    }
}
