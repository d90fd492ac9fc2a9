//! Busy polling: after each request event, a serving thread keeps polling its sockets for
//! a short window instead of going to sleep, and each thread sizes its windows to the
//! waits it sees. Not the kernel's `SO_BUSY_POLL` (which spins inside a socket read): this
//! is the thread's whole event loop.
//!
//! Why: on a virtual machine whose idle vCPUs halt at once, every wake-up of a sleeping
//! thread costs a VM exit and a trip through the host scheduler, tens of microseconds, and
//! the thread then runs on cold caches. A forwarded HTTP/1.1 request sleeps twice in the
//! proxy (waiting for its answer from the upstream, then for the client's next request). A
//! thread that keeps polling its runtime's sockets (`epoll_wait` with a zero timeout) sees
//! both without being woken; its vCPU never halts. The full effect is for HTTP/1.1
//! clients, whose upstream connection lives on their own thread ([`crate::UpstreamSlot`]);
//! an HTTP/2 request's pooled upstream connection may live on another thread, which can
//! still be asleep.
//!
//! **Adaptive windows.** A thread waits either for an answer (some request on it is in
//! flight) or for a request (none is), and keeps one window for each, between zero and the
//! configured maximum. A wait is measured from when the thread went idle (the poller's
//! view: it runs after the tasks the last event woke), not from the event. As in the
//! kernel's `cpuidle-haltpoll` governor, a wait the thread slept through that the maximum
//! would have covered doubles the window; one longer than the maximum halves it, down to
//! zero. So a proxy in front of a fast upstream polls through the upstream's answer time;
//! with clients that come back quickly (one request after the other on a connection) it
//! polls between requests too; with clients that pause for longer than the maximum it
//! soon stops polling for them. Waits are per thread, not per connection: with several
//! connections on a thread, a wait for an answer can end with another client's request,
//! and a request that stays in flight for long (a long poll) keeps the thread's waits
//! counted as waits for an answer.
//!
//! The cost is CPU while traffic flows: a polled wait costs its length, a wait the window
//! missed costs the whole window, and a thread whose waits are all shorter than the
//! maximum polls all the time (up to a core per serving thread). Every request counts,
//! refused ones included. An idle proxy polls nothing and stays at zero CPU. When
//! [`BUSY_LOOKS`] looks in a row find more runnable tasks than CPUs ([`crate::runnable`]),
//! the windows close and polling rests for [`REST`]: a polling thread hides its CPU from
//! the scheduler, and on a saturated machine it would take time from the upstream and the
//! clients (at saturation a thread rarely sleeps anyway, so polling has little to save
//! there). Between polls
//! the thread calls `sched_yield`, so other runnable work on its core runs first; under a
//! cgroup CPU quota, though, polling spends the quota (which is why `tracehound proxy`
//! leaves it off there unless asked, see [`crate::host`]).
//!
//! Relies on tokio's current-thread scheduler (1.54) resuming a task that called
//! `tokio::task::yield_now` only after it has polled the I/O driver without blocking
//! (`park_yield`, then the deferred wake-ups): each turn of the poll loop is one
//! `epoll_wait(0)`, and every task that poll made ready runs before the loop's next turn.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::runnable::RunQueue;

/// How long polling rests after finding other tasks waiting for a CPU.
const REST: Duration = Duration::from_millis(10);

/// What a serving thread with nothing to do is waiting for. Each has its own window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// A request is in flight: its answer (from the upstream, usually).
    Answer = 0,
    /// Nothing in flight: a client's next request.
    Request = 1,
}

/// The window a wait starts at when it first grows from zero: a quarter of the maximum.
fn start_window(max_ns: u64) -> u64 {
    max_ns / 4
}

