//! CPU time and resident memory of a process, from Linux `/proc`.

use std::time::Duration;

use anyhow::{bail, Context};

/// User plus system CPU time consumed so far by process `pid` (`"self"` for this one).
///
/// Read from `/proc/PID/stat` fields 14 (utime) and 15 (stime), in clock ticks.
pub fn cpu_time(pid: &str) -> anyhow::Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let ticks = parse_stat_ticks(&text).with_context(|| format!("parsing {path}"))?;
    let hz = rustix::param::clock_ticks_per_second().max(1);
    let micros = u128::from(ticks) * 1_000_000 / u128::from(hz);
    Ok(Duration::from_micros(
        u64::try_from(micros).unwrap_or(u64::MAX),
    ))
}

/// utime + stime in ticks from the text of `/proc/PID/stat`.
///
/// The command name (field 2) is in parentheses and may hold spaces or `)`, so fields are
/// counted from the last `)`.
fn parse_stat_ticks(text: &str) -> anyhow::Result<u64> {
    let Some(close) = text.rfind(')') else {
        bail!("no ')' after the command name");
    };
    let rest = text.get(close + 1..).unwrap_or_default();
    // After ')' come field 3 (state), 4, …; utime is field 14, i.e. index 11 here.
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = fields
        .next()
        .context("no utime")?
        .parse()
        .context("utime")?;
    let stime: u64 = fields
        .next()
        .context("no stime")?
        .parse()
        .context("stime")?;
    Ok(utime.saturating_add(stime))
}

/// Resident set size of process `pid` in KiB (`VmRSS` in `/proc/PID/status`).
pub fn rss_kib(pid: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_vm_rss(&text).with_context(|| format!("no VmRSS in {path}"))
}

fn parse_vm_rss(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.trim_start_matches("VmRSS:")
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_counted_from_the_last_paren() {
        let line = "1234 (we ird) name) S 1 2 3 4 5 6 7 8 9 10 250 17 0 0 20 0 1 0";
        assert_eq!(parse_stat_ticks(line).unwrap(), 267);
        assert!(parse_stat_ticks("1234 no paren").is_err());
        assert!(parse_stat_ticks("1 (x) S 1 2").is_err());
    }

    #[test]
    fn own_process_is_readable() {
        // Burn a little CPU so the figure is not trivially zero on a coarse clock.
        let before = cpu_time("self").unwrap();
        let start = std::time::Instant::now();
        while cpu_time("self").unwrap() == before && start.elapsed() < Duration::from_secs(30) {
            std::hint::black_box(start.elapsed());
        }
        assert!(cpu_time("self").unwrap() > before);
        assert!(rss_kib("self").unwrap() > 0);
        assert_eq!(parse_vm_rss("Name: x\nVmRSS:\t  1234 kB\n"), Some(1234));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }
}
