//! The PKCS#11 token store: modules added with `ssh-add -s` (or the configuration), each
//! hosted by its own `secretivex-pkcs11-helper` process, their keys mapped into the key
//! store as external identities (so listing, policy, confirmation and metrics treat them
//! like any key).
//!
//! Per module a supervisor task:
//! * polls the token (`LIST`, every `poll` interval, or at once when a signature reported
//!   the token or key missing): keys that left the token leave the listing, keys that
//!   came back return; while no token is present the helper is restarted (throttled by a
//!   back-off), since many modules only see a re-inserted or re-created token after a
//!   fresh `C_Initialize`;
//! * restarts a helper that died (crash, kill, hung module), with exponential back-off
//!   from 100 ms to 5 s, logging in again with the PIN that worked: the keys come back
//!   without a restart of the agent. A PIN the token refuses, or any other `C_Login`
//!   failure but an absent token, is never retried: the module is dropped with an error
//!   in the log. A restart logs in only to the tokens (serial and label) that accepted
//!   the PIN first, and only while the module file is the one checked at add time.
//!
//! Signing takes one of `sessions` permits of the module (its bounded queue; waiting at
//! most `sign_timeout`), then asks the helper, whose pool of `sessions` threads each own
//! a token session.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use secretivex_pkcs11::wire::{ErrorCode, HelperReply, HelperRequest, TokenKey};
use secretivex_proto::DestinationConstraint;
use tokio::sync::{Notify, Semaphore};
use zeroize::Zeroizing;

use crate::keystore::ExternalIdentity;
use crate::pkcs11_helper::{HelperClient, HelperError, ModuleFile};
use crate::Agent;

mod settings;
mod token_key;
pub use settings::{default_helper, parse_allow_list, Pkcs11Settings, DEFAULT_ALLOW};
use token_key::TokenKeyHandle;

/// How long a `LOGIN` or `LIST` may take (a token scan is slow on real hardware).
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);
/// Helper restart back-off bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Why a module could not be added or removed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Pkcs11Error {
    #[error("adding PKCS#11 modules over a forwarded connection is not allowed")]
    Remote,
    #[error("module {0} is not in the PKCS#11 allow-list")]
    NotAllowed(String),
    #[error("module {0}: {1}")]
    Path(String, String),
    #[error("module {0} is already loaded")]
    AlreadyLoaded(String),
    #[error("module {0} is not loaded")]
    NotLoaded(String),
    #[error("cannot start the PKCS#11 helper: {0}")]
    Helper(String),
    #[error("token login failed ({}): {message}", code.as_str())]
    Login { code: ErrorCode, message: String },
    #[error("the token offers no key the agent can use")]
    NoKeys,
    #[error("the agent is locked")]
    Locked,
}

/// Constraints applied to every key of a module (`ssh-add -s -c -t -h`).
#[derive(Debug, Clone, Default)]
pub struct ModuleConstraints {
    pub lifetime: Option<Duration>,
    pub confirm: bool,
    pub destinations: Vec<DestinationConstraint>,
}

/// One loaded module.
struct Provider {
    /// Canonical module path: the key-store owner and the `ssh-add -e` name.
    id: String,
    module: PathBuf,
    /// The module file checked at add time; re-checked before every helper start.
    file: ModuleFile,
    pin: Zeroizing<Vec<u8>>,
    /// The tokens the PIN was accepted by at the first login: a restarted helper logs in
    /// to these only, never to a token inserted later.
    tokens: Vec<String>,
    constraints: ModuleConstraints,
    expires: Option<Instant>,
    settings: Pkcs11Settings,
    helper: Mutex<Option<Arc<HelperClient>>>,
    permits: Semaphore,
    stopped: AtomicBool,
    /// Wakes the supervisor: stop, or poll now.
    wake: Notify,
}

/// The agent's PKCS#11 modules.
#[derive(Default)]
pub struct Pkcs11Manager {
    settings: Mutex<Pkcs11Settings>,
    providers: Mutex<HashMap<String, Arc<Provider>>>,
    /// Modules being added (helper starting, login in flight); locked after `providers`.
    /// A second add of the same module is refused at once rather than trying the PIN too.
    pending: Mutex<std::collections::HashSet<String>>,
}

