//! Issuing keys ([`Vault::key_for`]) without holding the index lock over file I/O.
//!
//! The index lock is only taken for short steps that do no I/O; key files are written and
//! synced between them, so lookups (`find_*`), `destroy`'s bookkeeping and other keys'
//! creations never wait on an fsync:
//!
//! * **create** — under the lock the signature is looked up and, if absent, a slot is
//!   reserved in `Index::pending` (counted against `max_keys` once per signature, so
//!   concurrent creators cannot overshoot it). Without the lock a random id and key are
//!   made and the file written and synced. Under the lock again the reservation is
//!   released and the key installed — unless another caller installed one for the same
//!   signature meanwhile: theirs may already seal data, so ours (which sealed nothing) is
//!   shredded and theirs returned, with the caller's metadata merged into it.
//! * **merge** (an existing key gains sources or scent ids) — done holding the key's
//!   writer lock (`Vault::writer`, striped by key id), never the index lock: the merged
//!   metadata is computed from the index under the writer lock, the file rewritten, and
//!   the metadata installed. Merges of one key are serialized (no lost update, no retry
//!   needed); lookups, creations and other keys' merges go on meanwhile.
//! * **destroy** forgets the key under the index lock, then shreds its file holding the
//!   same writer lock: a write of the key in flight finishes first (and is shredded), and a
//!   merge that gets the writer lock after the key was forgotten writes nothing. No key
//!   file outlives the `destroy` of its key.
//!
//! Lock order: a writer lock, then the index lock; never a writer lock while holding the
//! index lock.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::Ordering;

use zeroize::Zeroizing;

use super::{read_key_file, shred, sync_dir, Vault};
use crate::keyfile::{self, KeyId, KeyMeta, KEY_LEN, MAX_FIELD_LEN};
use crate::VaultError;

/// Where a test hook runs (see `Vault::set_write_hook`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Merge path: the key's file was read and checked still held; about to be rewritten.
    #[cfg_attr(not(test), allow(dead_code))]
    Writing,
    /// A key file was written and synced; the index lock is about to be taken again.
    #[cfg_attr(not(test), allow(dead_code))]
    Written,
}

impl Vault {
    /// The key for `meta.signature`, created (random key, file written and synced) on
    /// first use; an existing key's file is rewritten when `meta` names sources or scent
    /// ids it did not record yet.
    ///
    /// No file I/O happens while the vault's index lock is held (see the `issue` module
    /// source for the protocol): concurrent callers for one signature all get the same
    /// key (a creator that lost the race shreds its own file), `max_keys` counts creations
    /// in flight, and a key destroyed while its metadata is being rewritten stays
    /// destroyed (its id is still returned, as if the destroy came just after this call:
    /// using the key reads as [`VaultError::Erased`]).
    pub fn key_for(&self, meta: &KeyMeta) -> Result<KeyId, VaultError> {
        if meta.signature.is_empty() || meta.signature.len() > MAX_FIELD_LEN {
            return Err(VaultError::Invalid(
                "signature must be 1 to 1024 bytes long",
            ));
        }
        {
            let mut index = self.index.lock();
            if let Some(&id) = index.by_signature.get(&meta.signature) {
                let mut merged = index.meta.get(&id).cloned().unwrap_or_default();
                let (changed, dropped) = merged.merge(meta);
                if !changed {
                    self.not_recorded(dropped);
                    return Ok(id);
                }
                drop(index);
                return self.merge_into(id, meta);
            }
            // One slot per signature: creators racing for the same one share it.
            let shared = index.pending.contains_key(&meta.signature);
            if !shared && index.meta.len() + index.pending.len() >= self.max_keys {
                return Err(VaultError::Full { max: self.max_keys });
            }
            *index.pending.entry(meta.signature.clone()).or_default() += 1;
        }
        let made = self.make_key(meta);
        let mut index = self.index.lock();
        if let Some(n) = index.pending.get_mut(&meta.signature) {
            *n -= 1;
            if *n == 0 {
                index.pending.remove(&meta.signature);
            }
        }
        let (id, stored, dropped) = made?;
        if let Some(&theirs) = index.by_signature.get(&meta.signature) {
            drop(index);
            // Theirs may already seal data; ours sealed nothing and nobody knows its id.
            let path = self.path_of(&id);
            shred(&path).and_then(|()| sync_dir(&self.dir))?;
            return self.merge_into(theirs, meta);
        }
        index.link(id, &stored);
        index.meta.insert(id, stored);
        self.keys.store(index.meta.len() as u64, Ordering::Relaxed);
        drop(index);
        self.created.fetch_add(1, Ordering::Relaxed);
        self.not_recorded(dropped);
        Ok(id)
    }

