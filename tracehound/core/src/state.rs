//! Security state (spec §23): one place for the runtime's counters, a bounded history
//! of notable events, and a health verdict.
//!
//! Counters are atomics so the intercept path can feed them without a lock; only the
//! history (threat, evidence, eviction, rate-limit and panic entries) takes a short
//! lock. The history is a FIFO ring of `max_history` entries, as in v1.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::types::{Severity, ThreatCategory};

/// Settings (v1 `createSecurityState` options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecurityStateConfig {
    /// History entries kept (v1 default 10 000).
    pub max_history: usize,
    /// Quarantine byte limit used for `capacity_percent` (v1 default 100 MB).
    pub quarantine_max_bytes: u64,
}

impl Default for SecurityStateConfig {
    fn default() -> Self {
        SecurityStateConfig {
            max_history: 10_000,
            quarantine_max_bytes: 100_000_000,
        }
    }
}

/// Panic levels recorded by the state (v1: `warning | critical | fatal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatePanicLevel {
    /// `warning`
    Warning,
    /// `critical`
    Critical,
    /// `fatal`
    Fatal,
}

/// License status (v1 `LicenseState.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LicenseStatus {
    /// No license (default).
    None,
    /// Valid.
    Valid,
    /// In grace period: health at most `degraded`.
    Grace,
    /// Expired: health `critical`.
    Expired,
}

/// License information.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseState {
    /// Tier name (v1 default `starter`).
    pub tier: String,
    /// Status.
    pub status: LicenseStatus,
    /// Days left, if known.
    pub days_remaining: Option<i64>,
}

/// What a history entry records.
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryData {
    /// A threat was seen.
    Threat {
        /// Category.
        category: ThreatCategory,
        /// Severity.
        severity: Severity,
    },
    /// Evidence was quarantined.
    Evidence {
        /// Signature.
        signature: String,
        /// Stored size.
        size: u64,
        /// Severity.
        severity: Severity,
    },
    /// Evidence was evicted.
    Eviction {
        /// Signature.
        signature: String,
        /// Why.
        reason: String,
    },
    /// A source was rate limited (`blocked`: also blocked).
    RateLimit {
        /// Source.
        source: String,
        /// Whether the source is blocked.
        blocked: bool,
    },
    /// A fail-safe panic.
    Panic {
        /// Level.
        level: StatePanicLevel,
        /// Why.
        reason: String,
    },
}

/// A history entry.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// ms since the epoch.
    pub timestamp: u64,
    /// What happened.
    pub data: HistoryData,
}

/// Health verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Health {
    /// `healthy`
    Healthy,
    /// `degraded`: quarantine > 70 % or license in grace.
    Degraded,
    /// `critical`: quarantine > 90 % or license expired.
    Critical,
}

/// Counters of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StateCounters {
    /// Clean intercepts.
    pub clean: u64,
    /// Threats seen.
    pub threats: u64,
    /// Threats per category, indexed like [`ThreatCategory::ALL`].
    pub threats_by_category: [u64; 6],
    /// Threats per severity, indexed like [`Severity::ALL`].
    pub threats_by_severity: [u64; 4],
    /// Evidence quarantined.
    pub evidence: u64,
    /// Evidence bytes quarantined (cumulative).
    pub evidence_bytes: u64,
    /// Evictions.
    pub evictions: u64,
    /// Rate-limited intercepts.
    pub rate_limited: u64,
    /// Rate-limit events with the source blocked.
    pub blocked_sources: u64,
    /// Errors.
    pub errors: u64,
    /// Panics recorded.
    pub panics: u64,
}

