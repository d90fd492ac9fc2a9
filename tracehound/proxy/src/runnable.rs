//! Whether the machine has a CPU for every runnable task: busy polling pays only then.
//! A polling thread keeps its CPU from looking idle, so the scheduler queues other tasks
//! (the upstream, the load's own clients) elsewhere, and `sched_yield` only hands the CPU
//! to tasks queued on the same one. With more runnable tasks than CPUs, polling takes CPU
//! time from work that is waiting for it.
//!
//! Reads the kernel's count of runnable tasks from `/proc/loadavg` (its fourth field,
//! `running/total`), one `pread` of a file kept open, a couple of microseconds.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// A reader of the machine's runnable-task count, for one thread.
#[derive(Debug)]
pub(crate) struct RunQueue {
    /// `/proc/loadavg`, when it could be opened.
    loadavg: Option<File>,
    /// The machine's online CPUs: what `/proc/loadavg`'s count covers (not this process's
    /// affinity or quota, which a container or `taskset` narrows).
    cpus: usize,
}

impl RunQueue {
    /// Opens `/proc/loadavg`; without it every check says there is a CPU to spare.
    pub(crate) fn open() -> RunQueue {
        RunQueue {
            loadavg: File::open("/proc/loadavg").ok(),
            cpus: std::fs::read_to_string("/sys/devices/system/cpu/online")
                .ok()
                .and_then(|list| cpu_count(&list))
                .unwrap_or_else(|| {
                    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
                }),
        }
    }

    /// True unless more tasks are runnable (the calling thread included) than there are
    /// CPUs, or the count cannot be read.
    pub(crate) fn cpu_to_spare(&self) -> bool {
        let Some(file) = &self.loadavg else {
            return true;
        };
        let mut buf = [0u8; 128];
        let Ok(n) = file.read_at(&mut buf, 0) else {
            return true;
        };
        runnable(&buf[..n]).is_none_or(|running| running <= self.cpus)
    }
}

/// The number of CPUs in a kernel CPU list (`0-3`, `0,2-5`).
fn cpu_count(list: &str) -> Option<usize> {
    list.trim().split(',').try_fold(0usize, |total, range| {
        let (first, last) = match range.split_once('-') {
            Some((first, last)) => (first.parse::<usize>().ok()?, last.parse().ok()?),
            None => {
                let cpu = range.parse::<usize>().ok()?;
                (cpu, cpu)
            }
        };
        total.checked_add(last.checked_sub(first)? + 1)
    })
}

/// The running-task count of a `/proc/loadavg` line (`0.50 0.40 0.30 3/120 4567`).
fn runnable(line: &[u8]) -> Option<usize> {
    let line = std::str::from_utf8(line).ok()?;
    let field = line.split_whitespace().nth(3)?;
    field.split_once('/')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_running_count() {
        assert_eq!(runnable(b"1.38 1.61 1.56 1/77 10835\n"), Some(1));
        assert_eq!(runnable(b"9.00 8.00 7.00 12/1024 1\n"), Some(12));
        assert_eq!(runnable(b"garbage"), None);
        assert_eq!(runnable(b"1 2 3 x/77 5"), None);
        assert_eq!(runnable(b""), None);
    }

    #[test]
    fn counts_a_cpu_list() {
        assert_eq!(cpu_count("0-1\n"), Some(2));
        assert_eq!(cpu_count("0"), Some(1));
        assert_eq!(cpu_count("0,2-5,7"), Some(6));
        assert_eq!(cpu_count("3-1"), None);
        assert_eq!(cpu_count(""), None);
        assert_eq!(cpu_count("x"), None);
    }

    #[test]
    fn compares_with_the_cpus() {
        let queue = |cpus| RunQueue {
            loadavg: None,
            cpus,
        };
        assert!(queue(2).cpu_to_spare(), "unreadable: polling allowed");
        // The live file: this test's thread is running, so at least 1.
        let live = RunQueue::open();
        if let Some(file) = &live.loadavg {
            let mut buf = [0u8; 128];
            let n = file.read_at(&mut buf, 0).expect("read /proc/loadavg");
            assert!(runnable(&buf[..n]).is_some_and(|r| r >= 1));
        }
    }
}