    /// A new random key for `meta`, its file written and synced (no lock held). Returns
    /// the id, the metadata stored and how many sources or scent ids did not fit.
    fn make_key(&self, meta: &KeyMeta) -> Result<(KeyId, KeyMeta, usize), VaultError> {
        let mut id = [0u8; 16];
        aws_lc_rs::rand::fill(&mut id).map_err(|_| VaultError::Crypto("random key id"))?;
        let id = KeyId(id);
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        aws_lc_rs::rand::fill(key.as_mut()).map_err(|_| VaultError::Crypto("random key"))?;
        let mut stored = KeyMeta {
            signature: meta.signature.clone(),
            ..KeyMeta::default()
        };
        let (_, dropped) = stored.merge(meta);
        self.write_key_file(&id, &key, &stored)?;
        self.hook(&id, Step::Written);
        Ok((id, stored, dropped))
    }

    /// Records what `meta` adds to key `id`'s metadata, rewriting its file while holding
    /// the key's writer lock (not the index lock). A key destroyed meanwhile is left
    /// destroyed: nothing is written for it.
    pub(super) fn merge_into(&self, id: KeyId, meta: &KeyMeta) -> Result<KeyId, VaultError> {
        let _writing = self.writer(&id).lock();
        let merged = {
            let index = self.index.lock();
            let Some(current) = index.meta.get(&id) else {
                // Destroyed since it was looked up (destroy waits for this lock before
                // shredding, so nothing of this call reaches the disk).
                return Ok(id);
            };
            let mut merged = current.clone();
            let (changed, dropped) = merged.merge(meta);
            self.not_recorded(dropped);
            if !changed {
                return Ok(id);
            }
            merged
        };
        let key = read_key_file(&self.path_of(&id))?.key;
        self.hook(&id, Step::Writing);
        self.write_key_file(&id, &key, &merged)?;
        self.hook(&id, Step::Written);
        let mut index = self.index.lock();
        // With the writer lock held, only `destroy` changes this key's entry: if it forgot
        // the key meanwhile, it is waiting for the writer lock and shreds the file just
        // written once this returns.
        if index.meta.contains_key(&id) {
            index.link(id, &merged);
            index.meta.insert(id, merged);
        }
        Ok(id)
    }

    fn not_recorded(&self, dropped: usize) {
        if dropped > 0 {
            self.metadata_not_recorded
                .fetch_add(dropped as u64, Ordering::Relaxed);
        }
    }

    /// Test hook: runs at `step` of writing key `id`'s file, without the index lock (and
    /// with the key's writer lock held on the merge path).
    #[cfg(test)]
    fn hook(&self, id: &KeyId, step: Step) {
        let hook = self.hook.lock().clone();
        if let Some(hook) = hook {
            hook(id, step);
        }
    }

    #[cfg(not(test))]
    fn hook(&self, _id: &KeyId, _step: Step) {}

    /// Writes a key file atomically: a 0600 staging file, synced, renamed over the
    /// final name, then the directory synced. Never called with the index lock held.
    fn write_key_file(
        &self,
        id: &KeyId,
        key: &[u8; KEY_LEN],
        meta: &KeyMeta,
    ) -> Result<(), VaultError> {
        let bytes = keyfile::encode(id, key, meta);
        let tmp = self.dir.join(format!("{}.tmp", id.to_hex()));
        let written = (|| -> std::io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()
        })();
        if let Err(e) = written {
            let _ = shred(&tmp);
            return Err(VaultError::io(&tmp, "cannot write the key file", e));
        }
        let path = self.path_of(id);
        std::fs::rename(&tmp, &path)
            .map_err(|e| VaultError::io(&path, "cannot install the key file", e))?;
        sync_dir(&self.dir)
    }
}
