//! [`Vault`]: the key directory, its in-memory index, and the AEAD operations.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use parking_lot::Mutex;
use zeroize::{Zeroize, Zeroizing};

use crate::keyfile::{self, KeyFile, KeyId, KeyMeta};
use crate::VaultError;

mod issue;

/// Bytes of the random nonce that starts every ciphertext.
pub const NONCE_LEN: usize = 12;
/// Bytes of the authentication tag that ends every ciphertext.
pub const TAG_LEN: usize = 16;
/// Largest key file read at open (a valid one is far smaller).
const MAX_KEY_FILE: u64 = 256 * 1024;
/// Writer locks (striped by key id) serializing writes and the shredding of one key file.
const WRITER_STRIPES: usize = 64;

/// A test hook run while a key file is written (see `issue::Step`).
#[cfg(test)]
type WriteHook = std::sync::Arc<dyn Fn(&KeyId, issue::Step) + Send + Sync>;

/// Counters for operators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VaultStats {
    /// Keys held.
    pub keys: u64,
    /// Keys created by this process.
    pub created: u64,
    /// Keys destroyed by this process.
    pub destroyed: u64,
    /// Sources or scent ids not recorded because a key's metadata was full.
    pub metadata_not_recorded: u64,
    /// Key files skipped at open because they did not parse.
    pub unreadable: u64,
}

#[derive(Default)]
struct Index {
    meta: HashMap<KeyId, KeyMeta>,
    by_signature: HashMap<String, KeyId>,
    by_source: HashMap<String, Vec<KeyId>>,
    by_scent: HashMap<String, Vec<KeyId>>,
    /// Signatures whose key is being created (file being written, lock released), with
    /// the number of callers creating it: each counts as one key against `max_keys`.
    pending: HashMap<String, usize>,
}

impl Index {
    fn link(&mut self, id: KeyId, meta: &KeyMeta) {
        self.by_signature.insert(meta.signature.clone(), id);
        for (map, values) in [
            (&mut self.by_source, &meta.sources),
            (&mut self.by_scent, &meta.scent_ids),
        ] {
            for v in values {
                let ids = map.entry(v.clone()).or_default();
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
    }

    fn unlink(&mut self, id: KeyId) -> Option<KeyMeta> {
        let meta = self.meta.remove(&id)?;
        if self.by_signature.get(&meta.signature) == Some(&id) {
            self.by_signature.remove(&meta.signature);
        }
        for (map, values) in [
            (&mut self.by_source, &meta.sources),
            (&mut self.by_scent, &meta.scent_ids),
        ] {
            for v in values {
                if let Some(ids) = map.get_mut(v) {
                    ids.retain(|k| *k != id);
                    if ids.is_empty() {
                        map.remove(v);
                    }
                }
            }
        }
        Some(meta)
    }

    fn lookup(&self, map: &HashMap<String, Vec<KeyId>>, key: &str) -> Vec<(KeyId, String)> {
        map.get(key)
            .into_iter()
            .flatten()
            .filter_map(|id| Some((*id, self.meta.get(id)?.signature.clone())))
            .collect()
    }
}

/// The key directory. All methods block on file I/O: call them off async workers and
/// never from an intercept.
pub struct Vault {
    dir: PathBuf,
    max_keys: usize,
    index: Mutex<Index>,
    created: AtomicU64,
    destroyed: AtomicU64,
    metadata_not_recorded: AtomicU64,
    unreadable: u64,
    /// Keys held (mirrors the index, so `stats` never waits on the index lock).
    keys: AtomicU64,
    /// Held while a key's file is rewritten or shredded (see `issue`): never taken while
    /// holding `index`.
    writers: [Mutex<()>; WRITER_STRIPES],
    #[cfg(test)]
    hook: Mutex<Option<WriteHook>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("dir", &self.dir)
            .field("keys", &self.index.lock().meta.len())
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// Opens `dir` (created 0700 if missing; refused if group or others may access it),
    /// rebuilds the index from its key files, and shreds staging files a crash left.
    /// Key files that do not parse are skipped, logged and counted: what they sealed
    /// reads as erased.
    pub fn open(dir: impl AsRef<Path>, max_keys: usize) -> Result<Vault, VaultError> {
        let dir = dir.as_ref().to_owned();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| VaultError::io(&dir, "cannot create the vault directory", e))?;
        let mode = std::fs::metadata(&dir)
            .map_err(|e| VaultError::io(&dir, "cannot stat the vault directory", e))?
            .mode();
        // Owned by someone else: they could swap key files under us.
        let owner = std::fs::metadata(&dir)
            .map_err(|e| VaultError::io(&dir, "cannot stat the vault directory", e))?
            .uid();
        if owner != rustix::process::geteuid().as_raw() {
            return Err(VaultError::Permissions {
                path: dir,
                mode: mode & 0o7777,
            });
        }
        if mode & 0o077 != 0 {
            return Err(VaultError::Permissions {
                path: dir,
                mode: mode & 0o7777,
            });
        }
        let mut index = Index::default();
        let mut unreadable = 0;
        let entries =
            std::fs::read_dir(&dir).map_err(|e| VaultError::io(&dir, "cannot list", e))?;
        for entry in entries {
            let entry = entry.map_err(|e| VaultError::io(&dir, "cannot list", e))?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".tmp") {
                shred(&path)?;
                continue;
            }
            let Some(id) = name.strip_suffix(".key").and_then(KeyId::from_hex) else {
                continue;
            };
            match read_key_file(&path).and_then(|f| {
                if f.id == id {
                    Ok(f)
                } else {
                    Err(VaultError::Malformed {
                        path: path.clone(),
                        reason: "key id does not match the file name",
                    })
                }
            }) {
                Ok(file) => {
                    index.link(id, &file.meta);
                    index.meta.insert(id, file.meta);
                }
                Err(e) => {
                    // Fail closed: an unreadable key file is shredded, so what it sealed
                    // reads as erased rather than leaving key bytes on disk; if it
                    // cannot be shredded, the vault does not open.
                    unreadable += 1;
                    tracing::warn!(error = %e, "key vault: shredding an unreadable key file");
                    shred(&path)?;
                }
            }
        }
        Ok(Vault {
            dir,
            max_keys: max_keys.max(1),
            created: AtomicU64::new(0),
            destroyed: AtomicU64::new(0),
            metadata_not_recorded: AtomicU64::new(0),
            unreadable,
            keys: AtomicU64::new(index.meta.len() as u64),
            index: Mutex::new(index),
            writers: std::array::from_fn(|_| Mutex::new(())),
            #[cfg(test)]
            hook: Mutex::new(None),
        })
    }

