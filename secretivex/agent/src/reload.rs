//! Configuration reload (SIGHUP, watched files): read and validate everything first —
//! the file, the policy, the key files, the audit log — then swap the policy, the audit
//! trail and the configuration's keys. A configuration that does not validate is refused
//! with a warning and the running one stays. Requests are never dropped: the policy and
//! the audit handle are swapped through `arc-swap` (a request keeps the one it loaded),
//! and the key set is replaced in one step under the key store's lock.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use secretivex_audit::{AuditHandle, AuditSpec, Reconfigured};
use secretivex_config::{ConfigError, Loaded, Request};

use crate::keysource::{self, KeyPlan};
use crate::keystore::ConfigKeysChange;
use crate::{activation, Agent};

/// A reload that was refused; the running configuration stays.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The configuration (or a key file it names) does not validate.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The configuration's keys cannot be replaced now.
    #[error("keys not replaced: {0}")]
    Keys(#[from] crate::keystore::ReplaceError),
    /// The configuration file the agent runs with is gone. Taking that as "no file" would
    /// silently drop the policy, the audit trail and the configuration's keys.
    #[error("configuration file {0} is gone; to drop settings, edit the file instead")]
    FileGone(PathBuf),
    /// The reload task itself failed.
    #[error("reload task failed: {0}")]
    Task(String),
}

/// A configuration read and validated, not yet in force.
pub struct Prepared {
    /// The merged configuration.
    pub loaded: Loaded,
    /// Its keys.
    pub keys: KeyPlan,
}

/// Everything a reload needs to read the configuration again the way the agent started.
pub struct Reloader {
    agent: Arc<Agent>,
    request: Request,
    extra_keys: Vec<PathBuf>,
    home: Option<PathBuf>,
    /// The `[audit]` in force, to reopen the log only when it changed.
    audit_spec: Mutex<Option<AuditSpec>>,
    /// The configuration in force (for `--print-config`-like logging of what changed).
    current: Mutex<Option<secretivex_config::ConfigFile>>,
    /// Files to watch, refreshed by each reload.
    watched: tokio::sync::watch::Sender<Vec<PathBuf>>,
    /// The configuration file in force, if any.
    file: Mutex<Option<PathBuf>>,
}

/// What the configuration's loading and key plan come to, before the agent exists.
///
/// # Errors
/// When the configuration or a key file does not validate. With `decrypt` false,
/// encrypted keys are only parsed (their public part), never unlocked (`--check-config`).
pub fn prepare(
    request: &Request,
    extra_keys: &[PathBuf],
    loaded_now: &[Vec<u8>],
    askpass: Option<&Path>,
    decrypt: bool,
) -> Result<Prepared, ConfigError> {
    let loaded = secretivex_config::load(request)?;
    let home = request.env.home();
    let keys = keysource::plan(
        &loaded,
        extra_keys,
        home.as_deref(),
        loaded_now,
        askpass,
        decrypt,
    )?;
    Ok(Prepared { loaded, keys })
}

impl Reloader {
    /// A reloader for `agent`, started from `request` (the command line's flags and the
    /// environment as they were at start-up) and `extra_keys` (`--key`).
    pub fn new(agent: Arc<Agent>, request: Request, extra_keys: Vec<PathBuf>) -> Arc<Reloader> {
        let home = request.env.home();
        Arc::new(Reloader {
            agent,
            request,
            extra_keys,
            home,
            audit_spec: Mutex::new(None),
            current: Mutex::new(None),
            watched: tokio::sync::watch::Sender::new(Vec::new()),
            file: Mutex::new(None),
        })
    }

    /// The files a watcher should follow (changes with each reload).
    pub fn watched(&self) -> tokio::sync::watch::Receiver<Vec<PathBuf>> {
        self.watched.subscribe()
    }

