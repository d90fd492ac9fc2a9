//! Fail-safe thresholds (spec §20): memory, quarantine fill and errors per minute mapped
//! to warning / critical / emergency events, with v1's event texts.
//!
//! Additions over v1: an [`ErrorRateWindow`] that turns individual errors into an
//! errors-per-minute figure with an injected clock (v1 expected callers to compute it),
//! and callbacks run outside every lock with panics contained.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

/// A fail-safe level, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PanicLevel {
    /// `warning`
    Warning,
    /// `critical`
    Critical,
    /// `emergency`
    Emergency,
}

impl PanicLevel {
    /// v1's name.
    pub fn as_str(self) -> &'static str {
        match self {
            PanicLevel::Warning => "warning",
            PanicLevel::Critical => "critical",
            PanicLevel::Emergency => "emergency",
        }
    }
}

impl fmt::Display for PanicLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Three ascending thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Level `warning` at or above this.
    pub warning: f64,
    /// Level `critical` at or above this.
    pub critical: f64,
    /// Level `emergency` at or above this.
    pub emergency: f64,
}

impl Thresholds {
    /// v1 `determineLevel`: the highest level whose threshold `value` reaches. NaN
    /// reaches none.
    pub fn level(&self, value: f64) -> Option<PanicLevel> {
        if value >= self.emergency {
            Some(PanicLevel::Emergency)
        } else if value >= self.critical {
            Some(PanicLevel::Critical)
        } else if value >= self.warning {
            Some(PanicLevel::Warning)
        } else {
            None
        }
    }

    /// The threshold of `level`.
    pub fn threshold(&self, level: PanicLevel) -> f64 {
        match level {
            PanicLevel::Warning => self.warning,
            PanicLevel::Critical => self.critical,
            PanicLevel::Emergency => self.emergency,
        }
    }
}

/// v1 `DEFAULT_FAIL_SAFE_CONFIG` plus a history bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailSafeConfig {
    /// Memory ratio thresholds (0.7 / 0.85 / 0.95).
    pub memory: Thresholds,
    /// Quarantine fill ratio thresholds (0.7 / 0.85 / 0.95).
    pub quarantine: Thresholds,
    /// Errors per minute (10 / 50 / 100).
    pub error_rate: Thresholds,
    /// Events kept in history (v1: 100).
    pub history_size: usize,
}

impl Default for FailSafeConfig {
    fn default() -> Self {
        let ratio = Thresholds {
            warning: 0.7,
            critical: 0.85,
            emergency: 0.95,
        };
        FailSafeConfig {
            memory: ratio,
            quarantine: ratio,
            error_rate: Thresholds {
                warning: 10.0,
                critical: 50.0,
                emergency: 100.0,
            },
            history_size: 100,
        }
    }
}

/// Why an event fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailSafeReason {
    /// `memory_threshold`
    MemoryThreshold,
    /// `quarantine_capacity`
    QuarantineCapacity,
    /// `error_rate`
    ErrorRate,
    /// `manual` (from [`FailSafe::panic`])
    Manual,
    /// `process_exhaustion` (declared by v1, never produced)
    ProcessExhaustion,
}

impl FailSafeReason {
    /// v1's name.
    pub fn as_str(self) -> &'static str {
        match self {
            FailSafeReason::MemoryThreshold => "memory_threshold",
            FailSafeReason::QuarantineCapacity => "quarantine_capacity",
            FailSafeReason::ErrorRate => "error_rate",
            FailSafeReason::Manual => "manual",
            FailSafeReason::ProcessExhaustion => "process_exhaustion",
        }
    }
}

/// An event's context: `{current, threshold, details}` (manual events carry only
/// `details`, if any).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FailSafeContext {
    /// The measured value (ratio or errors/min).
    pub current: Option<f64>,
    /// The threshold of the level reached.
    pub threshold: Option<f64>,
    /// v1's human-readable text.
    pub details: Option<String>,
}