    /// Every key held, with the signature it seals (a snapshot; for garbage collection
    /// of keys whose object is gone).
    pub fn signatures(&self) -> Vec<(KeyId, String)> {
        self.index
            .lock()
            .by_signature
            .iter()
            .map(|(s, id)| (*id, s.clone()))
            .collect()
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Counters.
    pub fn stats(&self) -> VaultStats {
        VaultStats {
            keys: self.keys.load(Ordering::Relaxed),
            created: self.created.load(Ordering::Relaxed),
            destroyed: self.destroyed.load(Ordering::Relaxed),
            metadata_not_recorded: self.metadata_not_recorded.load(Ordering::Relaxed),
            unreadable: self.unreadable,
        }
    }

    /// The key sealing `signature`'s evidence, if the vault holds one.
    pub fn find_signature(&self, signature: &str) -> Option<KeyId> {
        self.index.lock().by_signature.get(signature).copied()
    }

    /// Keys (and their signatures) whose metadata names `source`.
    pub fn find_source(&self, source: &str) -> Vec<(KeyId, String)> {
        let index = self.index.lock();
        index.lookup(&index.by_source, source)
    }

    /// Keys (and their signatures) whose metadata names `scent_id`.
    pub fn find_scent(&self, scent_id: &str) -> Vec<(KeyId, String)> {
        let index = self.index.lock();
        index.lookup(&index.by_scent, scent_id)
    }

    /// The metadata recorded with a key.
    pub fn meta(&self, id: &KeyId) -> Option<KeyMeta> {
        self.index.lock().meta.get(id).cloned()
    }

    /// Encrypts `plaintext` under key `id` with a fresh random nonce, authenticating
    /// `aad` too. Returns `nonce ‖ ciphertext ‖ tag`.
    pub fn encrypt(&self, id: &KeyId, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        let key = self.aead_key(id)?;
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| VaultError::Crypto("random nonce"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let mut body = out.split_off(NONCE_LEN);
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut body,
        )
        .map_err(|_| VaultError::Crypto("encryption failed"))?;
        out.append(&mut body);
        Ok(out)
    }

    /// Decrypts `nonce ‖ ciphertext ‖ tag` made by [`encrypt`](Self::encrypt) with the
    /// same `aad`. [`VaultError::Erased`] if the key is gone; [`VaultError::Tampered`]
    /// if anything was altered.
    pub fn decrypt(&self, id: &KeyId, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        let key = self.aead_key(id)?;
        let tampered = || VaultError::Tampered {
            key_id: id.to_hex(),
        };
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(tampered());
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| tampered())?;
        let mut buf = body.to_vec();
        let len = match key.open_in_place(nonce, Aad::from(aad), &mut buf) {
            Ok(plain) => plain.len(),
            Err(_) => {
                // Whatever the failed open left in the buffer is not handed out.
                buf.zeroize();
                return Err(tampered());
            }
        };
        buf.truncate(len);
        Ok(buf)
    }

