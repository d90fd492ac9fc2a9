//! The state shared by every connection of one agent.

use std::sync::Arc;

use crate::keystore::KeyStore;
use crate::lock::LockState;
use crate::metrics::Metrics;
use crate::signer::SignerPool;
use crate::Config;

/// One agent: its keys, lock, signing pool and settings.
pub struct Agent {
    pub(crate) config: Config,
    pub(crate) keys: Arc<KeyStore>,
    pub(crate) lock: LockState,
    pub(crate) signer: SignerPool,
    pub(crate) metrics: Metrics,
    /// Connections being served now, for `max_connections`.
    pub(crate) connections: std::sync::atomic::AtomicUsize,
}

impl Agent {
    /// Creates an agent with no keys. Starts the signing threads.
    ///
    /// # Errors
    /// When the signing threads cannot be started.
    pub fn try_new(config: Config) -> std::io::Result<Arc<Agent>> {
        let signer = SignerPool::with_timeout(config.signer_threads, config.sign_timeout)?;
        let keys = KeyStore::new().map_err(std::io::Error::other)?;
        Ok(Arc::new(Agent {
            config,
            keys,
            lock: LockState::new(),
            signer,
            metrics: Metrics::new(),
            connections: std::sync::atomic::AtomicUsize::new(0),
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

    /// The counters and histograms.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }
}