/// Removes a pending add when the add finishes, however it finishes.
struct PendingAdd<'a> {
    manager: &'a Pkcs11Manager,
    id: String,
}

impl Drop for PendingAdd<'_> {
    fn drop(&mut self) {
        self.manager.pending.lock().remove(&self.id);
    }
}

impl Pkcs11Manager {
    /// Replaces the settings (modules added later use them).
    pub fn configure(&self, settings: Pkcs11Settings) {
        *self.settings.lock() = settings;
    }

    /// The current settings.
    pub fn settings(&self) -> Pkcs11Settings {
        self.settings.lock().clone()
    }

    /// Process ids of the running helpers, by module (for operators and tests).
    pub fn helper_pids(&self) -> Vec<(String, u32)> {
        self.providers
            .lock()
            .values()
            .filter_map(|p| {
                let pid = p.helper.lock().as_ref().filter(|h| !h.is_dead())?.pid()?;
                Some((p.id.clone(), pid))
            })
            .collect()
    }

    /// Canonical ids of the loaded modules.
    pub fn modules(&self) -> Vec<String> {
        self.providers.lock().keys().cloned().collect()
    }
}

/// Who asks for a module to be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `ssh-add -s` on a connection (forwarded or not): allow-list and remote rules apply.
    Client { forwarded: bool },
    /// A `[[pkcs11]]` table of the owner's configuration: trusted.
    Config,
}

/// Adds module `module` with `pin`: checks the allow-list (for clients), starts its
/// helper, logs in, lists its keys and starts its supervisor. Returns the number of keys.
pub async fn add_module(
    agent: &Arc<Agent>,
    module: &str,
    pin: Zeroizing<Vec<u8>>,
    constraints: ModuleConstraints,
    origin: Origin,
) -> Result<usize, Pkcs11Error> {
    let settings = agent.pkcs11.settings();
    if origin == (Origin::Client { forwarded: true }) && !settings.allow_remote {
        return Err(Pkcs11Error::Remote);
    }
    // Path resolution and the file check block on the file system: off the workers.
    let given = module.to_string();
    let checked = tokio::task::spawn_blocking(move || {
        let canonical = std::fs::canonicalize(&given).map_err(|e| e.to_string())?;
        let file = ModuleFile::check(&canonical)?;
        Ok::<_, String>((canonical, file))
    })
    .await
    .map_err(|e| Pkcs11Error::Path(module.to_string(), e.to_string()))?;
    let (canonical, file) = checked.map_err(|e| Pkcs11Error::Path(module.to_string(), e))?;
    let id = canonical.to_string_lossy().into_owned();
    if matches!(origin, Origin::Client { .. }) && !settings.allow.iter().any(|g| g.matches(&id)) {
        return Err(Pkcs11Error::NotAllowed(id));
    }
    if agent.is_locked() {
        return Err(Pkcs11Error::Locked);
    }
    let _pending = {
        let providers = agent.pkcs11.providers.lock();
        let mut pending = agent.pkcs11.pending.lock();
        if providers.contains_key(&id) || !pending.insert(id.clone()) {
            return Err(Pkcs11Error::AlreadyLoaded(id));
        }
        PendingAdd {
            manager: &agent.pkcs11,
            id: id.clone(),
        }
    };
    let (helper, keys) = start_helper(&settings, &canonical, &pin, &[]).await?;
    if keys.is_empty() {
        helper.kill();
        return Err(Pkcs11Error::NoKeys);
    }
    let mut tokens: Vec<String> = keys.iter().map(|k| k.token.clone()).collect();
    tokens.sort();
    tokens.dedup();
    let provider = Arc::new(Provider {
        id: id.clone(),
        module: canonical,
        file,
        pin,
        tokens,
        expires: constraints.lifetime.map(|l| Instant::now() + l),
        constraints,
        permits: Semaphore::new(settings.sessions.max(1)),
        settings,
        helper: Mutex::new(Some(helper)),
        stopped: AtomicBool::new(false),
        wake: Notify::new(),
    });
    {
        let mut providers = agent.pkcs11.providers.lock();
        if providers.contains_key(&id) {
            return Err(Pkcs11Error::AlreadyLoaded(id));
        }
        providers.insert(id.clone(), provider.clone());
    }
    let added = sync_if_current(agent, &provider, &keys).unwrap_or(0);
    tokio::spawn(supervise(Arc::downgrade(agent), provider));
    Ok(added)
}

