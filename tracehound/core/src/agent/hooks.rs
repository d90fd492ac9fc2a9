//! Wiring of intercept results into the runtime parts v1 left disconnected: security
//! state, watcher, notifications and fail-safe. All optional; the agent runs without them.

use std::sync::Arc;

use super::InterceptResult;
use crate::evidence::EvidenceHandle;
use crate::fail_safe::FailSafe;
use crate::notify::{EventBody, EventType, NotificationEmitter, ThreatFacts};
use crate::rate_limit::RateLimitDecision;
use crate::state::SecurityState;
use crate::types::Scent;
use crate::watcher::Watcher;

/// What an observer learns about one intercept.
#[derive(Debug)]
pub struct InterceptEvent<'a> {
    /// The scent as given.
    pub scent: &'a Scent,
    /// What `intercept` returns.
    pub result: &'a InterceptResult,
    /// The agent clock's time of the intercept (ms).
    pub now_ms: u64,
    /// The rate limiter's answer.
    pub rate_decision: RateLimitDecision,
    /// Evidence evicted by this insert, in eviction order (may include the new one).
    pub evicted: &'a [EvidenceHandle],
    /// Quarantine `(count, bytes)` right after an insert attempt.
    pub quarantine_totals: Option<(usize, usize)>,
}

impl<'a> InterceptEvent<'a> {
    pub(super) fn new(
        scent: &'a Scent,
        result: &'a InterceptResult,
        now_ms: u64,
        rate_decision: RateLimitDecision,
    ) -> Self {
        InterceptEvent {
            scent,
            result,
            now_ms,
            rate_decision,
            evicted: &[],
            quarantine_totals: None,
        }
    }
}

/// Receives every intercept. Runs on the intercepting thread after the result is decided,
/// so it must be quick and must not block; a panic in it becomes an `error` result.
pub trait InterceptObserver: Send + Sync {
    /// Called once per intercept.
    fn observe(&self, event: &InterceptEvent<'_>);
}

/// Feeds intercepts into whichever of the runtime parts are present.
///
/// * state: clean/error counters, threats, evidence, evictions, rate limits, quarantine totals;
/// * watcher: threats and quarantine usage (raising its high-watermark alert);
/// * notifications: `threat.detected`, `evidence.quarantined`, `evidence.evicted`,
///   `rate_limit.exceeded` (bounded, non-blocking: drops are counted by the emitter);
/// * fail-safe: every `error` result feeds its errors-per-minute check.
#[derive(Default, Clone)]
pub struct RuntimeHooks {
    /// Unified counters and history.
    pub state: Option<Arc<SecurityState>>,
    /// Pull-based snapshot and alerts.
    pub watcher: Option<Arc<Watcher>>,
    /// Event fan-out.
    pub notifications: Option<Arc<NotificationEmitter>>,
    /// Error-rate thresholds.
    pub fail_safe: Option<Arc<FailSafe>>,
    /// Quarantine byte budget, for the watcher's usage ratio.
    pub quarantine_max_bytes: u64,
}

impl std::fmt::Debug for RuntimeHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeHooks")
            .field("state", &self.state.is_some())
            .field("watcher", &self.watcher.is_some())
            .field("notifications", &self.notifications.is_some())
            .field("fail_safe", &self.fail_safe.is_some())
            .finish()
    }
}

impl RuntimeHooks {
    /// Emits only the event's facts, and only if a subscriber takes it (a refused or
    /// unwanted event is counted, not built); its JSON is built by whoever reads it.
    fn emit(&self, kind: EventType, body: impl FnOnce() -> EventBody, now: u64) {
        if let Some(n) = &self.notifications {
            n.emit_with(kind, body, now);
        }
    }

    fn record_threat(&self, scent: &Scent, now: u64) {
        let Some(t) = scent.threat else { return };
        if let Some(s) = &self.state {
            s.record_threat(t.category, t.severity, now);
        }
        if let Some(w) = &self.watcher {
            w.record_threat(t.category, t.severity);
        }
        self.emit(
            EventType::ThreatDetected,
            || {
                EventBody::Threat(ThreatFacts::new(
                    &scent.id,
                    t.category,
                    t.severity,
                    &scent.source,
                ))
            },
            now,
        );
    }
}

impl InterceptObserver for RuntimeHooks {
    fn observe(&self, ev: &InterceptEvent<'_>) {
        let now = ev.now_ms;
        match ev.result {
            InterceptResult::Clean => {
                if let Some(s) = &self.state {
                    s.record_clean();
                }
            }
            InterceptResult::RateLimited { retry_after_ms } => {
                let blocked = matches!(
                    ev.rate_decision,
                    RateLimitDecision::Rejected { blocked: true, .. }
                );
                if let Some(s) = &self.state {
                    s.record_rate_limit(&ev.scent.source, blocked, now);
                }
                self.emit(
                    EventType::RateLimitExceeded,
                    || EventBody::RateLimited {
                        source: ev.scent.source.as_str().into(),
                        retry_after_ms: *retry_after_ms,
                        blocked,
                    },
                    now,
                );
            }
            InterceptResult::PayloadTooLarge { .. } | InterceptResult::Ignored { .. } => {
                self.record_threat(ev.scent, now);
            }
            InterceptResult::Quarantined { handle } => {
                self.record_threat(ev.scent, now);
                if let Some(s) = &self.state {
                    s.record_evidence(
                        handle.signature(),
                        handle.size() as u64,
                        handle.severity(),
                        now,
                    );
                }
                self.emit(
                    EventType::EvidenceQuarantined,
                    || EventBody::Quarantined(handle.clone()),
                    now,
                );
            }
            InterceptResult::Error { .. } => {
                if let Some(s) = &self.state {
                    s.record_error();
                }
                if let Some(f) = &self.fail_safe {
                    // The fail-safe runs its own callbacks when a threshold is crossed.
                    let _ = f.record_error(now);
                }
            }
        }
        for gone in ev.evicted {
            if let Some(s) = &self.state {
                s.record_eviction(gone.signature(), "capacity", now);
            }
            self.emit(
                EventType::EvidenceEvicted,
                || EventBody::Evicted(gone.clone()),
                now,
            );
        }
        if let Some((count, bytes)) = ev.quarantine_totals {
            if let Some(s) = &self.state {
                s.update_quarantine(count as u64, bytes as u64);
            }
            if let Some(w) = &self.watcher {
                w.update_quarantine(count as u64, bytes as u64, self.quarantine_max_bytes, now);
            }
        }
    }
}