/// v1's `snapshot()`.
#[derive(Debug, Clone, PartialEq)]
pub struct StateSnapshot {
    /// Counters.
    pub counters: StateCounters,
    /// Quarantine entries (last update).
    pub quarantine_count: u64,
    /// Quarantine bytes (last update).
    pub quarantine_bytes: u64,
    /// `quarantine_bytes / quarantine_max_bytes * 100`.
    pub capacity_percent: f64,
    /// Active rate-limited sources (last update).
    pub active_sources: u64,
    /// Blocked sources (last update).
    pub blocked_now: u64,
    /// License.
    pub license: LicenseState,
    /// History entries held.
    pub history_len: usize,
    /// Health verdict.
    pub health: Health,
    /// When the snapshot was taken.
    pub timestamp: u64,
}

#[derive(Debug)]
struct Slow {
    history: VecDeque<HistoryEntry>,
    quarantine_count: u64,
    quarantine_bytes: u64,
    active_sources: u64,
    blocked_now: u64,
    license: LicenseState,
}

#[derive(Debug, Default)]
struct Counters {
    clean: AtomicU64,
    threats: AtomicU64,
    by_category: [AtomicU64; 6],
    by_severity: [AtomicU64; 4],
    evidence: AtomicU64,
    evidence_bytes: AtomicU64,
    evictions: AtomicU64,
    rate_limited: AtomicU64,
    blocked_sources: AtomicU64,
    errors: AtomicU64,
    panics: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The security state. `Send + Sync`.
#[derive(Debug)]
pub struct SecurityState {
    config: SecurityStateConfig,
    counters: Counters,
    slow: Mutex<Slow>,
}

impl Default for SecurityState {
    fn default() -> Self {
        Self::new(SecurityStateConfig::default())
    }
}

impl SecurityState {
    /// An empty state.
    pub fn new(config: SecurityStateConfig) -> Self {
        SecurityState {
            config,
            counters: Counters::default(),
            slow: Mutex::new(Slow {
                history: VecDeque::new(),
                quarantine_count: 0,
                quarantine_bytes: 0,
                active_sources: 0,
                blocked_now: 0,
                license: LicenseState {
                    tier: "starter".into(),
                    status: LicenseStatus::None,
                    days_remaining: None,
                },
            }),
        }
    }

    fn push(&self, timestamp: u64, data: HistoryData) {
        let mut s = self.slow.lock();
        while s.history.len() >= self.config.max_history.max(1) {
            s.history.pop_front();
        }
        s.history.push_back(HistoryEntry { timestamp, data });
    }

    /// Counts a clean intercept (lock-free, no history).
    pub fn record_clean(&self) {
        bump(&self.counters.clean);
    }

    /// Counts an error (lock-free, no history).
    pub fn record_error(&self) {
        bump(&self.counters.errors);
    }

    /// Counts a threat and records it.
    pub fn record_threat(&self, category: ThreatCategory, severity: Severity, now_ms: u64) {
        let c = &self.counters;
        bump(&c.threats);
        if let Some(x) = ThreatCategory::ALL
            .iter()
            .position(|k| *k == category)
            .and_then(|i| c.by_category.get(i))
        {
            bump(x);
        }
        if let Some(x) = c.by_severity.get(usize::from(severity.rank())) {
            bump(x);
        }
        self.push(now_ms, HistoryData::Threat { category, severity });
    }

    /// Counts quarantined evidence and records it.
    pub fn record_evidence(&self, signature: &str, size: u64, severity: Severity, now_ms: u64) {
        bump(&self.counters.evidence);
        self.counters
            .evidence_bytes
            .fetch_add(size, Ordering::Relaxed);
        self.push(
            now_ms,
            HistoryData::Evidence {
                signature: signature.to_string(),
                size,
                severity,
            },
        );
    }

    /// Counts an eviction and records it.
    pub fn record_eviction(&self, signature: &str, reason: &str, now_ms: u64) {
        bump(&self.counters.evictions);
        self.push(
            now_ms,
            HistoryData::Eviction {
                signature: signature.to_string(),
                reason: reason.to_string(),
            },
        );
    }

