//! CPU time of the generator and the daemon, from Linux `/proc/PID/stat`.
//!
//! `utime` and `stime` there count every thread of the process, including threads that
//! have ended (the generator's own threads end before the closing sample).

use serde::Serialize;

/// `/proc` counts in clock ticks of `USER_HZ`, fixed at 100 by the kernel's ABI.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds (user + system) of this process and, if asked, of the daemon.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sample {
    own: Option<f64>,
    daemon: Option<f64>,
}

/// CPU time spent during a run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CpuUse {
    /// The generator's CPU time per answered intercept, in microseconds.
    pub generator_us_per_call: f64,
    /// The generator's average busy cores (CPU seconds per second).
    pub generator_cores: f64,
    /// The daemon's CPU time per answered intercept, when its pid was given.
    pub daemon_us_per_call: Option<f64>,
    /// The daemon's average busy cores.
    pub daemon_cores: Option<f64>,
}

/// User + system CPU seconds of `pid` ("self" for this process); `None` without `/proc`.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count fields
    // from the last ')'. After it come field 3 (state) onwards; utime and stime are
    // fields 14 and 15.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

impl Sample {
    /// Reads both processes' CPU time now.
    pub(super) fn take(daemon_pid: Option<u32>) -> Sample {
        Sample {
            own: cpu_seconds("self"),
            daemon: daemon_pid.and_then(|pid| cpu_seconds(&pid.to_string())),
        }
    }
}

impl CpuUse {
    /// The CPU spent between two samples, over `seconds` and `calls`; `None` when this
    /// process's own time could not be read or nothing ran.
    pub(super) fn between(
        before: Sample,
        after: Sample,
        seconds: f64,
        calls: u64,
    ) -> Option<CpuUse> {
        if calls == 0 || seconds <= 0.0 {
            return None;
        }
        let per_call = |cpu: f64| cpu * 1e6 / calls as f64;
        let own = after.own? - before.own?;
        let daemon = match (before.daemon, after.daemon) {
            (Some(b), Some(a)) => Some(a - b),
            _ => None,
        };
        Some(CpuUse {
            generator_us_per_call: per_call(own),
            generator_cores: own / seconds,
            daemon_us_per_call: daemon.map(per_call),
            daemon_cores: daemon.map(|d| d / seconds),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_time_is_readable_and_grows_with_work() {
        let before = cpu_seconds("self").expect("/proc/self/stat is readable");
        // Work until the counter moves; it must within the give-up time unless the
        // reading is broken (it counts in 10 ms ticks).
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut x = 0u64;
        let mut after = before;
        while after <= before && std::time::Instant::now() < give_up {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
            }
            after = cpu_seconds("self").expect("/proc/self/stat is readable");
        }
        assert!(after > before, "{before} -> {after}");
    }

    #[test]
    fn use_is_per_call_and_per_second() {
        let before = Sample {
            own: Some(1.0),
            daemon: Some(10.0),
        };
        let after = Sample {
            own: Some(2.0),
            daemon: Some(13.0),
        };
        let cpu = CpuUse::between(before, after, 2.0, 1000).unwrap();
        assert!((cpu.generator_us_per_call - 1000.0).abs() < 1e-6);
        assert!((cpu.generator_cores - 0.5).abs() < 1e-9);
        assert!((cpu.daemon_us_per_call.unwrap() - 3000.0).abs() < 1e-6);
        assert!((cpu.daemon_cores.unwrap() - 1.5).abs() < 1e-9);
        assert!(CpuUse::between(before, after, 2.0, 0).is_none());
        let no_daemon = Sample {
            own: Some(2.0),
            daemon: None,
        };
        assert!(CpuUse::between(before, no_daemon, 2.0, 10)
            .unwrap()
            .daemon_us_per_call
            .is_none());
    }
}