/// The window one wait the thread slept through leaves behind. `waited_ns` is how long the
/// thread was idle. A wait the window covered changes nothing (a zero window covers none);
/// one it missed but the maximum would have covered doubles it (at least to the start
/// window, at most to the maximum); one longer than the maximum halves it, and a window
/// below a sixteenth of the maximum becomes zero.
fn adapted(window_ns: u64, waited_ns: u64, max_ns: u64) -> u64 {
    if window_ns > 0 && waited_ns <= window_ns {
        window_ns
    } else if waited_ns <= max_ns {
        window_ns
            .saturating_mul(2)
            .max(start_window(max_ns))
            .min(max_ns)
    } else {
        let half = window_ns / 2;
        if half < max_ns / 16 {
            0
        } else {
            half
        }
    }
}

/// One serving thread's activity clock, shared by that thread's connections and its
/// poller. All of them run on the same thread, so relaxed atomics suffice (they are
/// atomics only because hyper wants `Send` services); used from several threads, the
/// worst a race could do is mis-size or skip one window, never make the poller spin on.
#[derive(Debug)]
pub(crate) struct Activity {
    /// Origin of the clock (`now_ns`).
    base: Instant,
    /// When the last request event happened; 0 before the first.
    last_ns: AtomicU64,
    /// When the poller last saw the thread idle: the start of its last window, or the
    /// first turn after an event during one.
    idle_ns: AtomicU64,
    /// Requests begun and not yet answered on this thread.
    in_flight: AtomicUsize,
    /// The current window of each [`Wait`], in nanoseconds.
    window_ns: [AtomicU64; 2],
    /// The longest window, in nanoseconds.
    max_ns: u64,
    /// True while the poller waits for an event with the thread idle: the next event then
    /// ends a wait the thread slept through, sizes that wait's window, and wakes it.
    asleep: AtomicBool,
    /// Until when (`now_ns`) polling rests because other tasks were waiting for a CPU:
    /// events then neither size windows nor wake the poller.
    rest_until_ns: AtomicU64,
    /// Polling windows started, summed over every thread of the proxy.
    windows: Arc<AtomicU64>,
    wake: Notify,
}

impl Activity {
    fn new(max: Duration, windows: Arc<AtomicU64>) -> Activity {
        let max_ns = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        let start = start_window(max_ns);
        Activity {
            base: Instant::now(),
            last_ns: AtomicU64::new(0),
            idle_ns: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            window_ns: [AtomicU64::new(start), AtomicU64::new(start)],
            max_ns,
            asleep: AtomicBool::new(false),
            rest_until_ns: AtomicU64::new(0),
            windows,
            wake: Notify::new(),
        }
    }

    /// Nanoseconds since `base`, offset by the maximum window so that "no event yet" (0)
    /// is never recent.
    fn now_ns(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_add(self.max_ns)
            .max(1)
    }

