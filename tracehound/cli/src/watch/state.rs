//! What the dashboard knows between frames: the link to the daemon, the last stats, and
//! the throughput history computed from counter deltas. Pure (no I/O), so it is tested
//! without a terminal or a daemon.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::model::StatsView;

/// Throughput samples kept: more than any terminal is wide.
pub const HISTORY: usize = 600;

/// The connection as the last poll left it.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    /// No poll has finished yet.
    Connecting,
    /// The last poll was answered.
    Up,
    /// The last poll failed; the dashboard keeps retrying every interval.
    Down {
        /// The last error, as one line.
        error: String,
        /// Failed polls in a row.
        attempts: u64,
    },
}

/// A previous sample, to turn counters into rates.
#[derive(Debug, Clone, Copy)]
struct Sample {
    total: u64,
    uptime_ms: u64,
    at: Instant,
    kinds: [u64; KINDS],
}

/// Result kinds shown (see [`StatsView::results`]).
pub const KINDS: usize = crate::model::RESULT_KINDS;

/// The dashboard's model.
#[derive(Debug)]
pub struct Dashboard {
    /// The daemon's target, as shown in the header.
    pub target: String,
    /// The poll interval.
    pub interval: Duration,
    /// The connection.
    pub link: Link,
    /// The last answer (kept, and shown as stale, while disconnected).
    pub stats: Option<StatsView>,
    /// Intercepts per second over the last interval.
    pub rate: f64,
    /// Per result kind, results per second over the last interval (same order as
    /// [`StatsView::results`]).
    pub kind_rates: [f64; KINDS],
    /// The highest rate seen since the dashboard started.
    pub peak_rate: f64,
    /// Recent rates, oldest first, rounded to whole intercepts per second.
    pub history: VecDeque<u64>,
    /// Successful polls.
    pub polls: u64,
    /// Times the daemon came back after being lost, or was found restarted.
    pub reconnects: u64,
    prev: Option<Sample>,
}

impl Dashboard {
    /// An empty dashboard for `target`.
    pub fn new(target: &str, interval: Duration) -> Self {
        Self {
            target: target.to_owned(),
            interval,
            link: Link::Connecting,
            stats: None,
            rate: 0.0,
            kind_rates: [0.0; KINDS],
            peak_rate: 0.0,
            history: VecDeque::with_capacity(HISTORY),
            polls: 0,
            reconnects: 0,
            prev: None,
        }
    }

    /// Takes a new answer from the daemon, received at `at`.
    pub fn update(&mut self, stats: StatsView, at: Instant) {
        if matches!(self.link, Link::Down { .. }) {
            self.reconnects += 1;
        }
        let now = Sample {
            total: stats.total_intercepts,
            uptime_ms: stats.uptime_ms,
            at,
            kinds: stats.results().map(|(_, n)| n),
        };
        match self.prev {
            Some(prev) if now.uptime_ms >= prev.uptime_ms && now.total >= prev.total => {
                // The daemon's own clock measures the interval between its answers; the
                // local clock only when the daemon's did not move (coarse uptime).
                let daemon_secs = (now.uptime_ms - prev.uptime_ms) as f64 / 1000.0;
                let secs = if daemon_secs > 0.0 {
                    daemon_secs
                } else {
                    now.at.saturating_duration_since(prev.at).as_secs_f64()
                };
                if secs > 0.0 {
                    self.rate = (now.total - prev.total) as f64 / secs;
                    for ((rate, new), old) in
                        self.kind_rates.iter_mut().zip(now.kinds).zip(prev.kinds)
                    {
                        *rate = new.saturating_sub(old) as f64 / secs;
                    }
                    self.push_rate(self.rate);
                }
            }
            Some(_) => {
                // Counters or uptime went backwards: a restarted daemon. Rates across the
                // restart would be meaningless.
                self.history.clear();
                self.rate = 0.0;
                self.kind_rates = [0.0; KINDS];
                if !matches!(self.link, Link::Down { .. }) {
                    self.reconnects += 1;
                }
            }
            None => {}
        }
        self.prev = Some(now);
        self.stats = Some(stats);
        self.link = Link::Up;
        self.polls += 1;
    }

    /// Records a failed poll; the last stats stay on screen, marked stale.
    pub fn lost(&mut self, error: &str) {
        let attempts = match &self.link {
            Link::Down { attempts, .. } => attempts + 1,
            _ => 1,
        };
        // One line: the header has no room for a multi-line cause chain.
        let error = error.lines().collect::<Vec<_>>().join(" ");
        self.link = Link::Down { error, attempts };
        self.rate = 0.0;
        self.kind_rates = [0.0; KINDS];
    }

    /// Whether the last poll was answered.
    pub fn connected(&self) -> bool {
        self.link == Link::Up
    }

    fn push_rate(&mut self, rate: f64) {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(rate.round().max(0.0) as u64);
        self.peak_rate = self.peak_rate.max(rate);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// All intercepts clean but one in five quarantined.
    fn stats(total: u64, uptime_ms: u64) -> StatsView {
        StatsView {
            total_intercepts: total,
            clean: total - total / 5,
            quarantined: total / 5,
            uptime_ms,
            ..Default::default()
        }
    }

    #[test]
    fn rates_come_from_deltas_over_the_daemons_clock() {
        let t0 = Instant::now();
        let mut d = Dashboard::new("unix:x", Duration::from_secs(1));
        d.update(stats(100, 1_000), t0);
        assert_eq!(d.rate, 0.0);
        assert!(d.history.is_empty());
        d.update(stats(600, 1_500), t0 + Duration::from_millis(700));
        assert_eq!(d.rate, 1000.0);
        // clean 80 -> 480, quarantined 20 -> 120, over 0.5 s.
        assert_eq!(d.kind_rates[0], 800.0);
        assert_eq!(d.kind_rates[4], 200.0);
        d.update(stats(800, 2_500), t0 + Duration::from_millis(1700));
        assert_eq!(d.rate, 200.0);
        assert_eq!(Vec::from(d.history.clone()), [1000, 200]);
        assert_eq!(d.peak_rate, 1000.0);
        assert_eq!(d.polls, 3);
    }

    #[test]
    fn a_lost_daemon_keeps_the_last_stats_and_a_restart_resets_rates() {
        let t0 = Instant::now();
        let mut d = Dashboard::new("unix:x", Duration::from_secs(1));
        d.update(stats(10, 1_000), t0);
        d.update(stats(20, 2_000), t0 + Duration::from_secs(1));
        d.lost("transport error\nconnection refused");
        d.lost("again");
        assert_eq!(
            d.link,
            Link::Down {
                error: "again".into(),
                attempts: 2
            }
        );
        assert!(!d.connected());
        assert_eq!(d.stats.as_ref().map(|s| s.total_intercepts), Some(20));
        // Back, but restarted: uptime went down.
        d.update(stats(5, 100), t0 + Duration::from_secs(5));
        assert!(d.connected());
        assert_eq!(d.reconnects, 1);
        assert!(d.history.is_empty());
        assert_eq!(d.rate, 0.0);
        d.update(stats(15, 1_100), t0 + Duration::from_secs(6));
        assert_eq!(d.rate, 10.0);
    }

    #[test]
    fn history_is_bounded() {
        let t0 = Instant::now();
        let mut d = Dashboard::new("unix:x", Duration::from_secs(1));
        for i in 0..(HISTORY as u64 + 50) {
            d.update(stats(i * 10, i * 1000), t0 + Duration::from_secs(i));
        }
        assert_eq!(d.history.len(), HISTORY);
    }
}