/// Removes module `module` (as given to `ssh-add -e`) and its keys.
pub fn remove_module(agent: &Agent, module: &str) -> Result<usize, Pkcs11Error> {
    let id = std::fs::canonicalize(module)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| module.to_string());
    let mut providers = agent.pkcs11.providers.lock();
    let provider = providers.remove(&id);
    let provider = provider.ok_or(Pkcs11Error::NotLoaded(id.clone()))?;
    // Stop and withdraw under the providers lock: a poll or restart that finished
    // meanwhile syncs only under this lock and only for a registered, running provider,
    // so no key can come back after this.
    stop(&provider);
    Ok(agent.keys.remove_external(&id))
}

/// Removes `p` if it is still the registered provider of its path (a module removed and
/// added again is a new provider that this must not touch).
fn remove_provider(agent: &Agent, p: &Arc<Provider>) {
    let mut providers = agent.pkcs11.providers.lock();
    stop(p);
    if providers.get(&p.id).is_some_and(|cur| Arc::ptr_eq(cur, p)) {
        providers.remove(&p.id);
        agent.keys.remove_external(&p.id);
    }
}

/// Syncs `keys` as `p`'s identities, only while `p` is the registered provider of its
/// path and not stopped, checked atomically with the sync (under the providers lock).
/// Returns `None` when `p` is no longer current.
fn sync_if_current(agent: &Agent, p: &Arc<Provider>, keys: &[TokenKey]) -> Option<usize> {
    let providers = agent.pkcs11.providers.lock();
    let current = providers.get(&p.id).is_some_and(|cur| Arc::ptr_eq(cur, p));
    if !current || p.stopped.load(Ordering::Acquire) {
        return None;
    }
    Some(sync_keys(agent, p, keys))
}

/// Withdraws `p`'s keys if `p` is still current (a newer provider of the same path keeps
/// its keys).
fn withdraw_if_current(agent: &Agent, p: &Arc<Provider>) -> usize {
    let providers = agent.pkcs11.providers.lock();
    if providers.get(&p.id).is_some_and(|cur| Arc::ptr_eq(cur, p)) {
        agent.keys.remove_external(&p.id)
    } else {
        0
    }
}

/// Removes every module (REMOVE_ALL_IDENTITIES drops token keys too, as in OpenSSH).
pub fn remove_all(agent: &Agent) -> usize {
    let mut providers = agent.pkcs11.providers.lock();
    providers
        .drain()
        .map(|(id, p)| {
            stop(&p);
            agent.keys.remove_external(&id)
        })
        .sum()
}

fn stop(p: &Provider) {
    p.stopped.store(true, Ordering::Release);
    p.wake.notify_one();
    if let Some(h) = p.helper.lock().take() {
        h.kill();
    }
}

fn login_error(reply: Result<HelperReply, HelperError>) -> Pkcs11Error {
    match reply {
        Ok(HelperReply::Error { code, message }) => Pkcs11Error::Login { code, message },
        Ok(_) => Pkcs11Error::Helper("unexpected reply to LOGIN".into()),
        Err(e) => Pkcs11Error::Helper(e.to_string()),
    }
}

/// Starts a helper for `module` and logs in.
async fn start_helper(
    settings: &Pkcs11Settings,
    module: &Path,
    pin: &Zeroizing<Vec<u8>>,
    tokens: &[String],
) -> Result<(Arc<HelperClient>, Vec<TokenKey>), Pkcs11Error> {
    // Spawned from the calling (runtime worker) thread on purpose, not spawn_blocking:
    // the helper's parent-death signal fires when the *thread* that forked it exits, and
    // blocking-pool threads exit when idle, which would kill a healthy helper.
    let helper = HelperClient::spawn(&settings.helper, module, settings.sessions.max(1))
        .map_err(|e| Pkcs11Error::Helper(format!("{}: {e}", settings.helper.display())))?;
    let login = HelperRequest::Login {
        pin: pin.clone(),
        tokens: tokens.to_vec(),
    };
    match helper.request(&login, CONTROL_TIMEOUT).await {
        Ok(HelperReply::Keys(keys)) => Ok((helper, keys)),
        other => {
            helper.kill();
            Err(login_error(other))
        }
    }
}

