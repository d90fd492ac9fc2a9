//! Watcher (spec §18): a pull-based snapshot of threat counters, quarantine fill and
//! alerts, with an alert rate limit per window.
//!
//! Fixes over v1: the alert list is a bounded ring (v1 kept every alert forever), threat
//! counters are lock-free atomics so the intercept path can feed them cheaply, and the
//! clock is injected.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::fail_safe::js_to_fixed;
use crate::types::{Severity, ThreatCategory};

/// Watcher settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WatcherConfig {
    /// Alerts accepted per window; more are rejected.
    pub max_alerts_per_window: u32,
    /// Window length, ms.
    pub alert_window_ms: u64,
    /// Quarantine fill ratio (0..1) at which a `quarantine_high` alert is raised.
    pub quarantine_high_watermark: f64,
    /// Alerts kept for snapshots (oldest dropped first).
    pub max_alert_history: usize,
}

impl Default for WatcherConfig {
    fn default() -> Self {
        WatcherConfig {
            max_alerts_per_window: 10,
            alert_window_ms: 60_000,
            quarantine_high_watermark: 0.8,
            max_alert_history: 1000,
        }
    }
}

/// Alert severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertSeverity {
    /// `info`
    Info,
    /// `warning`
    Warning,
    /// `critical`
    Critical,
}

impl AlertSeverity {
    /// v1's name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertSeverity::Info => "info",
            AlertSeverity::Warning => "warning",
            AlertSeverity::Critical => "critical",
        }
    }
}

/// An alert to raise.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertInput {
    /// Alert type, e.g. `quarantine_high`, `system_overload`.
    pub alert_type: String,
    /// Severity.
    pub severity: AlertSeverity,
    /// Text.
    pub message: String,
    /// Structured context.
    pub context: Option<Value>,
}

/// A stored alert: the input plus `alert-{n}` id and timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// `alert-{n}`, n counting accepted alerts from 1.
    pub id: String,
    /// ms since the epoch.
    pub timestamp: u64,
    /// What was raised.
    pub input: AlertInput,
}

/// Threat counters of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ThreatCounts {
    /// All threats recorded.
    pub total: u64,
    /// Per category, indexed like [`ThreatCategory::ALL`].
    pub by_category: [u64; 6],
    /// Per severity, indexed like [`Severity::ALL`].
    pub by_severity: [u64; 4],
}

/// v1's `snapshot()`.
#[derive(Debug, Clone, PartialEq)]
pub struct WatcherSnapshot {
    /// ms since the watcher was created.
    pub uptime_ms: u64,
    /// Threat counters.
    pub threats: ThreatCounts,
    /// Quarantine entries.
    pub quarantine_count: u64,
    /// Quarantine bytes.
    pub quarantine_bytes: u64,
    /// `bytes / max_bytes * 100`, or 0 with no limit.
    pub capacity_percent: f64,
    /// Alerts accepted so far.
    pub total_alerts: u64,
    /// Alerts rejected by the window limit.
    pub rejected_alerts: u64,
    /// Alerts accepted in the current window.
    pub alerts_in_window: u32,
    /// The most recent alert.
    pub last_alert: Option<Alert>,
    /// The most recent alerts, oldest first (bounded).
    pub recent_alerts: Vec<Alert>,
    /// Overload flag.
    pub overloaded: bool,
    /// When the snapshot was taken.
    pub snapshot_time: u64,
}

#[derive(Debug)]
struct AlertState {
    window_start: u64,
    in_window: u32,
    total: u64,
    rejected: u64,
    recent: VecDeque<Alert>,
    quarantine_count: u64,
    quarantine_bytes: u64,
    capacity_percent: f64,
    overloaded: bool,
}

/// The watcher. `Send + Sync`.
#[derive(Debug)]
pub struct Watcher {
    config: WatcherConfig,
    started_ms: u64,
    total: AtomicU64,
    by_category: [AtomicU64; 6],
    by_severity: [AtomicU64; 4],
    state: Mutex<AlertState>,
}

fn category_index(c: ThreatCategory) -> usize {
    ThreatCategory::ALL
        .iter()
        .position(|x| *x == c)
        .unwrap_or(0)
}

