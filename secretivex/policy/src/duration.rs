//! Durations as people write them in the configuration: `"250ms"`, `"30s"`, `"1h30m"`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest duration accepted: 100 years. Longer values are typos, and capping keeps
/// `Instant + duration` from overflowing.
const MAX_SECS: u64 = 100 * 365 * 24 * 3600;

/// A duration written as one or more `<number><unit>` parts, units `ms`, `s`, `m`, `h`,
/// `d` (e.g. `"250ms"`, `"30s"`, `"1h30m"`, `"0s"`). Parsing fails inside `Deserialize`,
/// so a TOML error names the line and the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(Duration);

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The string is empty.
    #[error("empty duration (write e.g. \"30s\", \"250ms\", \"1h30m\")")]
    Empty,
    /// A part has no number before its unit, or the number is not decimal digits.
    #[error("expected a number at byte {0} (write e.g. \"30s\", \"250ms\", \"1h30m\")")]
    Number(usize),
    /// A number has no unit, or the unit is not one of `ms`, `s`, `m`, `h`, `d`.
    #[error("unknown or missing unit at byte {0} (units: ms, s, m, h, d)")]
    Unit(usize),
    /// The total exceeds 100 years.
    #[error("duration too long (at most 100 years)")]
    TooLong,
}

impl HumanDuration {
    /// Wraps a duration (for defaults written in code).
    pub const fn new(duration: Duration) -> HumanDuration {
        HumanDuration(duration)
    }

    /// The duration.
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl From<HumanDuration> for Duration {
    fn from(value: HumanDuration) -> Duration {
        value.0
    }
}

impl FromStr for HumanDuration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<HumanDuration, DurationError> {
        if text.is_empty() {
            return Err(DurationError::Empty);
        }
        let bytes = text.as_bytes();
        let mut at = 0;
        let mut total_ms: u64 = 0;
        while at < bytes.len() {
            let start = at;
            let mut value: u64 = 0;
            while let Some(digit) = bytes.get(at).filter(|b| b.is_ascii_digit()) {
                value = value
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u64::from(digit - b'0')))
                    .ok_or(DurationError::TooLong)?;
                at += 1;
            }
            if at == start {
                return Err(DurationError::Number(start));
            }
            let rest = bytes.get(at..).unwrap_or_default();
            let (unit_ms, unit_len): (u64, usize) = if rest.starts_with(b"ms") {
                (1, 2)
            } else {
                match rest.first() {
                    Some(b's') => (1_000, 1),
                    Some(b'm') => (60_000, 1),
                    Some(b'h') => (3_600_000, 1),
                    Some(b'd') => (86_400_000, 1),
                    _ => return Err(DurationError::Unit(at)),
                }
            };
            at += unit_len;
            total_ms = value
                .checked_mul(unit_ms)
                .and_then(|part| total_ms.checked_add(part))
                .ok_or(DurationError::TooLong)?;
        }
        if total_ms / 1_000 > MAX_SECS {
            return Err(DurationError::TooLong);
        }
        Ok(HumanDuration(Duration::from_millis(total_ms)))
    }
}

impl fmt::Display for HumanDuration {
    /// The canonical spelling: largest units first, zero parts left out, `"0s"` for zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total_ms = self.0.as_millis();
        if total_ms == 0 {
            return f.write_str("0s");
        }
        let parts = [
            (86_400_000u128, "d"),
            (3_600_000, "h"),
            (60_000, "m"),
            (1_000, "s"),
            (1, "ms"),
        ];
        let mut rest = total_ms;
        for (unit, suffix) in parts {
            let count = rest / unit;
            if count > 0 {
                write!(f, "{count}{suffix}")?;
                rest -= count * unit;
            }
        }
        Ok(())
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<HumanDuration, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Duration, DurationError> {
        text.parse::<HumanDuration>().map(HumanDuration::get)
    }

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse("1m1ms"), Ok(Duration::from_millis(60_001)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_malformed_strings() {
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert_eq!(parse("30"), Err(DurationError::Unit(2)));
        assert_eq!(parse("s"), Err(DurationError::Number(0)));
        assert_eq!(parse("1x"), Err(DurationError::Unit(1)));
        assert_eq!(parse(" 1s"), Err(DurationError::Number(0)));
        assert_eq!(parse("1s "), Err(DurationError::Number(2)));
        assert_eq!(parse("-1s"), Err(DurationError::Number(0)));
        assert_eq!(parse("1.5s"), Err(DurationError::Unit(1)));
        assert_eq!(parse("36501d"), Err(DurationError::TooLong));
        assert_eq!(parse("99999999999999999999s"), Err(DurationError::TooLong));
    }

    #[test]
    fn displays_canonically() {
        let shown = |text: &str| text.parse::<HumanDuration>().map(|d| d.to_string());
        assert_eq!(shown("90m").as_deref(), Ok("1h30m"));
        assert_eq!(shown("1500ms").as_deref(), Ok("1s500ms"));
        assert_eq!(shown("0ms").as_deref(), Ok("0s"));
    }

    proptest::proptest! {
        #[test]
        fn display_round_trips(ms in 0u64..(MAX_SECS * 1000)) {
            let value = HumanDuration::new(Duration::from_millis(ms));
            let again: HumanDuration = value.to_string().parse().map_err(|e| {
                proptest::test_runner::TestCaseError::fail(format!("{e}"))
            })?;
            proptest::prop_assert_eq!(again, value);
        }

        #[test]
        fn never_panics(text in "\\PC{0,24}") {
            let _ = text.parse::<HumanDuration>();
        }
    }
}
