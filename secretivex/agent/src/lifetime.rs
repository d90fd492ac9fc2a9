//! Key lifetimes written as OpenSSH writes time intervals (`sshd_config(5)` TIME FORMATS):
//! a plain number of seconds, or a sequence of `<number><unit>` with units `s`, `m`, `h`,
//! `d`, `w` (either case), e.g. `1h30m`.

use std::time::Duration;

/// Why a lifetime string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LifetimeError {
    #[error("empty time interval")]
    Empty,
    #[error("invalid time interval {0:?}: expected e.g. 90, 1h30m, 2d")]
    Invalid(String),
    #[error("time interval {0:?} is too long")]
    TooLong(String),
}

/// Largest interval accepted, as OpenSSH (`INT_MAX` seconds).
const MAX_SECONDS: u64 = i32::MAX as u64;

/// Parses an OpenSSH time interval into a duration.
pub fn parse_lifetime(text: &str) -> Result<Duration, LifetimeError> {
    if text.is_empty() {
        return Err(LifetimeError::Empty);
    }
    let invalid = || LifetimeError::Invalid(text.to_string());
    let too_long = || LifetimeError::TooLong(text.to_string());
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let (number, after) = rest.split_at(digits);
        let value: u64 = number.parse().map_err(|_| too_long())?;
        let (multiplier, after) = match after.bytes().next() {
            None => (1, after),
            Some(b's' | b'S') => (1, &after[1..]),
            Some(b'm' | b'M') => (60, &after[1..]),
            Some(b'h' | b'H') => (3600, &after[1..]),
            Some(b'd' | b'D') => (86_400, &after[1..]),
            Some(b'w' | b'W') => (604_800, &after[1..]),
            Some(_) => return Err(invalid()),
        };
        let part = value.checked_mul(multiplier).ok_or_else(too_long)?;
        total = total.checked_add(part).ok_or_else(too_long)?;
        if total > MAX_SECONDS {
            return Err(too_long());
        }
        rest = after;
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(text: &str) -> u64 {
        parse_lifetime(text).unwrap().as_secs()
    }

    #[test]
    fn plain_seconds() {
        assert_eq!(secs("0"), 0);
        assert_eq!(secs("2"), 2);
        assert_eq!(secs("600"), 600);
    }

    #[test]
    fn units_and_sequences() {
        assert_eq!(secs("10s"), 10);
        assert_eq!(secs("10m"), 600);
        assert_eq!(secs("1h30m"), 5400);
        assert_eq!(secs("1H30M"), 5400);
        assert_eq!(secs("2d"), 172_800);
        assert_eq!(secs("1w"), 604_800);
        assert_eq!(secs("1w2d3h4m5s"), 604_800 + 172_800 + 10_800 + 240 + 5);
        assert_eq!(secs("90m10"), 5410);
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse_lifetime(""), Err(LifetimeError::Empty));
        for bad in ["h", "1x", "-5", "1h-", " 5", "5 ", "1.5h", "m30"] {
            assert!(
                matches!(parse_lifetime(bad), Err(LifetimeError::Invalid(_))),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn rejects_overflow() {
        assert!(matches!(
            parse_lifetime("99999999999999999999999"),
            Err(LifetimeError::TooLong(_))
        ));
        assert!(matches!(
            parse_lifetime("4000w"),
            Err(LifetimeError::TooLong(_))
        ));
        assert_eq!(secs("2147483647"), 2_147_483_647);
        assert!(parse_lifetime("2147483648").is_err());
    }
}