/// Makes the key store's identities of `p` match `keys`; returns how many were added.
fn sync_keys(agent: &Agent, p: &Arc<Provider>, keys: &[TokenKey]) -> usize {
    let weak = Arc::downgrade(p);
    let ids = keys
        .iter()
        .filter_map(|k| {
            let fingerprint = secretivex_keys::fingerprint_of_blob(&k.blob).ok()?;
            let key_type = key_type_label(&k.blob)?;
            Some(ExternalIdentity {
                blob: k.blob.clone(),
                comment: k.label.clone(),
                fingerprint,
                key: Arc::new(TokenKeyHandle {
                    provider: weak.clone(),
                    blob: k.blob.clone(),
                    key_type,
                }),
                expires: p.expires,
                confirm: p.constraints.confirm,
                destinations: p.constraints.destinations.clone(),
            })
        })
        .collect();
    let (added, removed) = agent.keys.set_external(&p.id, ids);
    if added + removed > 0 {
        tracing::info!(module = %p.id, added, removed, "PKCS#11 token keys changed");
    }
    added
}

fn key_type_label(blob: &[u8]) -> Option<&'static str> {
    Some(
        match secretivex_keys::key_type_of_blob(blob).ok()?.as_str() {
            "ssh-rsa" => "rsa",
            "ecdsa-sha2-nistp256" => "ecdsa-p256",
            "ecdsa-sha2-nistp384" => "ecdsa-p384",
            "ecdsa-sha2-nistp521" => "ecdsa-p521",
            "ssh-ed25519" => "ed25519",
            _ => return None,
        },
    )
}

/// The per-module supervisor: presence polling, helper restarts, expiry.
async fn supervise(agent: Weak<Agent>, p: Arc<Provider>) {
    let mut backoff = BACKOFF_MIN;
    while !p.stopped.load(Ordering::Acquire) {
        if p.expires.is_some_and(|t| t <= Instant::now()) {
            if let Some(agent) = agent.upgrade() {
                tracing::info!(module = %p.id, "PKCS#11 module lifetime expired; removing it");
                remove_provider(&agent, &p);
            }
            return;
        }
        let live = p.helper.lock().clone().filter(|h| !h.is_dead());
        let step = match live {
            Some(helper) => {
                let deadline = p.expires.map_or(p.settings.poll, |t| {
                    t.saturating_duration_since(Instant::now())
                        .min(p.settings.poll)
                });
                tokio::select! {
                    _ = tokio::time::sleep(deadline) => {}
                    _ = p.wake.notified() => {}
                    _ = helper.closed() => {}
                }
                if p.stopped.load(Ordering::Acquire) {
                    return;
                }
                poll(&agent, &p, &helper).await
            }
            None => {
                // Only the back-off: failing signatures wake the supervisor, and must not
                // turn into a restart per failure.
                tokio::time::sleep(backoff).await;
                if p.stopped.load(Ordering::Acquire) {
                    return;
                }
                restart(&agent, &p).await
            }
        };
        match step {
            Step::Fine => backoff = BACKOFF_MIN,
            Step::Retry => backoff = (backoff * 2).min(BACKOFF_MAX),
            Step::Drop(reason) => {
                tracing::error!(module = %p.id, %reason, "PKCS#11 module dropped; add it again with ssh-add -s");
                if let Some(agent) = agent.upgrade() {
                    remove_provider(&agent, &p);
                }
                return;
            }
        }
    }
}

enum Step {
    Fine,
    Retry,
    Drop(String),
}