    /// Destroys key `id`: its file is overwritten with zeros, synced, unlinked and the
    /// directory synced; the index forgets its metadata. `Ok(false)` if it was not held
    /// (destroying is idempotent).
    ///
    /// The index forgets the key first (short lock), then the file is shredded without
    /// the index lock (lookups and stats never wait on the fsyncs) but holding the key's
    /// writer lock: a metadata rewrite by [`key_for`](Self::key_for) in flight finishes
    /// first and its file is the one shredded; one that starts later sees the key gone
    /// and writes nothing. So no key file is left once this returns `Ok`. A key made
    /// meanwhile for the same signature gets a new id and file.
    pub fn destroy(&self, id: &KeyId) -> Result<bool, VaultError> {
        let meta = {
            let mut index = self.index.lock();
            let meta = index.unlink(*id);
            self.keys.store(index.meta.len() as u64, Ordering::Relaxed);
            meta
        };
        let _writing = self.writer(id).lock();
        let path = self.path_of(id);
        let shredded = match std::fs::symlink_metadata(&path) {
            Ok(_) => shred(&path)
                .and_then(|()| sync_dir(&self.dir))
                .map(|()| true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(VaultError::io(&path, "cannot stat", e)),
        };
        let existed = match shredded {
            Ok(existed) => existed,
            Err(e) => {
                // Still on disk: keep it findable, so a retry can destroy it.
                if let Some(meta) = meta {
                    let mut index = self.index.lock();
                    index.link(*id, &meta);
                    index.meta.insert(*id, meta);
                    self.keys.store(index.meta.len() as u64, Ordering::Relaxed);
                }
                return Err(e);
            }
        };
        let known = meta.is_some();
        if existed || known {
            self.destroyed.fetch_add(1, Ordering::Relaxed);
        }
        Ok(existed || known)
    }

    /// The writer lock of key `id` (see `issue`).
    fn writer(&self, id: &KeyId) -> &Mutex<()> {
        &self.writers[usize::from(id.0[0]) % WRITER_STRIPES]
    }

    /// Test hook: `hook` runs before and after each key file write (see `issue::Step`),
    /// without the index lock.
    #[cfg(test)]
    fn set_write_hook(&self, hook: Option<WriteHook>) {
        *self.hook.lock() = hook;
    }

    fn path_of(&self, id: &KeyId) -> PathBuf {
        self.dir.join(format!("{}.key", id.to_hex()))
    }

    fn aead_key(&self, id: &KeyId) -> Result<LessSafeKey, VaultError> {
        let file = read_key_file(&self.path_of(id)).map_err(|e| match e {
            VaultError::Io { source, .. } if source.kind() == ErrorKind::NotFound => {
                VaultError::Erased {
                    key_id: id.to_hex(),
                }
            }
            // A key file that no longer parses is unusable key material: it reads as
            // erased (and is shredded, so it does not linger on disk).
            VaultError::Malformed { path, .. } => {
                let _ = shred(&path);
                VaultError::Erased {
                    key_id: id.to_hex(),
                }
            }
            other => other,
        })?;
        let unbound = UnboundKey::new(&AES_256_GCM, file.key.as_ref())
            .map_err(|_| VaultError::Crypto("bad key length"))?;
        Ok(LessSafeKey::new(unbound))
    }
}

fn read_key_file(path: &Path) -> Result<KeyFile, VaultError> {
    // Never through a symlink (someone else's file standing in for a key).
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(|e| VaultError::io(path, "cannot open", e))?;
    // Pre-sized (capped): a growing buffer would free key bytes unzeroized.
    let size = f.metadata().map(|m| m.len()).unwrap_or(0).min(MAX_KEY_FILE);
    let mut bytes = Zeroizing::new(Vec::with_capacity(
        usize::try_from(size).unwrap_or(0).saturating_add(1),
    ));
    (&mut f)
        .take(MAX_KEY_FILE)
        .read_to_end(&mut bytes)
        .map_err(|e| VaultError::io(path, "cannot read", e))?;
    keyfile::decode(&bytes).map_err(|reason| VaultError::Malformed {
        path: path.to_owned(),
        reason,
    })
}

/// Overwrites a file with zeros, syncs it and unlinks it.
fn shred(path: &Path) -> Result<(), VaultError> {
    let mut f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| VaultError::io(path, "cannot open for shredding", e))?;
    let len = f
        .metadata()
        .map_err(|e| VaultError::io(path, "cannot stat", e))?
        .len();
    let mut zeros = vec![0u8; usize::try_from(len.min(MAX_KEY_FILE)).unwrap_or(0)];
    f.write_all(&zeros)
        .and_then(|()| f.sync_all())
        .map_err(|e| VaultError::io(path, "cannot overwrite", e))?;
    zeros.zeroize();
    drop(f);
    std::fs::remove_file(path).map_err(|e| VaultError::io(path, "cannot unlink", e))
}