    /// Counts a rate-limited intercept (`blocked`: the source is blocked) and records it.
    pub fn record_rate_limit(&self, source: &str, blocked: bool, now_ms: u64) {
        bump(&self.counters.rate_limited);
        if blocked {
            bump(&self.counters.blocked_sources);
        }
        self.push(
            now_ms,
            HistoryData::RateLimit {
                source: source.to_string(),
                blocked,
            },
        );
    }

    /// Counts a panic and records it.
    pub fn record_panic(&self, level: StatePanicLevel, reason: &str, now_ms: u64) {
        bump(&self.counters.panics);
        self.push(
            now_ms,
            HistoryData::Panic {
                level,
                reason: reason.to_string(),
            },
        );
    }

    /// Sets the license state.
    pub fn update_license(&self, tier: &str, status: LicenseStatus, days_remaining: Option<i64>) {
        self.slow.lock().license = LicenseState {
            tier: tier.to_string(),
            status,
            days_remaining,
        };
    }

    /// Sets the quarantine's current size.
    pub fn update_quarantine(&self, count: u64, bytes: u64) {
        let mut s = self.slow.lock();
        s.quarantine_count = count;
        s.quarantine_bytes = bytes;
    }

    /// Sets the rate limiter's active and blocked source counts.
    pub fn update_rate_limits(&self, active: u64, blocked: u64) {
        let mut s = self.slow.lock();
        s.active_sources = active;
        s.blocked_now = blocked;
    }

    /// Erasure: removes the history entries naming `source` (rate-limit entries) or
    /// one of `signatures` (evidence and eviction entries); returns how many went.
    pub fn forget_source(&self, source: Option<&str>, signatures: &[String]) -> usize {
        let mut s = self.slow.lock();
        let before = s.history.len();
        s.history.retain(|e| match &e.data {
            HistoryData::RateLimit { source: src, .. } => Some(src.as_str()) != source,
            HistoryData::Evidence { signature, .. } | HistoryData::Eviction { signature, .. } => {
                !signatures.iter().any(|x| x == signature)
            }
            _ => true,
        });
        before - s.history.len()
    }

    /// The most recent `max` history entries, oldest first.
    pub fn history(&self, max: usize) -> Vec<HistoryEntry> {
        let s = self.slow.lock();
        let skip = s.history.len().saturating_sub(max);
        s.history.iter().skip(skip).cloned().collect()
    }

    /// Counters, fill and health (v1 `snapshot`).
    pub fn snapshot(&self, now_ms: u64) -> StateSnapshot {
        let c = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut counters = StateCounters {
            clean: load(&c.clean),
            threats: load(&c.threats),
            evidence: load(&c.evidence),
            evidence_bytes: load(&c.evidence_bytes),
            evictions: load(&c.evictions),
            rate_limited: load(&c.rate_limited),
            blocked_sources: load(&c.blocked_sources),
            errors: load(&c.errors),
            panics: load(&c.panics),
            ..StateCounters::default()
        };
        for (slot, a) in counters.threats_by_category.iter_mut().zip(&c.by_category) {
            *slot = load(a);
        }
        for (slot, a) in counters.threats_by_severity.iter_mut().zip(&c.by_severity) {
            *slot = load(a);
        }
        let s = self.slow.lock();
        let capacity_percent = if self.config.quarantine_max_bytes == 0 {
            0.0
        } else {
            s.quarantine_bytes as f64 / self.config.quarantine_max_bytes as f64 * 100.0
        };
        let health = if capacity_percent > 90.0 || s.license.status == LicenseStatus::Expired {
            Health::Critical
        } else if capacity_percent > 70.0 || s.license.status == LicenseStatus::Grace {
            Health::Degraded
        } else {
            Health::Healthy
        };
        StateSnapshot {
            counters,
            quarantine_count: s.quarantine_count,
            quarantine_bytes: s.quarantine_bytes,
            capacity_percent,
            active_sources: s.active_sources,
            blocked_now: s.blocked_now,
            license: s.license.clone(),
            history_len: s.history.len(),
            health,
            timestamp: now_ms,
        }
    }
}