/// A fail-safe event.
#[derive(Debug, Clone, PartialEq)]
pub struct FailSafeEvent {
    /// Level reached.
    pub level: PanicLevel,
    /// What was checked.
    pub reason: FailSafeReason,
    /// ms since the epoch, from the caller's clock.
    pub timestamp: u64,
    /// Details.
    pub context: FailSafeContext,
}

/// ECMAScript `Number::toString`.
pub(crate) fn js_number(v: f64) -> String {
    ryu_js::Buffer::new().format(v).to_string()
}

/// ECMAScript `Number.prototype.toFixed(digits)`.
pub(crate) fn js_to_fixed(v: f64, digits: u8) -> String {
    ryu_js::Buffer::new().format_to_fixed(v, digits).to_string()
}

type Callback = Arc<dyn Fn(&FailSafeEvent) + Send + Sync>;

/// The fail-safe. `Send + Sync`.
pub struct FailSafe {
    config: FailSafeConfig,
    history: Mutex<VecDeque<FailSafeEvent>>,
    callbacks: RwLock<Vec<(Option<PanicLevel>, Callback)>>,
    errors: ErrorRateWindow,
}

impl fmt::Debug for FailSafe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailSafe")
            .field("config", &self.config)
            .field("history_len", &self.history.lock().len())
            .finish()
    }
}

impl Default for FailSafe {
    fn default() -> Self {
        Self::new(FailSafeConfig::default())
    }
}

impl FailSafe {
    /// A fail-safe with the given thresholds.
    pub fn new(config: FailSafeConfig) -> Self {
        FailSafe {
            config,
            history: Mutex::new(VecDeque::new()),
            callbacks: RwLock::new(Vec::new()),
            errors: ErrorRateWindow::new(),
        }
    }

    /// The thresholds.
    pub fn config(&self) -> FailSafeConfig {
        self.config
    }

    fn check(
        &self,
        t: &Thresholds,
        value: f64,
        reason: FailSafeReason,
        details: String,
        now_ms: u64,
    ) -> Option<FailSafeEvent> {
        let level = t.level(value)?;
        let event = FailSafeEvent {
            level,
            reason,
            timestamp: now_ms,
            context: FailSafeContext {
                current: Some(value),
                threshold: Some(t.threshold(level)),
                details: Some(details),
            },
        };
        self.trigger(event.clone());
        Some(event)
    }

    /// v1 `checkMemory(used, total)`: ratio `used/total`; details `Memory usage: {pct}%`.
    pub fn check_memory(&self, used: f64, total: f64, now_ms: u64) -> Option<FailSafeEvent> {
        let ratio = used / total;
        let details = format!("Memory usage: {}%", js_to_fixed(ratio * 100.0, 1));
        self.check(
            &self.config.memory,
            ratio,
            FailSafeReason::MemoryThreshold,
            details,
            now_ms,
        )
    }

    /// v1 `checkQuarantine(current, max)`: ratio `current/max`; details `Quarantine: c/m`.
    pub fn check_quarantine(&self, current: f64, max: f64, now_ms: u64) -> Option<FailSafeEvent> {
        let ratio = current / max;
        let details = format!("Quarantine: {}/{}", js_number(current), js_number(max));
        self.check(
            &self.config.quarantine,
            ratio,
            FailSafeReason::QuarantineCapacity,
            details,
            now_ms,
        )
    }

    /// v1 `checkErrorRate(errorsPerMinute)`; details `Error rate: {n}/min`.
    pub fn check_error_rate(&self, errors_per_minute: f64, now_ms: u64) -> Option<FailSafeEvent> {
        let details = format!("Error rate: {}/min", js_number(errors_per_minute));
        self.check(
            &self.config.error_rate,
            errors_per_minute,
            FailSafeReason::ErrorRate,
            details,
            now_ms,
        )
    }