/// One presence poll of a live helper.
async fn poll(agent: &Weak<Agent>, p: &Arc<Provider>, helper: &Arc<HelperClient>) -> Step {
    let reply = if helper.is_dead() {
        Err(HelperError::Gone)
    } else {
        helper.request(&HelperRequest::List, CONTROL_TIMEOUT).await
    };
    let Some(agent) = agent.upgrade() else {
        return Step::Fine;
    };
    match reply {
        Ok(HelperReply::Keys(keys)) if !keys.is_empty() => {
            let before = agent.keys.external_count(&p.id);
            if sync_if_current(&agent, p, &keys).is_none() {
                // Removed (ssh-add -e, expiry) while the LIST was in flight.
                return Step::Fine;
            }
            if before != keys.len() {
                agent.metrics.store_refreshed("pkcs11");
            }
            Step::Fine
        }
        Ok(HelperReply::Keys(_))
        | Ok(HelperReply::Error {
            code: ErrorCode::TokenAbsent,
            ..
        }) => {
            // Token gone: its keys leave the listing; a fresh helper re-initializes the
            // module, which is how most modules notice a token that comes back.
            if withdraw_if_current(&agent, p) > 0 {
                tracing::warn!(module = %p.id, "PKCS#11 token removed; its keys are withdrawn");
                agent.metrics.store_refreshed("pkcs11");
            }
            retire(p, helper);
            Step::Retry
        }
        Ok(HelperReply::Error {
            code: code @ (ErrorCode::PinIncorrect | ErrorCode::PinLocked | ErrorCode::LoginFailed),
            message,
        }) => Step::Drop(format!("{}: {message}", code.as_str())),
        Ok(other) => {
            tracing::warn!(module = %p.id, reply = ?other, "PKCS#11 helper: unexpected poll reply; restarting it");
            withdraw_if_current(&agent, p);
            retire(p, helper);
            Step::Retry
        }
        Err(e) => {
            tracing::warn!(module = %p.id, error = %e, "PKCS#11 helper lost; its keys are withdrawn until it is back");
            withdraw_if_current(&agent, p);
            retire(p, helper);
            Step::Retry
        }
    }
}

/// Drops `helper` as the module's helper (killing it).
fn retire(p: &Provider, helper: &Arc<HelperClient>) {
    let mut slot = p.helper.lock();
    if slot.as_ref().is_some_and(|h| Arc::ptr_eq(h, helper)) {
        *slot = None;
    }
    helper.kill();
}

/// Starts a new helper and logs in again with the PIN that worked.
async fn restart(agent: &Weak<Agent>, p: &Arc<Provider>) -> Step {
    // The helper dlopens the module by path: refuse to start it on a swapped file.
    let (path, file) = (p.module.clone(), p.file);
    match tokio::task::spawn_blocking(move || file.recheck(&path)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Step::Drop(format!(
                "module file {} failed its check: {e}; not loading it again",
                p.module.display()
            ))
        }
        Err(e) => return Step::Drop(format!("module file check failed: {e}")),
    }
    let started = start_helper(&p.settings, &p.module, &p.pin, &p.tokens).await;
    let Some(agent) = agent.upgrade() else {
        return Step::Fine;
    };
    match started {
        Ok((helper, keys)) => {
            // Install the helper and sync in one critical section with the check that
            // `p` is still registered and running (remove_module stops under this lock).
            let added = {
                let providers = agent.pkcs11.providers.lock();
                let current = providers.get(&p.id).is_some_and(|cur| Arc::ptr_eq(cur, p));
                if !current || p.stopped.load(Ordering::Acquire) {
                    helper.kill();
                    return Step::Fine;
                }
                *p.helper.lock() = Some(helper);
                sync_keys(&agent, p, &keys)
            };
            agent.metrics.store_restarted("pkcs11");
            tracing::info!(module = %p.id, keys = added, "PKCS#11 helper started again; token keys are back");
            if keys.is_empty() {
                Step::Retry
            } else {
                Step::Fine
            }
        }
        Err(Pkcs11Error::Login { code, message }) if code.is_fatal_login() => {
            Step::Drop(format!("{}: {message}", code.as_str()))
        }
        Err(e) => {
            tracing::debug!(module = %p.id, error = %e, "PKCS#11 helper restart failed; retrying");
            Step::Retry
        }
    }
}

#[cfg(test)]
#[path = "pkcs11_store_tests.rs"]
mod tests;
