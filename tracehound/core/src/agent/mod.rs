//! The agent: `intercept(scent)` with v1's order of checks (spec §14):
//!
//! 1. count the intercept;
//! 2. rate-limit the source (clean and flagged scents alike);
//! 3. no threat signal → `clean` (the payload is never read);
//! 4. build evidence (canonical JSON, SHA-256, signature; `payload_too_large` / `error`
//!    on failure);
//! 5. insert into the quarantine: a held signature → `ignored`, else `quarantined` (even
//!    when the new evidence was evicted at once, as in v1).
//!
//! The clean path takes no lock of its own: a rate-limiter shard lock (per source hash),
//! a clock read and two striped atomic counters. `intercept` never panics outward: a
//! panic anywhere below becomes an `error` result with code `INTERCEPT_FAILED`, counted in
//! `error_count` and `panics_caught`.

mod clock;
mod counters;
mod hooks;

pub use clock::{Clock, ManualClock, SystemClock, TscClock};
pub use hooks::{InterceptEvent, InterceptObserver, RuntimeHooks};

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::error::{ErrorCode, TracehoundError};
use crate::evidence::{EvidenceFactory, EvidenceHandle};
use crate::quarantine::{InsertOutcome, Quarantine, QuarantineConfig};
use crate::rate_limit::{RateLimitConfig, RateLimitDecision, RateLimiter};
use crate::types::Scent;
use counters::{Counters, Slot};

/// v1's `createTracehound` options that shape the agent: payload limit, rate limit and
/// quarantine bounds. Defaults are v1's (1 000 000 bytes; 100 per 60 s, 5 min block;
/// 10 000 items / 100 MB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentConfig {
    /// Largest canonical payload (uncompressed UTF-8 bytes) accepted as evidence.
    pub max_payload_size: usize,
    /// Rate limiter settings.
    pub rate_limit: RateLimitConfig,
    /// Quarantine bounds.
    pub quarantine: QuarantineConfig,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            max_payload_size: 1_000_000,
            rate_limit: RateLimitConfig::default(),
            quarantine: QuarantineConfig::default(),
        }
    }
}

/// The outcome of one intercept (v1's `InterceptResult`, discriminated by `status`).
#[derive(Debug, Clone)]
pub enum InterceptResult {
    /// No threat signal: nothing stored.
    Clean,
    /// The source is over its limit; retry after this many ms.
    RateLimited {
        /// v1 `retryAfter`.
        retry_after_ms: u64,
    },
    /// The canonical payload exceeds the agent's limit (`limit` = that limit).
    PayloadTooLarge {
        /// The agent's `max_payload_size`.
        limit: usize,
    },
    /// Same category and content are already quarantined.
    Ignored {
        /// Signature of the evidence already held.
        signature: String,
    },
    /// Stored; the handle is a read-only view (it reports `is_disposed()` if the evidence
    /// was evicted right away).
    Quarantined {
        /// Read-only view of the stored evidence.
        handle: EvidenceHandle,
    },
    /// Evidence could not be built, or something failed inside `intercept`.
    Error {
        /// What failed, with v1's code.
        error: TracehoundError,
    },
}

impl InterceptResult {
    /// v1's `status` string.
    pub fn status(&self) -> &'static str {
        match self {
            InterceptResult::Clean => "clean",
            InterceptResult::RateLimited { .. } => "rate_limited",
            InterceptResult::PayloadTooLarge { .. } => "payload_too_large",
            InterceptResult::Ignored { .. } => "ignored",
            InterceptResult::Quarantined { .. } => "quarantined",
            InterceptResult::Error { .. } => "error",
        }
    }

    /// v1's result as JSON; a quarantined handle shows its public fields
    /// (`signature, hash, size, severity, captured, disposed`).
    pub fn to_json(&self) -> Value {
        match self {
            InterceptResult::Clean => json!({"status": "clean"}),
            InterceptResult::RateLimited { retry_after_ms } => {
                json!({"status": "rate_limited", "retryAfter": retry_after_ms})
            }
            InterceptResult::PayloadTooLarge { limit } => {
                json!({"status": "payload_too_large", "limit": limit})
            }
            InterceptResult::Ignored { signature } => {
                json!({"status": "ignored", "signature": signature})
            }
            InterceptResult::Quarantined { handle } => json!({
                "status": "quarantined",
                "signature": handle.signature(),
                "hash": handle.hash(),
                "size": handle.size(),
                "severity": handle.severity().as_str(),
                "captured": handle.captured(),
                "disposed": handle.is_disposed(),
            }),
            InterceptResult::Error { error } => {
                json!({"status": "error", "error": error.to_json()})
            }
        }
    }
}

/// v1's `getStats()` plus the number of panics caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AgentStats {
    /// Every call.
    pub total_intercepts: u64,
    /// `clean` results.
    pub clean_count: u64,
    /// `rate_limited` results.
    pub rate_limited_count: u64,
    /// `payload_too_large` results.
    pub validation_failures: u64,
    /// `ignored` results (duplicates).
    pub ignored_count: u64,
    /// `quarantined` results.
    pub quarantined_count: u64,
    /// `error` results.
    pub error_count: u64,
    /// Panics caught inside `intercept` (each is also in `error_count`).
    pub panics_caught: u64,
}

