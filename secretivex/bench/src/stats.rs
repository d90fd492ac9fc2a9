//! Counters and latency histograms: kept per client or per shard while running, merged at
//! the end.

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::Serialize;

use crate::conn::OpError;

/// Highest latency the histograms resolve (60 s); slower requests are recorded as 60 s.
const MAX_LATENCY_US: u64 = 60_000_000;
/// Significant digits: 0.1 % resolution at every scale.
const SIGFIG: u8 = 3;
/// Histogram shards. One histogram per client would cost about 250 KiB each (250 MB for
/// 1,000 clients); a few shards behind uncontended locks cost next to nothing.
const SHARDS: usize = 16;

/// Per-client tallies, summed with [`Counters::merge`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Successful operations.
    pub ops: u64,
    /// Successful sign operations.
    pub sign_ops: u64,
    /// Successful list operations.
    pub list_ops: u64,
    /// Failed operations of any kind (the sum of the breakdown below).
    pub failures: u64,
    /// Failures that were timeouts (connect or request).
    pub timeouts: u64,
    /// Connects that could not be established (timeouts excluded).
    pub connect_errors: u64,
    /// Connections broken while writing or reading.
    pub io_errors: u64,
    /// Replies that were not valid for the request.
    pub protocol_errors: u64,
    /// `SSH_AGENT_FAILURE` replies.
    pub agent_failures: u64,
    /// Sampled signatures (or list answers) that did not check out.
    pub verify_failures: u64,
    /// Sampled replies that checked out.
    pub verified: u64,
    /// Connect attempts retried because the backlog was full; not failures.
    pub connect_retries: u64,
    /// Connections established.
    pub connects: u64,
}

impl Counters {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Counters) {
        self.ops += other.ops;
        self.sign_ops += other.sign_ops;
        self.list_ops += other.list_ops;
        self.failures += other.failures;
        self.timeouts += other.timeouts;
        self.connect_errors += other.connect_errors;
        self.io_errors += other.io_errors;
        self.protocol_errors += other.protocol_errors;
        self.agent_failures += other.agent_failures;
        self.verify_failures += other.verify_failures;
        self.verified += other.verified;
        self.connect_retries += other.connect_retries;
        self.connects += other.connects;
    }

    /// Counts one failed operation under its reason.
    pub fn count_failure(&mut self, err: &OpError) {
        self.failures += 1;
        let slot = match err {
            OpError::ConnectTimeout | OpError::RequestTimeout => &mut self.timeouts,
            OpError::Connect(_) => &mut self.connect_errors,
            OpError::Io(_) => &mut self.io_errors,
            OpError::Protocol(_) => &mut self.protocol_errors,
            OpError::AgentFailure => &mut self.agent_failures,
            OpError::Verify(_) => &mut self.verify_failures,
        };
        *slot += 1;
    }
}

/// Latency histograms in microseconds, sharded by client.
#[derive(Debug)]
pub struct Latencies {
    shards: Vec<Mutex<Histogram<u64>>>,
    /// An empty histogram with the shards' bounds, the starting point of [`Self::merged`].
    empty: Histogram<u64>,
}

impl Latencies {
    /// Empty histograms covering 1 µs to 60 s at 3 significant digits.
    pub fn new() -> Result<Latencies, hdrhistogram::CreationError> {
        let empty = Histogram::new_with_bounds(1, MAX_LATENCY_US, SIGFIG)?;
        Ok(Latencies {
            shards: (0..SHARDS).map(|_| Mutex::new(empty.clone())).collect(),
            empty,
        })
    }

    /// Records one latency for `client`.
    pub fn record(&self, client: usize, micros: u64) {
        if let Some(shard) = self.shards.get(client % SHARDS) {
            shard.lock().saturating_record(micros.max(1));
        }
    }

    /// Merges all shards into one histogram.
    pub fn merged(&self) -> Histogram<u64> {
        let mut all = self.empty.clone();
        for shard in &self.shards {
            // Same bounds everywhere, so adding cannot fail; values above the bound were
            // already saturated when recorded.
            let _ = all.add(&*shard.lock());
        }
        all
    }
}

/// Percentiles of a latency histogram, in microseconds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Slowest request.
    pub max: u64,
    /// Fastest request.
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// Number of requests in the histogram (successful operations).
    pub count: u64,
}

impl LatencySummary {
    /// Summarises `h`; all zero when it is empty.
    pub fn of(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            min: h.min(),
            mean: h.mean(),
            count: h.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_merge_into_every_sample() {
        let lat = Latencies::new().unwrap();
        for i in 0..1000u64 {
            lat.record(usize::try_from(i).unwrap(), i + 1);
        }
        lat.record(3, u64::MAX);
        let s = LatencySummary::of(&lat.merged());
        assert_eq!(s.count, 1001);
        assert_eq!(s.min, 1);
        assert!((499..=501).contains(&s.p50), "{s:?}");
        assert!((989..=991).contains(&s.p99), "{s:?}");
        // Saturated at the histogram's top, within its precision.
        assert!(s.max >= MAX_LATENCY_US && s.max <= MAX_LATENCY_US + MAX_LATENCY_US / 500);
    }

    #[test]
    fn failures_are_counted_by_reason() {
        let mut a = Counters::default();
        a.count_failure(&OpError::RequestTimeout);
        a.count_failure(&OpError::ConnectTimeout);
        a.count_failure(&OpError::AgentFailure);
        a.count_failure(&OpError::Verify("x".into()));
        let mut b = Counters {
            ops: 5,
            connect_retries: 7,
            ..Counters::default()
        };
        b.merge(&a);
        assert_eq!(b.failures, 4);
        assert_eq!(b.timeouts, 2);
        assert_eq!(b.agent_failures, 1);
        assert_eq!(b.verify_failures, 1);
        assert_eq!(b.ops, 5);
        assert_eq!(b.connect_retries, 7);
    }

    #[test]
    fn empty_summary_is_zero() {
        assert_eq!(
            LatencySummary::of(&Latencies::new().unwrap().merged()).count,
            0
        );
    }
}
