//! RFC 3339 timestamps (UTC, milliseconds) without a calendar dependency.

use std::time::{SystemTime, UNIX_EPOCH};

/// Length of a timestamp written by [`write_rfc3339_ms`]: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(crate) const RFC3339_MS_LEN: usize = 24;

/// Formats `t` as `YYYY-MM-DDTHH:MM:SS.mmmZ`. Times before 1970 are written as the epoch and
/// years past 9999 as 9999-12-31T23:59:59.999Z: neither comes from a working clock, and a fixed
/// width keeps every line parseable.
pub(crate) fn rfc3339_ms(t: SystemTime) -> [u8; RFC3339_MS_LEN] {
    const MAX_SECS: u64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (secs, millis) = if since.as_secs() > MAX_SECS {
        (MAX_SECS, 999)
    } else {
        (since.as_secs(), since.subsec_millis())
    };
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let mut out = *b"0000-00-00T00:00:00.000Z";
    put_digits(&mut out[0..4], year);
    put_digits(&mut out[5..7], u64::from(month));
    put_digits(&mut out[8..10], u64::from(day));
    put_digits(&mut out[11..13], rem / 3600);
    put_digits(&mut out[14..16], (rem % 3600) / 60);
    put_digits(&mut out[17..19], rem % 60);
    put_digits(&mut out[20..23], u64::from(millis));
    out
}

/// Writes `v` as zero-padded decimal filling `dst` (the caller bounds `v` to fit).
fn put_digits(dst: &mut [u8], mut v: u64) {
    for slot in dst.iter_mut().rev() {
        // `v % 10` is below 10, so the cast cannot truncate.
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Proleptic Gregorian date of `days` after 1970-01-01 (the well-known era-based conversion:
/// 400-year eras of 146 097 days, years starting in March so the leap day comes last).
fn civil_from_days(days: u64) -> (u64, u32, u32) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097;
    let doe = z - era * 146_097; // day of era, 0..=146_096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era, 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of (March-based) year
    let mp = (5 * doy + 2) / 153; // March-based month, 0..=11
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = era * 400 + yoe + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, millis: u64) -> String {
        let t = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis);
        String::from_utf8(rfc3339_ms(t).to_vec()).unwrap()
    }

    #[test]
    fn known_instants() {
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(951_868_799, 999), "2000-02-29T23:59:59.999Z");
        assert_eq!(at(1_700_000_000, 123), "2023-11-14T22:13:20.123Z");
        assert_eq!(at(4_107_542_400, 0), "2100-03-01T00:00:00.000Z");
        assert_eq!(at(253_402_300_799, 0), "9999-12-31T23:59:59.000Z");
    }

    #[test]
    fn out_of_range_is_clamped() {
        let before = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(&rfc3339_ms(before), b"1970-01-01T00:00:00.000Z");
        assert_eq!(at(300_000_000_000, 0), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn every_day_of_a_leap_cycle_round_trips() {
        // Walks day by day from 1970 to 2400 and checks the date advances by exactly one day.
        let mut prev = civil_from_days(0);
        for d in 1..157_000u64 {
            let cur = civil_from_days(d);
            let next_day = (prev.0, prev.1, prev.2 + 1);
            let next_month = (prev.0, prev.1 + 1, 1);
            let next_year = (prev.0 + 1, 1, 1);
            assert!(
                cur == next_day || cur == next_month || cur == next_year,
                "{prev:?} -> {cur:?}"
            );
            let leap = (cur.0.is_multiple_of(4) && !cur.0.is_multiple_of(100))
                || cur.0.is_multiple_of(400);
            if cur.1 == 2 {
                assert!(cur.2 <= if leap { 29 } else { 28 }, "{cur:?}");
            }
            prev = cur;
        }
    }
}