    /// What the thread waits for now.
    fn waiting_for(&self) -> Wait {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            Wait::Answer
        } else {
            Wait::Request
        }
    }

    /// When the current wait began: the thread's last idle moment after the last event.
    fn wait_began_ns(&self) -> u64 {
        self.last_ns
            .load(Ordering::Relaxed)
            .max(self.idle_ns.load(Ordering::Relaxed))
    }

    /// A request begins on this thread: a request event, and a request in flight until
    /// the returned guard is dropped (its answer's head is ready, or it was abandoned),
    /// which is the next event.
    pub(crate) fn begin(self: &Arc<Self>) -> InFlight {
        self.event(true);
        InFlight(Arc::clone(self))
    }

    /// Records a request event (`begins`: a request arrived; otherwise one was answered).
    /// The first event after the poller fell asleep sizes the window of the wait it ends
    /// and wakes the poller; later ones before the poller has run (a burst) do neither.
    fn event(&self, begins: bool) {
        let now = self.now_ns();
        let began = self.wait_began_ns();
        let ended = self.waiting_for();
        self.last_ns.store(now, Ordering::Relaxed);
        if begins {
            self.in_flight.fetch_add(1, Ordering::Relaxed);
        } else {
            let _ = self
                .in_flight
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
        let rest_until = self.rest_until_ns.load(Ordering::Relaxed);
        if rest_until != 0 {
            if now < rest_until {
                return; // resting: the CPUs are busy (see `contended`)
            }
            // The first event after a rest: the wait it ends began no one knows when (the
            // poller slept through the rest), so it sizes nothing; the poller notes the
            // thread idle from here.
            self.rest_until_ns.store(0, Ordering::Relaxed);
            if self.asleep.swap(false, Ordering::Relaxed) {
                self.wake.notify_one();
            }
            return;
        }
        if !self.asleep.swap(false, Ordering::Relaxed) {
            return; // polling (or woken and not yet run): the wait was not slept through
        }
        if began != 0 {
            let slot = &self.window_ns[ended as usize];
            slot.store(
                adapted(
                    slot.load(Ordering::Relaxed),
                    now.saturating_sub(began),
                    self.max_ns,
                ),
                Ordering::Relaxed,
            );
        }
        // The poller runs once the tasks this event belongs to have, and polls if the new
        // wait's window is open, or falls asleep again.
        self.wake.notify_one();
    }

    /// True while the current wait is younger than the window of what the thread waits for.
    fn recent(&self) -> bool {
        let window = self.window_ns[self.waiting_for() as usize].load(Ordering::Relaxed);
        self.now_ns().saturating_sub(self.wait_began_ns()) < window
    }

    /// Other tasks were waiting for a CPU: polling through this wait would have cost them
    /// CPU time. Closes both windows and rests for [`REST`]: on a saturated machine a
    /// thread then looks at the run queue a few times per rest, not once per request.
    fn contended(&self) {
        for slot in &self.window_ns {
            slot.store(0, Ordering::Relaxed);
        }
        let rest = u64::try_from(REST.as_nanos()).unwrap_or(u64::MAX);
        self.rest_until_ns
            .store(self.now_ns().saturating_add(rest), Ordering::Relaxed);
    }

    /// Notes that the thread is idle now (the poller is running).
    fn idle(&self) {
        self.idle_ns.store(self.now_ns(), Ordering::Relaxed);
    }

    /// The current windows, in nanoseconds: (waiting for an answer, for a request).
    #[cfg(test)]
    fn windows_ns(&self) -> (u64, u64) {
        (
            self.window_ns[Wait::Answer as usize].load(Ordering::Relaxed),
            self.window_ns[Wait::Request as usize].load(Ordering::Relaxed),
        )
    }
}

/// A request in flight on a busy-polling thread; dropping it is the request's second
/// event (answered, or abandoned with its connection).
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.event(false);
    }
}

/// The proxy's busy-polling setting and its counter, handed to every serving thread.
#[derive(Debug, Clone)]
pub(crate) struct BusyPolling {
    max: Duration,
    windows: Arc<AtomicU64>,
}

