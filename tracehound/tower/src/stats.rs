//! The layer's counters: relaxed atomics, one per outcome, shared by every clone of the
//! layer and its services.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of what the layer did. Every request lands in exactly one of `passed`,
/// `quarantined`, `duplicates`, `rate_limited`, `payload_too_large`; the other fields
/// count reasons and are not exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LayerStats {
    /// Requests seen.
    pub requests: u64,
    /// Requests forwarded to the inner service (clean ones and every fail-open).
    pub passed: u64,
    /// Answered with the quarantine status: newly quarantined evidence.
    pub quarantined: u64,
    /// Answered with the quarantine status: the same evidence was already held (the core's
    /// `ignored`).
    pub duplicates: u64,
    /// Answered 429.
    pub rate_limited: u64,
    /// Answered 413 (the flagged request's evidence exceeds the agent's payload limit).
    pub payload_too_large: u64,
    /// Requests flagged by a trusted WAF header.
    pub waf_flagged: u64,
    /// Requests flagged by the detector.
    pub detector_flagged: u64,
    /// Detector calls that exceeded the deadline (the request passed unjudged).
    pub detector_timeouts: u64,
    /// Detector calls that returned an error or panicked (the request passed unjudged).
    pub detector_errors: u64,
    /// The subset of `detector_errors` that were panics.
    pub detector_panics: u64,
    /// Requests passed because something inside failed: a core `error` result, no peer
    /// address on the request, a body read error before forwarding, or a panic of the
    /// layer's own detection code (e.g. a runtime without timers); in that last case the
    /// request is still rate-limited as a clean one.
    pub fail_open_internal: u64,
    /// The subset of `fail_open_internal` where reading the body prefix failed (the
    /// error is replayed to the inner service after the bytes read).
    pub body_read_errors: u64,
    /// The subset of `fail_open_internal` without a peer address (neither `PeerAddr` nor
    /// axum's `ConnectInfo<SocketAddr>` in the request extensions).
    pub missing_peer: u64,
    /// WAF headers ignored because the peer is not a trusted proxy.
    pub untrusted_waf_headers: u64,
    /// WAF headers from a trusted peer that did not parse (the request is judged as if
    /// the header were absent).
    pub invalid_waf_headers: u64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Counter {
    Requests,
    Passed,
    Quarantined,
    Duplicates,
    RateLimited,
    PayloadTooLarge,
    WafFlagged,
    DetectorFlagged,
    DetectorTimeouts,
    DetectorErrors,
    DetectorPanics,
    FailOpenInternal,
    BodyReadErrors,
    MissingPeer,
    UntrustedWafHeaders,
    InvalidWafHeaders,
}

const COUNTERS: usize = Counter::InvalidWafHeaders as usize + 1;

/// One atomic per counter.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    slots: [AtomicU64; COUNTERS],
}

impl Counters {
    pub(crate) fn bump(&self, c: Counter) {
        if let Some(slot) = self.slots.get(c as usize) {
            slot.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn get(&self, c: Counter) -> u64 {
        self.slots
            .get(c as usize)
            .map_or(0, |s| s.load(Ordering::Relaxed))
    }

    pub(crate) fn snapshot(&self) -> LayerStats {
        LayerStats {
            requests: self.get(Counter::Requests),
            passed: self.get(Counter::Passed),
            quarantined: self.get(Counter::Quarantined),
            duplicates: self.get(Counter::Duplicates),
            rate_limited: self.get(Counter::RateLimited),
            payload_too_large: self.get(Counter::PayloadTooLarge),
            waf_flagged: self.get(Counter::WafFlagged),
            detector_flagged: self.get(Counter::DetectorFlagged),
            detector_timeouts: self.get(Counter::DetectorTimeouts),
            detector_errors: self.get(Counter::DetectorErrors),
            detector_panics: self.get(Counter::DetectorPanics),
            fail_open_internal: self.get(Counter::FailOpenInternal),
            body_read_errors: self.get(Counter::BodyReadErrors),
            missing_peer: self.get(Counter::MissingPeer),
            untrusted_waf_headers: self.get(Counter::UntrustedWafHeaders),
            invalid_waf_headers: self.get(Counter::InvalidWafHeaders),
        }
    }
}
