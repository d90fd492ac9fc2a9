//! The state shared by every connection of one agent.

use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use secretivex_audit::AuditHandle;
use secretivex_policy::Policy;

use crate::approval::Approvals;
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
    /// The signing policy; swapped whole on reload, read without locking.
    pub(crate) policy: ArcSwap<Policy>,
    /// Live approval windows of `confirm` rules.
    pub(crate) approvals: Approvals,
    /// The audit trail, when configured; swapped whole on reload.
    pub(crate) audit: ArcSwapOption<AuditHandle>,
    /// PKCS#11 modules and their helpers.
    pub(crate) pkcs11: crate::pkcs11_store::Pkcs11Manager,
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
            policy: ArcSwap::from_pointee(Policy::allow_all()),
            approvals: Approvals::default(),
            audit: ArcSwapOption::empty(),
            pkcs11: Default::default(),
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

    /// The signing policy in force.
    pub fn policy(&self) -> arc_swap::Guard<Arc<Policy>> {
        self.policy.load()
    }

    /// Replaces the signing policy (start-up and reload); requests already deciding keep
    /// the one they loaded.
    pub fn set_policy(&self, policy: Arc<Policy>) {
        self.policy.store(policy);
    }

    /// The audit trail, when one is configured.
    pub fn audit(&self) -> arc_swap::Guard<Option<Arc<AuditHandle>>> {
        self.audit.load()
    }

    /// Replaces (or removes) the audit trail (start-up and reload).
    pub fn set_audit(&self, audit: Option<Arc<AuditHandle>>) {
        self.audit.store(audit);
    }

    /// The PKCS#11 token store (settings, loaded modules, helper processes).
    pub fn pkcs11(&self) -> &crate::pkcs11_store::Pkcs11Manager {
        &self.pkcs11
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }
}