impl BusyPolling {
    /// Polling after each request event, for windows of at most `max`.
    pub(crate) fn new(max: Duration) -> BusyPolling {
        BusyPolling {
            max,
            windows: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Polling windows started so far, over every serving thread.
    pub(crate) fn windows(&self) -> u64 {
        self.windows.load(Ordering::Relaxed)
    }

    /// Starts this thread's poller (see [`BusyPoller::spawn`]).
    pub(crate) fn spawn(&self) -> BusyPoller {
        BusyPoller::spawn(self.max, Arc::clone(&self.windows))
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
    /// sockets). Polls after each request event for that wait's window (at most `max`),
    /// and counts each polling window in `windows`.
    pub(crate) fn spawn(max: Duration, windows: Arc<AtomicU64>) -> BusyPoller {
        let activity = Arc::new(Activity::new(max, windows));
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

/// Turns of the poll loop between two looks at the machine's run queue, besides the look
/// when a window starts (a turn is an `epoll_wait` and a `sched_yield`, a microsecond or
/// two; a look costs about as much).
const TURNS_PER_LOOK: u32 = 32;

/// Looks in a row that must find other tasks waiting for a CPU before polling rests: a
/// single look catches short overlaps (the upstream finishing while the client wakes)
/// that busy polling is worth having through. Looks in a row span windows (at saturation
/// a window rarely lasts long enough for a second look); the count starts again after a
/// rest.
const BUSY_LOOKS: u32 = 3;

/// One look at the run queue: true when it makes [`BUSY_LOOKS`] in a row that found other
/// tasks waiting for a CPU (and then starts the count again).
fn machine_busy(run_queue: &RunQueue, busy_looks: &mut u32) -> bool {
    *busy_looks = if run_queue.cpu_to_spare() {
        0
    } else {
        busy_looks.saturating_add(1)
    };
    if *busy_looks >= BUSY_LOOKS {
        *busy_looks = 0;
        true
    } else {
        false
    }
}

async fn poll_loop(activity: Arc<Activity>) {
    let run_queue = RunQueue::open();
    let mut busy_looks = 0u32;
    loop {
        activity.asleep.store(true, Ordering::Relaxed);
        activity.wake.notified().await;
        // Woken by an event, whose tasks have run: the thread is idle from here.
        activity.idle();
        if !activity.recent() {
            continue; // this wait's window is zero
        }
        if machine_busy(&run_queue, &mut busy_looks) {
            // Other tasks wait for a CPU: polling would take it from them.
            activity.contended();
            continue;
        }
        activity.windows.fetch_add(1, Ordering::Relaxed);
        let mut seen = activity.last_ns.load(Ordering::Relaxed);
        let mut turns = 0u32;
        while activity.recent() {
            // One `epoll_wait(0)` and the tasks it woke, then let other runnable threads
            // on this core go first (see the module docs).
            tokio::task::yield_now().await;
            std::thread::yield_now();
            turns += 1;
            if turns == TURNS_PER_LOOK {
                turns = 0;
                if machine_busy(&run_queue, &mut busy_looks) {
                    activity.contended();
                    break;
                }
            }
            let last = activity.last_ns.load(Ordering::Relaxed);
            if last != seen {
                // An event during the window, and its tasks have run since: a new wait.
                seen = last;
                activity.idle();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter() -> Arc<AtomicU64> {
        Arc::new(AtomicU64::new(0))
    }

    const MAX: u64 = 200_000;

    /// A maximum far longer than any stall of a test: every wait in a test is "short",
    /// whatever the machine's speed.
    const LONG: Duration = Duration::from_secs(3600);
    const LONG_START_NS: u64 = 900_000_000_000;

    #[test]
    fn a_covered_wait_keeps_the_window() {
        assert_eq!(adapted(80_000, 80_000, MAX), 80_000);
        assert_eq!(adapted(80_000, 10, MAX), 80_000);
    }

    #[test]
    fn a_missed_wait_within_the_maximum_grows_the_window_up_to_the_maximum() {
        assert_eq!(adapted(0, 0, MAX), 50_000, "a zero window covers nothing");
        assert_eq!(adapted(0, 10_000, MAX), 50_000, "from zero to the start");
        assert_eq!(adapted(50_000, 60_000, MAX), 100_000, "doubles");
        assert_eq!(adapted(150_000, 190_000, MAX), MAX, "capped");
        assert_eq!(adapted(MAX, MAX, MAX), MAX);
    }

    #[test]
    fn a_wait_beyond_the_maximum_halves_the_window_down_to_zero() {
        assert_eq!(adapted(MAX, MAX + 1, MAX), 100_000);
        assert_eq!(adapted(100_000, u64::MAX, MAX), 50_000);
        assert_eq!(adapted(25_000, 1_000_000, MAX), 12_500, "a sixteenth stays");
        assert_eq!(adapted(24_000, 1_000_000, MAX), 0, "below a sixteenth: off");
        assert_eq!(adapted(0, 1_000_000, MAX), 0);
    }

    #[test]
    fn only_the_first_event_after_falling_asleep_sizes_a_window() {
        let activity = Arc::new(Activity::new(LONG, counter()));
        let start = LONG_START_NS;
        assert_eq!(activity.windows_ns(), (start, start));
        assert!(!activity.recent(), "no event yet");
        let first = activity.begin();
        assert_eq!(activity.waiting_for(), Wait::Answer);
        assert!(
            activity.recent(),
            "waiting for the answer, within its window"
        );

        // Zero windows, and the poller asleep: the event that ends a wait for a request
        // grows that window back (the wait was short against the maximum)...
        for slot in &activity.window_ns {
            slot.store(0, Ordering::Relaxed);
        }
        drop(first);
        activity.asleep.store(true, Ordering::Relaxed);
        let second = activity.begin();
        assert_eq!(activity.windows_ns(), (0, start));
        // ... and the events that follow before the poller has run (a burst) size nothing.
        drop(second);
        let _third = activity.begin();
        assert_eq!(activity.windows_ns(), (0, start));
        assert!(!activity.asleep.load(Ordering::Relaxed));
    }

    #[test]
    fn contention_closes_the_windows_and_events_rest_meanwhile() {
        let activity = Arc::new(Activity::new(LONG, counter()));
        let before = activity.now_ns();
        activity.contended();
        assert_eq!(activity.windows_ns(), (0, 0));
        assert!(activity.rest_until_ns.load(Ordering::Relaxed) > before);
        // Resting (for good, here, so that no clock is involved): an event finding the
        // poller asleep neither grows a window nor wakes it.
        activity.rest_until_ns.store(u64::MAX, Ordering::Relaxed);
        activity.asleep.store(true, Ordering::Relaxed);
        let request = activity.begin();
        drop(request);
        assert_eq!(activity.windows_ns(), (0, 0));
        assert!(activity.asleep.load(Ordering::Relaxed), "not woken");
        // After the rest, the next event sizes its window again.
        activity.rest_until_ns.store(0, Ordering::Relaxed);
        let _request = activity.begin();
        assert_eq!(activity.windows_ns(), (0, LONG_START_NS));
    }

    #[test]
    fn nothing_is_recent_with_a_zero_maximum() {
        let activity = Arc::new(Activity::new(Duration::ZERO, counter()));
        let request = activity.begin();
        assert!(!activity.recent(), "a zero maximum never polls");
        drop(request);
        assert!(!activity.recent());
    }

    /// Turns of a current-thread runtime, enough for the poller to react to an event.
    async fn turns() {
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_event_starts_a_polling_window() {
        let windows = counter();
        let poller = BusyPoller::spawn(LONG, Arc::clone(&windows));
        let activity = Arc::clone(poller.activity());
        turns().await;
        assert!(activity.asleep.load(Ordering::Relaxed), "idle: asleep");
        assert_eq!(windows.load(Ordering::Relaxed), 0);
        let request = activity.begin();
        turns().await;
        assert!(
            !activity.asleep.load(Ordering::Relaxed),
            "polling after an event"
        );
        assert_eq!(windows.load(Ordering::Relaxed), 1);
        // Events during the window extend it; they start no new one.
        drop(request);
        turns().await;
        assert_eq!(windows.load(Ordering::Relaxed), 1);
        drop(poller);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn with_zero_windows_the_poller_stays_asleep() {
        let windows = counter();
        let poller = BusyPoller::spawn(Duration::ZERO, Arc::clone(&windows));
        let activity = Arc::clone(poller.activity());
        turns().await;
        for _ in 0..3 {
            drop(activity.begin());
            turns().await;
            assert!(activity.asleep.load(Ordering::Relaxed), "asleep again");
        }
        assert_eq!(windows.load(Ordering::Relaxed), 0, "never polled");
        drop(poller);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_poller_sleeps_again_once_the_window_has_passed() {
        // Start windows of 20 ms (a quarter of 80 ms).
        let windows = counter();
        let poller = BusyPoller::spawn(Duration::from_millis(80), Arc::clone(&windows));
        let activity = Arc::clone(poller.activity());
        turns().await;
        drop(activity.begin());
        turns().await;
        assert_eq!(windows.load(Ordering::Relaxed), 1, "a window started");
        // Timers (and every other task) still run while it polls; the sleep lasts at
        // least three windows, however slow the machine.
        tokio::time::sleep(Duration::from_millis(60)).await;
        turns().await;
        assert!(
            activity.asleep.load(Ordering::Relaxed),
            "asleep again once the window has passed"
        );
        assert_eq!(windows.load(Ordering::Relaxed), 1);
        drop(poller);
    }
}
