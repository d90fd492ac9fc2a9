//! The state shared by every connection of one agent.

use std::sync::Arc;

use crate::keystore::KeyStore;
use crate::lock::LockState;
use crate::signer::SignerPool;
use crate::Config;

/// One agent: its keys, lock, signing pool and settings.
pub struct Agent {
    pub(crate) config: Config,
    pub(crate) keys: Arc<KeyStore>,
    pub(crate) lock: LockState,
    pub(crate) signer: SignerPool,
}

impl Agent {
    /// Creates an agent with no keys. Starts the signing threads.
    ///
    /// # Errors
    /// When the signing threads cannot be started.
    pub fn try_new(config: Config) -> std::io::Result<Arc<Agent>> {
        let signer = SignerPool::new(config.signer_threads)?;
        let keys = KeyStore::new().map_err(std::io::Error::other)?;
        Ok(Arc::new(Agent {
            config,
            keys,
            lock: LockState::new(),
            signer,
        }))
    }

    /// The identity table (for loading keys at start-up and for tests).
    pub fn keys(&self) -> &Arc<KeyStore> {
        &self.keys
    }

    /// Whether the agent is locked.
    pub fn is_locked(&self) -> bool {
        self.lock.is_locked()
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }
}