    /// Records one error at `now_ms` and checks the resulting errors-per-minute rate.
    pub fn record_error(&self, now_ms: u64) -> Option<FailSafeEvent> {
        self.errors.record(now_ms);
        let epm = self.errors.per_minute(now_ms);
        self.check_error_rate(epm as f64, now_ms)
    }

    /// Errors recorded through [`record_error`](Self::record_error) in the last minute.
    pub fn errors_per_minute(&self, now_ms: u64) -> u64 {
        self.errors.per_minute(now_ms)
    }

    /// v1 `panic(level, details?)`: a manual event.
    pub fn panic(&self, level: PanicLevel, details: Option<&str>, now_ms: u64) -> FailSafeEvent {
        let event = FailSafeEvent {
            level,
            reason: FailSafeReason::Manual,
            timestamp: now_ms,
            context: FailSafeContext {
                details: details.map(str::to_string),
                ..FailSafeContext::default()
            },
        };
        self.trigger(event.clone());
        event
    }

    /// Appends to the bounded history and calls the callbacks registered for the
    /// event's level and for any level. A panicking callback is contained.
    pub fn trigger(&self, event: FailSafeEvent) {
        {
            let mut h = self.history.lock();
            while h.len() >= self.config.history_size.max(1) {
                h.pop_front();
            }
            h.push_back(event.clone());
        }
        let callbacks: Vec<Callback> = self
            .callbacks
            .read()
            .iter()
            .filter(|(lvl, _)| lvl.is_none_or(|l| l == event.level))
            .map(|(_, cb)| Arc::clone(cb))
            .collect();
        for cb in callbacks {
            let _ = catch_unwind(AssertUnwindSafe(|| cb(&event)));
        }
    }

    /// Calls `cb` for events of `level` (v1 `on`).
    pub fn on(&self, level: PanicLevel, cb: impl Fn(&FailSafeEvent) + Send + Sync + 'static) {
        self.callbacks.write().push((Some(level), Arc::new(cb)));
    }

    /// Calls `cb` for every event (v1 `onAny`).
    pub fn on_any(&self, cb: impl Fn(&FailSafeEvent) + Send + Sync + 'static) {
        self.callbacks.write().push((None, Arc::new(cb)));
    }

    /// Events so far, oldest first (at most `history_size`).
    pub fn history(&self) -> Vec<FailSafeEvent> {
        self.history.lock().iter().cloned().collect()
    }

    /// The most recent event.
    pub fn last_panic(&self) -> Option<FailSafeEvent> {
        self.history.lock().back().cloned()
    }
}

/// Errors per minute over a sliding 60-second window of one-second buckets: O(1) per
/// error, fixed memory, injected clock.
#[derive(Debug)]
pub struct ErrorRateWindow {
    buckets: Mutex<[(u64, u64); 60]>,
}

impl Default for ErrorRateWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl ErrorRateWindow {
    /// An empty window.
    pub fn new() -> Self {
        ErrorRateWindow {
            buckets: Mutex::new([(u64::MAX, 0); 60]),
        }
    }

    /// Counts one error at `now_ms`.
    pub fn record(&self, now_ms: u64) {
        let sec = now_ms / 1000;
        let mut b = self.buckets.lock();
        if let Some(slot) = b.get_mut((sec % 60) as usize) {
            if slot.0 != sec {
                *slot = (sec, 0);
            }
            slot.1 = slot.1.saturating_add(1);
        }
    }

    /// Errors counted in the 60 seconds ending at `now_ms` (the current second included).
    pub fn per_minute(&self, now_ms: u64) -> u64 {
        let sec = now_ms / 1000;
        let oldest = sec.saturating_sub(59);
        self.buckets
            .lock()
            .iter()
            .filter(|(s, _)| *s != u64::MAX && *s >= oldest && *s <= sec)
            .map(|(_, n)| *n)
            .fold(0u64, u64::saturating_add)
    }
}
