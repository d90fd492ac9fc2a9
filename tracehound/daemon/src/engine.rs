//! The daemon's state behind every gRPC method: the current agent and configuration
//! (both swapped atomically on reload), the insight tables and the reload counters.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use tracehound_core::agent::{Agent, RuntimeHooks};
use tracehound_core::evidence::EvidenceFactory;
use tracehound_core::quarantine::Quarantine;
use tracehound_core::rate_limit::RateLimiter;
use tracehound_core::state::{SecurityState, SecurityStateConfig};

use crate::audit_log::AuditLog;
use crate::config::{ConfigError, DaemonConfig};
use crate::insight::Insight;

/// Why a configuration could not be applied at start.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ApplyError(pub String);

/// Everything the service reads. Readers never block: the agent and configuration are
/// behind `ArcSwap`, so a reload swaps pointers while in-flight requests finish on the
/// agent they loaded.
pub struct Engine {
    agent: ArcSwap<Agent>,
    config: ArcSwap<DaemonConfig>,
    /// Serialises reloads (readers never take it).
    reload_lock: Mutex<()>,
    pub(crate) insight: Arc<Insight>,
    pub(crate) state: Arc<SecurityState>,
    pub(crate) quarantine: Arc<Quarantine>,
    config_path: Option<PathBuf>,
    generation: AtomicU64,
    reload_failures: AtomicU64,
    /// Requests answered STATUS_ERROR before reaching the agent (bad JSON, unknown names).
    pub(crate) request_errors: AtomicU64,
    started: Instant,
    /// The durable audit log, when `[ledger]` is configured.
    audit_log: Option<AuditLog>,
    /// Cold storage, when `[cold]` is configured.
    cold: Option<crate::cold_wiring::ColdWiring>,
    /// Erasure (GDPR): index, key vault (`[erasure]`), participants.
    erasure: Arc<crate::erasure::Erasure>,
    /// Notification sinks (`[notify]`), when any is configured.
    notifications: Option<crate::notifications::Notifications>,
    /// Lifecycle runs (counters and the lock that serialises them).
    lifecycle: crate::lifecycle_task::LifecycleState,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadOutcome {
    /// The configuration generation now in force.
    pub generation: u64,
    /// Fields that changed in the file but need a restart (kept at their running values).
    pub restart_required: Vec<&'static str>,
}

impl Engine {
    /// Builds the agent for `config` (generation 1).
    pub fn new(config: DaemonConfig, config_path: Option<PathBuf>) -> Result<Engine, ApplyError> {
        config
            .validate()
            .map_err(|(field, message)| ApplyError(format!("field `{field}`: {message}")))?;
        let quarantine = Arc::new(Quarantine::new(config.quarantine_core()));
        let state = Arc::new(SecurityState::new(SecurityStateConfig {
            quarantine_max_bytes: config.quarantine.max_bytes as u64,
            ..SecurityStateConfig::default()
        }));
        let notifications =
            crate::notifications::Notifications::start(&config.notify).map_err(ApplyError)?;
        let hooks = RuntimeHooks {
            state: Some(Arc::clone(&state)),
            notifications: notifications.as_ref().map(|n| Arc::clone(n.emitter())),
            quarantine_max_bytes: config.quarantine.max_bytes as u64,
            ..RuntimeHooks::default()
        };
        let erasure = Arc::new(crate::erasure::Erasure::open(&config).map_err(ApplyError)?);
        if let Some(n) = &notifications {
            erasure.register(n.participant());
            // Events not yet taken by the notifier sit in the emitter's queues.
            erasure.register(Arc::clone(n.emitter()) as _);
        }
        let insight = Arc::new(
            Insight::new(
                config.stats.tracked_sources,
                config.stats.recent_threats,
                hooks,
                Arc::clone(&quarantine),
            )
            .with_erasure_index(Arc::clone(erasure.index())),
        );
        let limiter =
            RateLimiter::new(config.rate_limit.to_core()).map_err(|e| ApplyError(e.to_string()))?;
        let agent = Agent::from_parts(
            config.limits.max_payload_size,
            Arc::new(limiter),
            Arc::clone(&quarantine),
            EvidenceFactory::new(),
        )
        .map_err(|e| ApplyError(e.to_string()))?
        .with_observer(Arc::clone(&insight) as _);
        let audit_log = match &config.ledger {
            Some(settings) => {
                Some(AuditLog::open(settings, Arc::clone(&quarantine)).map_err(ApplyError)?)
            }
            None => None,
        };
        // Cold storage writes from tasks on the daemon's runtime (Engine::new runs inside it).
        let cold = match &config.cold {
            Some(section) => {
                let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
                    ApplyError("[cold] needs to start inside the daemon's tokio runtime".into())
                })?;
                Some(
                    crate::cold_wiring::ColdWiring::start(&section.0, &quarantine, &runtime)
                        .map_err(|e| ApplyError(format!("cold storage: {e}")))?,
                )
            }
            None => None,
        };
        // With a key vault, cold objects are sealed encrypted (set before any intercept).
        if let (Some(cold), Some(sealer)) = (&cold, erasure.sealer()) {
            if !cold.store().set_sealer(sealer) {
                return Err(ApplyError(
                    "cold storage: the key vault sealer could not be installed".into(),
                ));
            }
        }
        // Tombstoned (being erased) evidence is never written to cold storage.
        if let Some(cold) = &cold {
            if !cold.store().set_write_filter(erasure.write_filter()) {
                return Err(ApplyError(
                    "cold storage: the erasure write filter could not be installed".into(),
                ));
            }
        }
        Ok(Engine {
            agent: ArcSwap::from_pointee(agent),
            config: ArcSwap::from_pointee(config),
            reload_lock: Mutex::new(()),
            insight,
            state,
            quarantine,
            config_path,
            generation: AtomicU64::new(1),
            reload_failures: AtomicU64::new(0),
            request_errors: AtomicU64::new(0),
            started: Instant::now(),
            audit_log,
            cold,
            erasure,
            notifications,
            lifecycle: crate::lifecycle_task::LifecycleState::default(),
        })
    }

    /// The lifecycle policy's run state and counters.
    pub fn lifecycle_state(&self) -> &crate::lifecycle_task::LifecycleState {
        &self.lifecycle
    }

    /// The notification pipeline (`[notify]` with at least one sink).
    pub fn notifications(&self) -> Option<&crate::notifications::Notifications> {
        self.notifications.as_ref()
    }

    /// Erasure (GDPR) state: index, key vault, participants.
    pub fn erasure(&self) -> &Arc<crate::erasure::Erasure> {
        &self.erasure
    }

    /// Cold storage, if configured (`[cold]`).
    pub fn cold(&self) -> Option<&crate::cold_wiring::ColdWiring> {
        self.cold.as_ref()
    }

    /// The durable audit log, if configured.
    pub fn audit_log(&self) -> Option<&AuditLog> {
        self.audit_log.as_ref()
    }

    /// The agent in force (a cheap guard; hold it only for one request).
    pub fn agent(&self) -> arc_swap::Guard<Arc<Agent>> {
        self.agent.load()
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<DaemonConfig> {
        self.config.load_full()
    }

    /// The file reloads read, if any.
    pub fn config_path(&self) -> Option<&PathBuf> {
        self.config_path.as_ref()
    }

    /// Successful configuration loads (1 after start).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Refused reloads.
    pub fn reload_failures(&self) -> u64 {
        self.reload_failures.load(Ordering::Relaxed)
    }

    /// Milliseconds since start.
    pub fn uptime_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Re-reads the config file and applies its reloadable part. A file that does not
    /// parse or validate is refused (counted in `reload_failures`) and the running
    /// configuration stays.
    pub fn reload_from_file(&self) -> Result<ReloadOutcome, ConfigError> {
        let Some(path) = &self.config_path else {
            // Nothing to re-read: a reload re-applies the running configuration.
            return Ok(self.apply(DaemonConfig::clone(&self.config())));
        };
        match DaemonConfig::load(path) {
            Ok(new) => Ok(self.apply(new)),
            Err(e) => {
                self.reload_failures.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Applies an already validated configuration's reloadable part.
    pub fn apply(&self, new: DaemonConfig) -> ReloadOutcome {
        let _serial = self.reload_lock.lock();
        let running = self.config.load_full();
        let restart_required = new.restart_only_changes(&running);
        let applied = new.reloadable_part(&running);
        let current = self.agent.load_full();
        // Keep the limiter (and every source's window) unless its settings changed.
        let limiter = if applied.rate_limit == running.rate_limit {
            Arc::clone(current.rate_limiter())
        } else {
            match RateLimiter::new(applied.rate_limit.to_core()) {
                Ok(l) => Arc::new(l),
                // Unreachable after validation; keep the old limiter rather than fail.
                Err(_) => Arc::clone(current.rate_limiter()),
            }
        };
        if let Ok(agent) = current.reconfigured(applied.limits.max_payload_size, limiter) {
            self.agent.store(Arc::new(agent));
        }
        self.config.store(Arc::new(applied));
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        ReloadOutcome {
            generation,
            restart_required,
        }
    }
}
