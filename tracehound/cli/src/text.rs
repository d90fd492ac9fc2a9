//! Human formatting shared by the text output and the dashboard.

use std::time::{SystemTime, UNIX_EPOCH};

/// `3d 04h 05m`, `1h 02m 03s`, `4m 05s` or `12.3s`.
pub fn duration_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h:02}h {m:02}m")
    } else if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{}.{}s", s, ms % 1000 / 100)
    }
}

/// Bytes with a binary unit: `512 B`, `1.5 KiB`, `64.0 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for next in UNITS.iter().skip(1) {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    format!("{value:.1} {unit}")
}

/// Milliseconds since the Unix epoch as `2026-11-22T03:14:15.926Z`; `-` for zero or a
/// value that is not a plausible time.
pub fn timestamp_ms(ms: f64) -> String {
    if !ms.is_finite() || ms <= 0.0 || ms > 253_402_300_799_999.0 {
        return "-".to_owned();
    }
    let total_ms = ms as u64;
    let days = total_ms / 86_400_000;
    let of_day = total_ms % 86_400_000;
    let (y, mo, d) = civil_from_days(days);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3_600_000,
        of_day / 60_000 % 60,
        of_day / 1000 % 60,
        of_day % 1000
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, restricted to dates after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// How long ago an epoch-milliseconds time was, by this machine's clock: `4.2s`, `3m 01s`.
pub fn age_ms(captured_ms: f64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as f64)
        .unwrap_or(0.0);
    if !captured_ms.is_finite() || captured_ms <= 0.0 {
        return "-".to_owned();
    }
    duration_ms((now - captured_ms).max(0.0) as u64)
}

/// The first `n` characters of a hash, for narrow columns.
pub fn short(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => s.get(..i).unwrap_or(s),
        None => s,
    }
}

/// A signature `category:hex` shortened to `category:` and the first `n` hex digits.
pub fn short_signature(sig: &str, n: usize) -> String {
    match sig.split_once(':') {
        Some((cat, hex)) if hex.chars().count() > n => format!("{cat}:{}…", short(hex, n)),
        _ => sig.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(duration_ms(12_345), "12.3s");
        assert_eq!(duration_ms(245_000), "4m 05s");
        assert_eq!(duration_ms(3_723_000), "1h 02m 03s");
        assert_eq!(
            duration_ms(3 * 86_400_000 + 4 * 3_600_000 + 5 * 60_000),
            "3d 04h 05m"
        );
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(64 * 1024 * 1024), "64.0 MiB");
        assert_eq!(timestamp_ms(0.0), "-");
        assert_eq!(timestamp_ms(f64::NAN), "-");
        assert_eq!(
            timestamp_ms(1_700_000_000_000.0),
            "2023-11-14T22:13:20.000Z"
        );
        assert_eq!(timestamp_ms(951_782_400_123.0), "2000-02-29T00:00:00.123Z");
        assert_eq!(short("abcdef", 3), "abc");
        assert_eq!(short("ab", 3), "ab");
        assert_eq!(
            short_signature("injection:0123456789", 4),
            "injection:0123…"
        );
        assert_eq!(short_signature("odd", 4), "odd");
    }
}