impl AgentStats {
    /// v1's JSON shape (`totalIntercepts`, ...), without the Rust-only `panics_caught`.
    pub fn to_v1_json(&self) -> Value {
        json!({
            "totalIntercepts": self.total_intercepts,
            "cleanCount": self.clean_count,
            "rateLimitedCount": self.rate_limited_count,
            "validationFailures": self.validation_failures,
            "ignoredCount": self.ignored_count,
            "quarantinedCount": self.quarantined_count,
            "errorCount": self.error_count,
        })
    }
}

/// The intercepting agent. `Send + Sync`: share it (e.g. in an `Arc`) across threads.
///
/// ```
/// use tracehound_core::agent::{Agent, AgentConfig};
/// use tracehound_core::types::{Scent, Severity, ThreatCategory};
///
/// let agent = Agent::new(AgentConfig::default())?;
/// let scent = Scent::new("req-1", "10.0.0.7", 1.7e12, serde_json::json!({"q": "' OR 1=1"}))
///     .with_threat(ThreatCategory::Injection, Severity::High);
/// assert_eq!(agent.intercept(&scent).status(), "quarantined");
/// assert_eq!(agent.intercept(&scent).status(), "ignored");
/// # Ok::<(), tracehound_core::error::TracehoundError>(())
/// ```
pub struct Agent {
    max_payload_size: usize,
    limiter: Arc<RateLimiter>,
    quarantine: Arc<Quarantine>,
    factory: EvidenceFactory,
    clock: Arc<dyn Clock>,
    /// Shared with agents made by [`Agent::reconfigured`], so counts survive a reload.
    counters: Arc<Counters>,
    observer: Option<Arc<dyn InterceptObserver>>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("max_payload_size", &self.max_payload_size)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// An agent with its own rate limiter, quarantine (fresh audit chain) and an evidence
    /// factory without compression (as v1's `createTracehound`), on a [`TscClock`] (the wall clock read via the CPU counter).
    pub fn new(config: AgentConfig) -> Result<Agent, TracehoundError> {
        let limiter = Arc::new(RateLimiter::new(config.rate_limit)?);
        let quarantine = Arc::new(Quarantine::new(config.quarantine));
        Agent::from_parts(
            config.max_payload_size,
            limiter,
            quarantine,
            EvidenceFactory::new(),
        )
    }

    /// An agent over existing parts (v1 `createAgent(config, quarantine, rateLimiter,
    /// evidenceFactory)`). `max_payload_size` must be positive (`CONFIG_AGENT_INVALID`).
    pub fn from_parts(
        max_payload_size: usize,
        limiter: Arc<RateLimiter>,
        quarantine: Arc<Quarantine>,
        factory: EvidenceFactory,
    ) -> Result<Agent, TracehoundError> {
        check_max_payload_size(max_payload_size)?;
        Ok(Agent {
            max_payload_size,
            limiter,
            quarantine,
            factory,
            clock: Arc::new(TscClock::new()),
            counters: Arc::new(Counters::new()),
            observer: None,
        })
    }

    /// A new agent with another payload limit and rate limiter that shares everything
    /// else with `self`: the quarantine (so no evidence is lost), the counters (so totals
    /// keep growing across the swap), the evidence factory, the clock and the observer.
    ///
    /// Meant for hot reloads: callers swap the new agent in while requests in flight
    /// finish on the old one; both count into the same counters.
    pub fn reconfigured(
        &self,
        max_payload_size: usize,
        limiter: Arc<RateLimiter>,
    ) -> Result<Agent, TracehoundError> {
        check_max_payload_size(max_payload_size)?;
        Ok(Agent {
            max_payload_size,
            limiter,
            quarantine: Arc::clone(&self.quarantine),
            factory: self.factory.clone(),
            clock: Arc::clone(&self.clock),
            counters: Arc::clone(&self.counters),
            observer: self.observer.clone(),
        })
    }

