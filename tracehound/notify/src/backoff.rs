//! Capped exponential back-off with jitter, and which outcomes are worth a retry.

use std::time::Duration;

/// The delay before retry number `retry` (1-based): `base · 2^(retry-1)` capped at
/// `max`, then "equal jitter": half of it fixed, the other half scaled by `jitter`
/// (a fraction in `[0, 1)` the caller draws), so senders that failed together do not
/// retry together.
pub fn delay(base: Duration, max: Duration, retry: u32, jitter: f64) -> Duration {
    let exp = retry.saturating_sub(1).min(30);
    let full = base.saturating_mul(1u32 << exp).min(max);
    let half = full / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

/// Whether an HTTP status is worth another attempt: 408, 429 and 5xx.
pub fn retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_caps_and_jitter_stays_within_half() {
        let b = Duration::from_millis(100);
        let m = Duration::from_millis(1000);
        assert_eq!(delay(b, m, 1, 0.0), Duration::from_millis(50));
        assert_eq!(delay(b, m, 1, 1.0), Duration::from_millis(100));
        assert_eq!(delay(b, m, 3, 1.0), Duration::from_millis(400));
        assert_eq!(delay(b, m, 10, 1.0), Duration::from_millis(1000));
        assert_eq!(delay(b, m, 10, 0.0), Duration::from_millis(500));
        assert_eq!(delay(b, m, u32::MAX, 0.5), Duration::from_millis(750));
        assert!(retryable_status(503) && retryable_status(429) && !retryable_status(400));
    }
}
