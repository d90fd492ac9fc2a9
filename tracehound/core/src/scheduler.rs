//! Jittered periodic task scheduler (spec §17) as a pure calculator: no threads, no
//! timers, no I/O. The caller owns the loop — a thread or a tokio task — and asks
//! [`Scheduler::next_delay_ms`] how long to wait (tick interval plus random jitter, from
//! an injected RNG), then calls [`Scheduler::tick`] with the current time (injected
//! clock) and runs the due task ids it returns, in priority order.
//!
//! v1 semantics kept: a task is due when `now - last_run >= interval` (never-run tasks
//! are due on the first tick), due tasks run by ascending priority (default 100), and a
//! busy tick is skipped when `skip_if_busy` is set.

use parking_lot::Mutex;
use rand::Rng;

/// Default priority of a task (v1 `priority ?? 100`).
pub const DEFAULT_PRIORITY: u32 = 100;

/// Scheduler settings (v1 `createScheduler` options) plus a task bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Base delay between ticks, ms.
    pub tick_interval_ms: u64,
    /// Up to this many extra ms, uniformly random, per tick.
    pub jitter_ms: u64,
    /// Skip a tick when the busy flag is set (v1 default true).
    pub skip_if_busy: bool,
    /// Most tasks that may be scheduled.
    pub max_tasks: usize,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            tick_interval_ms: 1000,
            jitter_ms: 0,
            skip_if_busy: true,
            max_tasks: 256,
        }
    }
}

/// Why scheduling failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedulerError {
    /// `max_tasks` reached.
    #[error("task limit of {0} reached")]
    TooManyTasks(usize),
    /// An interval of 0 would make the task due on every tick forever.
    #[error("task {0} has a zero interval")]
    ZeroInterval(String),
}

#[derive(Debug, Clone)]
struct Task {
    id: String,
    interval_ms: u64,
    priority: u32,
    last_run: Option<u64>,
    seq: u64,
}

/// v1's `stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SchedulerStats {
    /// Ticks seen.
    pub total_ticks: u64,
    /// Task runs handed out.
    pub total_tasks_executed: u64,
    /// Ticks skipped because busy.
    pub skipped_ticks: u64,
    /// Tasks scheduled.
    pub scheduled_tasks: usize,
    /// Busy flag at the last tick.
    pub busy: bool,
}

#[derive(Debug, Default)]
struct Inner {
    tasks: Vec<Task>,
    seq: u64,
    stats: SchedulerStats,
}

/// What a tick decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TickOutcome {
    /// Busy and `skip_if_busy`: nothing runs.
    Skipped,
    /// These task ids are due, in the order to run them (may be empty).
    Run(Vec<String>),
}

/// The scheduler. `Send + Sync`.
#[derive(Debug)]
pub struct Scheduler {
    config: SchedulerConfig,
    inner: Mutex<Inner>,
}

impl Scheduler {
    /// A scheduler with no tasks.
    pub fn new(config: SchedulerConfig) -> Self {
        Scheduler {
            config,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Adds or replaces task `id` (v1 `schedule`, a `Map.set`).
    pub fn schedule(
        &self,
        id: &str,
        interval_ms: u64,
        priority: Option<u32>,
    ) -> Result<(), SchedulerError> {
        if interval_ms == 0 {
            return Err(SchedulerError::ZeroInterval(id.to_string()));
        }
        let mut g = self.inner.lock();
        let priority = priority.unwrap_or(DEFAULT_PRIORITY);
        if let Some(t) = g.tasks.iter_mut().find(|t| t.id == id) {
            t.interval_ms = interval_ms;
            t.priority = priority;
            t.last_run = None;
            return Ok(());
        }
        if g.tasks.len() >= self.config.max_tasks {
            return Err(SchedulerError::TooManyTasks(self.config.max_tasks));
        }
        g.seq += 1;
        let seq = g.seq;
        g.tasks.push(Task {
            id: id.to_string(),
            interval_ms,
            priority,
            last_run: None,
            seq,
        });
        Ok(())
    }

    /// Removes task `id`; `false` if unknown.
    pub fn unschedule(&self, id: &str) -> bool {
        let mut g = self.inner.lock();
        let before = g.tasks.len();
        g.tasks.retain(|t| t.id != id);
        g.tasks.len() != before
    }

    /// How long to wait before the next tick: `tick_interval + uniform[0, jitter]` ms.
    pub fn next_delay_ms<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        let jitter = if self.config.jitter_ms == 0 {
            0
        } else {
            rng.gen_range(0..=self.config.jitter_ms)
        };
        self.config.tick_interval_ms.saturating_add(jitter)
    }

    /// Processes a tick at `now_ms`. Due tasks are marked as run at `now_ms` and
    /// returned by ascending priority (ties: scheduling order).
    pub fn tick(&self, now_ms: u64, busy: bool) -> TickOutcome {
        let mut g = self.inner.lock();
        g.stats.total_ticks += 1;
        g.stats.busy = busy;
        if self.config.skip_if_busy && busy {
            g.stats.skipped_ticks += 1;
            return TickOutcome::Skipped;
        }
        let mut due: Vec<(u32, u64, String)> = Vec::new();
        for t in g.tasks.iter_mut() {
            let is_due = match t.last_run {
                None => true,
                Some(last) => now_ms.saturating_sub(last) >= t.interval_ms,
            };
            if is_due {
                t.last_run = Some(now_ms);
                due.push((t.priority, t.seq, t.id.clone()));
            }
        }
        due.sort_by_key(|(p, s, _)| (*p, *s));
        g.stats.total_tasks_executed += due.len() as u64;
        TickOutcome::Run(due.into_iter().map(|(_, _, id)| id).collect())
    }

    /// The earliest time any task becomes due (`None` with no tasks); lets a driver
    /// sleep precisely instead of ticking.
    pub fn next_due_ms(&self) -> Option<u64> {
        let g = self.inner.lock();
        g.tasks
            .iter()
            .map(|t| t.last_run.map_or(0, |l| l.saturating_add(t.interval_ms)))
            .min()
    }

    /// Counters.
    pub fn stats(&self) -> SchedulerStats {
        let g = self.inner.lock();
        SchedulerStats {
            scheduled_tasks: g.tasks.len(),
            ..g.stats
        }
    }
}
