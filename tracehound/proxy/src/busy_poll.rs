//! Opt-in busy polling: after each request event, a serving thread keeps polling its
//! sockets for a short window instead of going to sleep. Not the kernel's `SO_BUSY_POLL`
//! (which spins inside a socket read): this is the thread's whole event loop.
//!
//! Why: on a virtual machine whose idle vCPUs halt at once, every wake-up of a sleeping
//! thread costs a VM exit and a trip through the host scheduler, tens of microseconds.
//! A forwarded HTTP/1.1 request sleeps twice in the proxy (waiting for the upstream's
//! answer, then for the client's next request). A thread that keeps polling its
//! runtime's sockets (`epoll_wait` with a zero timeout) sees both without being woken;
//! its vCPU never halts. The full effect is for HTTP/1.1 clients, whose upstream
//! connection lives on their own thread ([`crate::UpstreamSlot`]); an HTTP/2 request's
//! pooled upstream connection may live on another thread, which can still be asleep.
//!
//! The cost is CPU, per serving thread (one per core), not per request: a thread that
//! sees one request event per window polls all the time. Every request counts, refused
//! ones included. An idle proxy polls nothing and stays at zero CPU. Between polls the
//! thread calls `sched_yield`, so other runnable work on its core runs first; under a
//! cgroup CPU quota, though, polling spends the quota. Off unless configured
//! (`--busy-poll-us`).
//!
//! Relies on tokio's current-thread scheduler (1.54) resuming a task that called
//! `tokio::task::yield_now` only after it has polled the I/O driver without blocking
//! (`park_yield`, then the deferred wake-ups): each turn of the poll loop is one
//! `epoll_wait(0)`, and every task that poll made ready runs before the loop's next turn.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// One serving thread's activity clock, shared by that thread's connections and its
/// poller. All of them run on the same thread, so relaxed atomics suffice (they are
/// atomics only because hyper wants `Send` services); used from several threads, the
/// worst a race could do is skip one window, never make the poller spin on.
#[derive(Debug)]
pub(crate) struct Activity {
    /// Origin of `last_ns`.
    base: Instant,
    /// Nanoseconds after `base` of the last request event.
    last_ns: AtomicU64,
    /// The poll window, in nanoseconds.
    window_ns: u64,
    /// True while the poller is polling (a touch then need not wake it).
    polling: AtomicBool,
    /// Polling windows started, summed over every thread of the proxy.
    windows: Arc<AtomicU64>,
    wake: Notify,
}

impl Activity {
    fn new(window: Duration, windows: Arc<AtomicU64>) -> Activity {
        let window_ns = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        Activity {
            base: Instant::now(),
            // No event yet: the clock starts one window in the past.
            last_ns: AtomicU64::new(0),
            window_ns,
            polling: AtomicBool::new(false),
            windows,
            wake: Notify::new(),
        }
    }

