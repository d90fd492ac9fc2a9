//! Encrypted key files configured with `unlock = "first-use"`: listed at once from their
//! public part (readable without the passphrase in `openssh-key-v1` files), unlocked
//! through askpass by the first signature that asks for them.

use std::path::PathBuf;
use std::time::Duration;

use secretivex_keys::fingerprint_of_blob;

use crate::keystore::{AddOutcome, Origin};
use crate::{keysource, Agent};

/// A key listed but not yet loaded.
pub struct PendingKey {
    /// Public key blob, as listed.
    pub blob: Vec<u8>,
    /// Listed comment: the file's path (the real comment is inside the encrypted part).
    pub comment: String,
    /// `SHA256:...` fingerprint.
    pub fingerprint: String,
    /// The key file.
    pub path: PathBuf,
    /// `confirm` of its `[[keys]]` entry.
    pub confirm: bool,
    /// Lifetime once loaded.
    pub lifetime: Option<Duration>,
    /// Held while unlocking, so concurrent signatures for the key share one prompt.
    unlocking: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for PendingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingKey")
            .field("fingerprint", &self.fingerprint)
            .field("path", &self.path)
            .finish()
    }
}

impl PendingKey {
    /// A pending key for the file at `path` whose public blob is `blob`.
    ///
    /// # Errors
    /// When the blob is not a public key the agent can fingerprint.
    pub fn new(
        blob: Vec<u8>,
        path: PathBuf,
        confirm: bool,
        lifetime: Option<Duration>,
    ) -> Result<PendingKey, secretivex_keys::KeyError> {
        Ok(PendingKey {
            fingerprint: fingerprint_of_blob(&blob)?,
            comment: path.display().to_string(),
            blob,
            path,
            confirm,
            lifetime,
            unlocking: tokio::sync::Mutex::new(()),
        })
    }
}

/// Called by the sign path when no loaded key has `blob`: unlocks a pending key file with
/// that public key (through askpass) and loads it. Returns whether the key is now loaded.
/// A refused or failed prompt leaves the key pending, so a later signature asks again.
pub(crate) async fn unlock_for_sign(agent: &Agent, blob: &[u8]) -> bool {
    let Some(pending) = agent.keys.pending_key(blob) else {
        return false;
    };
    let _one_prompt = pending.unlocking.lock().await;
    if agent.keys.find(blob).is_some() {
        return true; // another request unlocked it while this one waited
    }
    if agent.keys.pending_key(blob).is_none() {
        return false; // a reload or `ssh-add -D` dropped it meanwhile
    }
    let path = pending.path.clone();
    let askpass = agent.config.askpass.clone();
    let read =
        tokio::task::spawn_blocking(move || keysource::read_key_file(&path, askpass.as_deref()))
            .await;
    let keys = match read {
        Ok(Ok(keys)) => keys,
        Ok(Err(e)) => {
            tracing::warn!(fingerprint = %pending.fingerprint, error = %e, "first-use unlock failed");
            return false;
        }
        Err(e) => {
            tracing::warn!(error = %e, "first-use unlock task failed");
            return false;
        }
    };
    if !keys.iter().any(|k| k.blob() == blob) {
        tracing::warn!(path = %pending.path.display(), "key file changed since it was listed; not loaded");
        return false;
    }
    let mut loaded = false;
    for key in keys {
        let is_it = key.blob() == blob;
        let outcome = agent.keys.add_from(
            key.into_new(pending.confirm, pending.lifetime),
            Origin::Config,
            |_| true,
        );
        loaded |= is_it && matches!(outcome, AddOutcome::Added | AddOutcome::Replaced);
    }
    tracing::info!(fingerprint = %pending.fingerprint, loaded, "first-use key unlocked");
    loaded
}