impl Watcher {
    /// A watcher whose uptime counts from `now_ms`.
    pub fn new(config: WatcherConfig, now_ms: u64) -> Self {
        Watcher {
            config,
            started_ms: now_ms,
            total: AtomicU64::new(0),
            by_category: Default::default(),
            by_severity: Default::default(),
            state: Mutex::new(AlertState {
                window_start: now_ms,
                in_window: 0,
                total: 0,
                rejected: 0,
                recent: VecDeque::new(),
                quarantine_count: 0,
                quarantine_bytes: 0,
                capacity_percent: 0.0,
                overloaded: false,
            }),
        }
    }

    /// Counts a threat (lock-free).
    pub fn record_threat(&self, category: ThreatCategory, severity: Severity) {
        self.total.fetch_add(1, Ordering::Relaxed);
        if let Some(c) = self.by_category.get(category_index(category)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(c) = self.by_severity.get(usize::from(severity.rank())) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records quarantine fill; at or above the watermark raises a `quarantine_high`
    /// warning (`Quarantine at {pct}% capacity`, subject to the window limit). Returns
    /// whether an alert was accepted.
    pub fn update_quarantine(&self, count: u64, bytes: u64, max_bytes: u64, now_ms: u64) -> bool {
        let pct = if max_bytes > 0 {
            bytes as f64 / max_bytes as f64 * 100.0
        } else {
            0.0
        };
        {
            let mut s = self.state.lock();
            s.quarantine_count = count;
            s.quarantine_bytes = bytes;
            s.capacity_percent = pct;
        }
        if pct >= self.config.quarantine_high_watermark * 100.0 {
            return self.alert(
                AlertInput {
                    alert_type: "quarantine_high".into(),
                    severity: AlertSeverity::Warning,
                    message: format!("Quarantine at {}% capacity", js_to_fixed(pct, 1)),
                    context: Some(json!({"count": count, "bytes": bytes, "maxBytes": max_bytes})),
                },
                now_ms,
            );
        }
        false
    }

    /// Raises an alert; `false` if the window's limit is reached (v1 `alert`).
    pub fn alert(&self, input: AlertInput, now_ms: u64) -> bool {
        let mut s = self.state.lock();
        if now_ms.saturating_sub(s.window_start) >= self.config.alert_window_ms {
            s.window_start = now_ms;
            s.in_window = 0;
        }
        if s.in_window >= self.config.max_alerts_per_window {
            s.rejected += 1;
            return false;
        }
        s.in_window += 1;
        s.total += 1;
        let alert = Alert {
            id: format!("alert-{}", s.total),
            timestamp: now_ms,
            input,
        };
        while s.recent.len() >= self.config.max_alert_history.max(1) {
            s.recent.pop_front();
        }
        s.recent.push_back(alert);
        true
    }

    /// Sets the overload flag; going from false to true raises a critical
    /// `system_overload` alert.
    pub fn set_overloaded(&self, overloaded: bool, now_ms: u64) {
        let was = {
            let mut s = self.state.lock();
            std::mem::replace(&mut s.overloaded, overloaded)
        };
        if overloaded && !was {
            self.alert(
                AlertInput {
                    alert_type: "system_overload".into(),
                    severity: AlertSeverity::Critical,
                    message: "System overloaded".into(),
                    context: None,
                },
                now_ms,
            );
        }
    }

    /// The current state.
    pub fn snapshot(&self, now_ms: u64) -> WatcherSnapshot {
        let mut threats = ThreatCounts {
            total: self.total.load(Ordering::Relaxed),
            ..ThreatCounts::default()
        };
        for (slot, c) in threats.by_category.iter_mut().zip(&self.by_category) {
            *slot = c.load(Ordering::Relaxed);
        }
        for (slot, c) in threats.by_severity.iter_mut().zip(&self.by_severity) {
            *slot = c.load(Ordering::Relaxed);
        }
        let s = self.state.lock();
        let in_window = if now_ms.saturating_sub(s.window_start) >= self.config.alert_window_ms {
            0
        } else {
            s.in_window
        };
        WatcherSnapshot {
            uptime_ms: now_ms.saturating_sub(self.started_ms),
            threats,
            quarantine_count: s.quarantine_count,
            quarantine_bytes: s.quarantine_bytes,
            capacity_percent: s.capacity_percent,
            total_alerts: s.total,
            rejected_alerts: s.rejected,
            alerts_in_window: in_window,
            last_alert: s.recent.back().cloned(),
            recent_alerts: s.recent.iter().cloned().collect(),
            overloaded: s.overloaded,
            snapshot_time: now_ms,
        }
    }
}