    fn now_ns(&self) -> u64 {
        // Offset by one window so that "no event yet" (0) is never recent.
        u64::try_from(self.base.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_add(self.window_ns)
    }

    /// Records a request event (a request arrived, or its answer's head came back from
    /// the upstream) and starts the poller if it is asleep.
    pub(crate) fn touch(&self) {
        self.last_ns.store(self.now_ns(), Ordering::Relaxed);
        if !self.polling.load(Ordering::Relaxed) {
            // Wakes the poller, or leaves it a permit if it has not reached its wait yet
            // (it then checks once, finds the event recent, and polls).
            self.wake.notify_one();
        }
    }

    /// True while the last event is less than one window old.
    fn recent(&self) -> bool {
        self.now_ns()
            .saturating_sub(self.last_ns.load(Ordering::Relaxed))
            < self.window_ns
    }
}

/// The proxy's busy-polling setting and its counter, handed to every serving thread.
#[derive(Debug, Clone)]
pub(crate) struct BusyPolling {
    window: Duration,
    windows: Arc<AtomicU64>,
}

impl BusyPolling {
    /// Polling for `window` after each request event.
    pub(crate) fn new(window: Duration) -> BusyPolling {
        BusyPolling {
            window,
            windows: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Polling windows started so far, over every serving thread.
    pub(crate) fn windows(&self) -> u64 {
        self.windows.load(Ordering::Relaxed)
    }

    /// Starts this thread's poller (see [`BusyPoller::spawn`]).
    pub(crate) fn spawn(&self) -> BusyPoller {
        BusyPoller::spawn(self.window, Arc::clone(&self.windows))
    }
}

/// A serving thread's poller: a task on that thread's current-thread runtime. Dropping
/// it stops the task.
#[derive(Debug)]
pub(crate) struct BusyPoller {
    activity: Arc<Activity>,
    task: JoinHandle<()>,
}

impl BusyPoller {
    /// Spawns the poller on the current runtime, which must be a current-thread runtime
    /// (on a multi-thread one the loop would turn a worker, not the thread that owns the
    /// sockets). Polls for `window` after each [`Activity::touch`], and counts each
    /// polling window in `windows`.
    pub(crate) fn spawn(window: Duration, windows: Arc<AtomicU64>) -> BusyPoller {
        let activity = Arc::new(Activity::new(window, windows));
        let task = tokio::spawn(poll_loop(Arc::clone(&activity)));
        BusyPoller { activity, task }
    }

    /// The activity clock connections report into.
    pub(crate) fn activity(&self) -> &Arc<Activity> {
        &self.activity
    }
}

impl Drop for BusyPoller {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn poll_loop(activity: Arc<Activity>) {
    loop {
        activity.wake.notified().await;
        if !activity.recent() {
            continue; // a permit left over from a touch made while polling
        }
        activity.polling.store(true, Ordering::Relaxed);
        activity.windows.fetch_add(1, Ordering::Relaxed);
        while activity.recent() {
            // One `epoll_wait(0)` and the tasks it woke, then let other runnable threads
            // on this core go first (see the module docs).
            tokio::task::yield_now().await;
            std::thread::yield_now();
        }
        activity.polling.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter() -> Arc<AtomicU64> {
        Arc::new(AtomicU64::new(0))
    }

    #[test]
    fn an_event_is_recent_for_one_window_and_nothing_before_the_first() {
        let activity = Activity::new(Duration::from_secs(3600), counter());
        assert!(!activity.recent(), "no event yet");
        activity.touch();
        assert!(activity.recent());
        let zero = Activity::new(Duration::ZERO, counter());
        zero.touch();
        assert!(!zero.recent(), "a zero window is never recent");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_touch_starts_a_polling_window() {
        // A window far longer than any stall of this thread: the outcome cannot depend on
        // how fast the machine is.
        let windows = counter();
        let poller = BusyPoller::spawn(Duration::from_secs(3600), Arc::clone(&windows));
        let activity = Arc::clone(poller.activity());
        tokio::task::yield_now().await;
        assert!(!activity.polling.load(Ordering::Relaxed), "idle: asleep");
        assert_eq!(windows.load(Ordering::Relaxed), 0);
        activity.touch();
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        assert!(
            activity.polling.load(Ordering::Relaxed),
            "polling after a touch"
        );
        assert_eq!(windows.load(Ordering::Relaxed), 1);
        // Touches during the window extend it; they start no new one.
        activity.touch();
        tokio::task::yield_now().await;
        assert_eq!(windows.load(Ordering::Relaxed), 1);
        drop(poller);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_poller_sleeps_again_once_the_window_has_passed() {
        let windows = counter();
        let poller = BusyPoller::spawn(Duration::from_millis(20), Arc::clone(&windows));
        let activity = Arc::clone(poller.activity());
        activity.touch();
        // Timers (and every other task) still run while it polls; the sleep lasts at
        // least three windows, however slow the machine.
        tokio::time::sleep(Duration::from_millis(60)).await;
        tokio::task::yield_now().await;
        assert!(
            !activity.polling.load(Ordering::Relaxed),
            "asleep again once the window has passed"
        );
        assert!(windows.load(Ordering::Relaxed) <= 1);
        drop(poller);
    }
}