fn sync_dir(dir: &Path) -> Result<(), VaultError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| VaultError::io(dir, "cannot sync the directory", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn meta(sig: &str, source: &str, scent: &str) -> KeyMeta {
        KeyMeta {
            signature: sig.into(),
            sources: vec![source.into()],
            scent_ids: vec![scent.into()],
        }
    }

    #[test]
    fn keys_are_found_again_after_reopening_and_gone_after_destroy() {
        let dir = tempfile::tempdir().unwrap();
        let vdir = dir.path().join("vault");
        let v = Vault::open(&vdir, 100).unwrap();
        let a = v.key_for(&meta("spam:a", "10.0.0.1", "s1")).unwrap();
        assert_eq!(v.key_for(&meta("spam:a", "10.0.0.2", "s2")).unwrap(), a);
        let b = v.key_for(&meta("spam:b", "10.0.0.1", "s3")).unwrap();
        let ct = v.encrypt(&a, b"aad", b"secret bytes").unwrap();
        drop(v);
        let v = Vault::open(&vdir, 100).unwrap();
        let mut by_source = v.find_source("10.0.0.1");
        by_source.sort();
        let mut want = vec![(a, "spam:a".to_owned()), (b, "spam:b".to_owned())];
        want.sort();
        assert_eq!(by_source, want);
        assert_eq!(v.find_scent("s2"), vec![(a, "spam:a".to_owned())]);
        assert_eq!(v.decrypt(&a, b"aad", &ct).unwrap(), b"secret bytes");
        assert!(matches!(
            v.decrypt(&a, b"other", &ct),
            Err(VaultError::Tampered { .. })
        ));
        assert!(v.destroy(&a).unwrap());
        assert!(!v.destroy(&a).unwrap());
        assert!(matches!(
            v.decrypt(&a, b"aad", &ct),
            Err(VaultError::Erased { .. })
        ));
        assert!(v.find_scent("s2").is_empty());
        assert_eq!(v.find_source("10.0.0.1"), vec![(b, "spam:b".to_owned())]);
        let mode = std::fs::metadata(&vdir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let names: Vec<_> = std::fs::read_dir(&vdir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![format!("{b}.key")]);
        let fmode = std::fs::metadata(vdir.join(format!("{b}.key")))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(fmode & 0o777, 0o600);
    }

    #[test]
    fn an_open_directory_is_refused_and_the_vault_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(
            Vault::open(dir.path(), 1),
            Err(VaultError::Permissions { .. })
        ));
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let v = Vault::open(dir.path(), 1).unwrap();
        v.key_for(&meta("x:1", "a", "b")).unwrap();
        assert!(matches!(
            v.key_for(&meta("x:2", "a", "b")),
            Err(VaultError::Full { max: 1 })
        ));
    }

    #[test]
    fn unreadable_files_are_skipped_and_leftover_staging_files_shredded() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let bad = KeyId([1; 16]);
        std::fs::write(dir.path().join(format!("{bad}.key")), b"THVK garbage").unwrap();
        std::fs::write(dir.path().join("00.tmp"), b"half a key").unwrap();
        let v = Vault::open(dir.path(), 10).unwrap();
        assert_eq!(v.stats().unreadable, 1);
        assert!(!dir.path().join("00.tmp").exists());
        assert!(
            !dir.path().join(format!("{bad}.key")).exists(),
            "the unreadable key file is shredded at open"
        );
        assert!(matches!(
            v.decrypt(&bad, b"", &[0; 40]),
            Err(VaultError::Erased { .. })
        ));
        // One that turns unreadable later reads as erased and is shredded too.
        let late = KeyId([2; 16]);
        std::fs::write(dir.path().join(format!("{late}.key")), b"THVK junk").unwrap();
        assert!(matches!(
            v.decrypt(&late, b"", &[0; 40]),
            Err(VaultError::Erased { .. })
        ));
        assert!(!dir.path().join(format!("{late}.key")).exists());
    }
}

#[cfg(test)]
#[path = "vault_hygiene_tests.rs"]
mod hygiene_tests;

#[cfg(test)]
#[path = "vault_concurrency_tests.rs"]
mod concurrency_tests;