    /// Puts a prepared configuration in force: keys first (the only step that can fail),
    /// then the audit trail and the policy.
    ///
    /// # Errors
    /// When the keys cannot be replaced (agent locked) or the audit log cannot be opened;
    /// nothing has changed then.
    pub fn apply(&self, prepared: Prepared) -> Result<ConfigKeysChange, ReloadError> {
        let Prepared { loaded, keys } = prepared;
        let mut file_now = self.file.lock();
        if let (Some(running), None) = (file_now.as_ref(), loaded.file.as_ref()) {
            return Err(ReloadError::FileGone(running.clone()));
        }
        let new_spec = loaded.config.audit.clone();
        let mut spec_now = self.audit_spec.lock();
        let reopen = *spec_now != new_spec;
        // A new log file is opened before anything changes, so a bad `[audit]` is refused
        // whole. The same file is never reopened (one writer per chain): its writer is
        // reconfigured in place.
        let same_file = matches!((&*spec_now, &new_spec), (Some(a), Some(b)) if a.path == b.path);
        let opened = match (&new_spec, reopen && !same_file) {
            (Some(spec), true) => Some(open_audit(&loaded, spec)?),
            _ => None,
        };
        let agent_changed = self
            .current
            .lock()
            .as_ref()
            .is_some_and(|c| c.agent != loaded.config.agent);
        if agent_changed {
            tracing::warn!("[agent] settings changed; they take effect when the agent restarts");
        }
        let KeyPlan {
            keep,
            load,
            pending,
            watched,
        } = keys;
        let change = self.agent.keys.replace_config_keys(&keep, load, pending)?;
        if reopen {
            match (new_spec.as_ref(), opened) {
                (_, Some(handle)) => self.agent.set_audit(Some(Arc::new(handle))),
                (Some(spec), None) => {
                    // Same file: the running writer takes the new limits. Reopening would
                    // need the old writer gone, and requests still deciding (a confirm
                    // prompt can last `confirm_timeout`) hold it.
                    if let Some(handle) = self.agent.audit().as_ref() {
                        if handle.reconfigure(spec) == Reconfigured::QueueKept {
                            tracing::warn!("audit queue size takes effect when the agent restarts");
                        }
                    }
                }
                (None, None) => self.agent.set_audit(None),
            }
            *spec_now = new_spec;
        }
        let policy_changed = self
            .current
            .lock()
            .as_ref()
            .is_some_and(|c| c.policy != loaded.config.policy);
        let Loaded {
            config,
            policy,
            file,
            ..
        } = loaded;
        self.agent.set_policy(Arc::new(policy));
        if policy_changed {
            // A window opened under the old rules (say a longer one) must not outlive them.
            self.agent.approvals.clear();
        }
        *file_now = file;
        *self.current.lock() = Some(config);
        self.watched.send_replace(watched);
        Ok(change)
    }

    /// Reads, validates and applies the configuration again. Blocking parts (files,
    /// askpass) run on a blocking thread. On error the running configuration stays.
    ///
    /// # Errors
    /// Why the new configuration was refused.
    pub async fn reload(self: &Arc<Self>) -> Result<ConfigKeysChange, ReloadError> {
        activation::notify_reloading();
        let this = self.clone();
        let prepared = tokio::task::spawn_blocking(move || {
            let loaded_now = this.agent.keys.config_blobs();
            prepare(
                &this.request,
                &this.extra_keys,
                &loaded_now,
                this.agent.config.askpass.as_deref(),
                true,
            )
        })
        .await
        .map_err(|e| ReloadError::Task(e.to_string()));
        let result = match prepared {
            Ok(Ok(p)) => self.apply(p),
            Ok(Err(e)) => Err(e.into()),
            Err(e) => Err(e),
        };
        match &result {
            Ok(change) => tracing::info!(?change, "configuration reloaded"),
            Err(e) => {
                tracing::warn!(error = %e, "configuration reload refused; the running one stays")
            }
        }
        activation::notify_ready();
        result
    }

    /// Reloads once per request received on `requests` (SIGHUP, file watcher); requests
    /// that arrive during a reload are merged into the next one. Returns when every
    /// sender is gone.
    pub async fn run(self: Arc<Self>, mut requests: tokio::sync::mpsc::Receiver<()>) {
        while requests.recv().await.is_some() {
            while requests.try_recv().is_ok() {}
            let _ = self.reload().await;
        }
    }

    /// `$HOME` as the reloader saw it at start-up.
    pub fn home(&self) -> Option<&Path> {
        self.home.as_deref()
    }
}

fn open_audit(loaded: &Loaded, spec: &AuditSpec) -> Result<AuditHandle, ReloadError> {
    AuditHandle::open(spec).map_err(|e| ReloadError::Config(loaded.error_at("audit.path", e)))
}

#[cfg(test)]
#[path = "reload_tests.rs"]
mod tests;