    /// Uses `clock` for "now" (rate limiting, record timestamps).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Agent {
        self.clock = clock;
        self
    }

    /// Reports every intercept to `observer` (e.g. [`RuntimeHooks`] feeding the security
    /// state, watcher, notifications and fail-safe). Without one, nothing extra runs.
    pub fn with_observer(mut self, observer: Arc<dyn InterceptObserver>) -> Agent {
        self.observer = Some(observer);
        self
    }

    /// The quarantine (and through it the audit chain).
    pub fn quarantine(&self) -> &Arc<Quarantine> {
        &self.quarantine
    }

    /// The rate limiter.
    pub fn rate_limiter(&self) -> &Arc<RateLimiter> {
        &self.limiter
    }

    /// The payload limit.
    pub fn max_payload_size(&self) -> usize {
        self.max_payload_size
    }

    /// The clock in use.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// v1 `getStats()`.
    pub fn stats(&self) -> AgentStats {
        let c = &self.counters;
        AgentStats {
            total_intercepts: c.get(Slot::Total),
            clean_count: c.get(Slot::Clean),
            rate_limited_count: c.get(Slot::RateLimited),
            validation_failures: c.get(Slot::ValidationFailures),
            ignored_count: c.get(Slot::Ignored),
            quarantined_count: c.get(Slot::Quarantined),
            error_count: c.get(Slot::Errors),
            panics_caught: c.get(Slot::Panics),
        }
    }

    /// v1 `intercept(scent)`; never panics (see the module docs).
    pub fn intercept(&self, scent: &Scent) -> InterceptResult {
        match catch_unwind(AssertUnwindSafe(|| self.intercept_inner(scent))) {
            Ok(result) => result,
            Err(payload) => {
                self.counters.bump2(Slot::Errors, Slot::Panics);
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned());
                let error = TracehoundError::intercept_catch_all(message.as_deref(), &scent.id);
                InterceptResult::Error { error }
            }
        }
    }

    fn intercept_inner(&self, scent: &Scent) -> InterceptResult {
        self.counters.bump(Slot::Total);
        let now = self.clock.now_ms();
        let decision = self.limiter.check(&scent.source, now);
        let Some(threat) = scent.threat else {
            if let RateLimitDecision::Rejected { retry_after_ms, .. } = decision {
                return self.finish_rate_limited(scent, retry_after_ms, now, decision);
            }
            self.counters.bump(Slot::Clean);
            let result = InterceptResult::Clean;
            if let Some(obs) = &self.observer {
                obs.observe(&InterceptEvent::new(scent, &result, now, decision));
            }
            return result;
        };
        if let RateLimitDecision::Rejected { retry_after_ms, .. } = decision {
            return self.finish_rate_limited(scent, retry_after_ms, now, decision);
        }
        let evidence = match self.factory.create(scent, threat, self.max_payload_size) {
            Ok(ev) => ev,
            Err(error) => {
                let result = if error.error_code() == ErrorCode::AgentPayloadTooLarge {
                    self.counters.bump(Slot::ValidationFailures);
                    InterceptResult::PayloadTooLarge {
                        limit: self.max_payload_size,
                    }
                } else {
                    self.counters.bump(Slot::Errors);
                    InterceptResult::Error {
                        error: with_scent_context(error, &scent.id),
                    }
                };
                if let Some(obs) = &self.observer {
                    obs.observe(&InterceptEvent::new(scent, &result, now, decision));
                }
                return result;
            }
        };
        // One lock for insert (which also answers the duplicate check) and the totals the
        // observer reports.
        let (outcome, count, bytes) = self.quarantine.with_store(|s| {
            let outcome = s.insert(evidence, now as f64);
            (outcome, s.len(), s.bytes())
        });
        let (result, evicted) = match outcome {
            InsertOutcome::Inserted {
                handle, evicted, ..
            } => {
                self.counters.bump(Slot::Quarantined);
                (InterceptResult::Quarantined { handle }, evicted)
            }
            InsertOutcome::Duplicate { existing, rejected } => {
                // v1 neutralizes the fresh evidence and discards the record: dropping it
                // is the same, nothing reaches the audit chain.
                drop(rejected);
                self.counters.bump(Slot::Ignored);
                (
                    InterceptResult::Ignored {
                        signature: existing.signature().to_owned(),
                    },
                    Vec::new(),
                )
            }
        };
        if let Some(obs) = &self.observer {
            let mut event = InterceptEvent::new(scent, &result, now, decision);
            event.evicted = &evicted;
            event.quarantine_totals = Some((count, bytes));
            obs.observe(&event);
        }
        result
    }

    fn finish_rate_limited(
        &self,
        scent: &Scent,
        retry_after_ms: u64,
        now: u64,
        decision: RateLimitDecision,
    ) -> InterceptResult {
        self.counters.bump(Slot::RateLimited);
        let result = InterceptResult::RateLimited { retry_after_ms };
        if let Some(obs) = &self.observer {
            obs.observe(&InterceptEvent::new(scent, &result, now, decision));
        }
        result
    }
}

/// v1's factory catch-all carries `{scentId}`; errors raised below the factory (nesting
/// too deep) get it here.
fn with_scent_context(error: TracehoundError, scent_id: &str) -> TracehoundError {
    if error.error_code() == ErrorCode::EvidenceCreationFailed && error.context().is_none() {
        TracehoundError::evidence_creation_failed(Some(error.message()), scent_id)
    } else {
        error
    }
}

/// v1's `createAgent` check: the payload limit must be positive (`CONFIG_AGENT_INVALID`).
fn check_max_payload_size(max_payload_size: usize) -> Result<(), TracehoundError> {
    if max_payload_size == 0 {
        return Err(TracehoundError::invalid_config_agent(
            "maxPayloadSize must be positive",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
