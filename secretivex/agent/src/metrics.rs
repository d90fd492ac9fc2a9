//! The agent's counters and histograms, kept in a `prometheus-client` registry and
//! rendered in the Prometheus text format (see [`crate::metrics_http`] for the listener).
//!
//! Metrics are always collected: the hot path only touches handles resolved once at start
//! (an atomic add per counter, a short mutex per histogram observation), so there is no
//! label lookup per request.

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use secretivex_keys::KeyAlgorithm;

/// Label set of one series: `(name, value)` pairs fixed at compile time.
type Labels = Vec<(&'static str, &'static str)>;

/// Why a request was answered with FAILURE (the `reason` label of `failures_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// No signer became free within `--sign-timeout`.
    SignTimeout,
    /// The key could not produce the signature (or the pool is shut down).
    SignError,
    /// Sign request for a key the agent does not hold.
    UnknownKey,
    /// Refused by a constraint: destination, confirmation, lock.
    Refused,
}

impl FailureReason {
    const ALL: [FailureReason; 4] = [
        FailureReason::SignTimeout,
        FailureReason::SignError,
        FailureReason::UnknownKey,
        FailureReason::Refused,
    ];

    fn label(self) -> &'static str {
        match self {
            FailureReason::SignTimeout => "sign_timeout",
            FailureReason::SignError => "sign_error",
            FailureReason::UnknownKey => "unknown_key",
            FailureReason::Refused => "refused",
        }
    }
}

/// Why a connection was closed without being served (`connections_refused_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// `--max-connections` reached.
    MaxConnections,
    /// The peer is neither the owner nor root, or its credentials could not be read.
    Peer,
}

/// Key type label for a key algorithm.
fn key_type_label(alg: KeyAlgorithm) -> &'static str {
    match alg {
        KeyAlgorithm::Ed25519 => "ed25519",
        KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
        KeyAlgorithm::EcdsaP384 => "ecdsa-p384",
        KeyAlgorithm::EcdsaP521 => "ecdsa-p521",
        KeyAlgorithm::Rsa { .. } => "rsa",
    }
}

const KEY_TYPES: [&str; 5] = ["ed25519", "ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "rsa"];

/// Every metric of one agent.
pub struct Metrics {
    registry: Registry,
    /// Pre-resolved `signs_total` series, in [`KEY_TYPES`] order.
    signs: Vec<Counter>,
    sign_seconds: Histogram,
    queue_wait_seconds: Histogram,
    connections_current: Gauge,
    connections_total: Counter,
    refused_max: Counter,
    refused_peer: Counter,
    /// Pre-resolved `failures_total` series, in [`FailureReason::ALL`] order.
    failures: Vec<Counter>,
    /// External key stores (PKCS#11): `signs_total` with their `store` label, and their
    /// own latency, error, refresh and restart series (created on first use).
    stores: StoreMetrics,
}

/// Series of the external key stores, labelled by `store`.
struct StoreMetrics {
    signs: Family<Labels, Counter>,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
    errors: Family<Labels, Counter>,
    refreshes: Family<Labels, Counter>,
    restarts: Family<Labels, Counter>,
}

fn store_latency_histogram() -> Histogram {
    // 10 µs .. ~10 s, doubling: a token signature takes from microseconds to seconds.
    Histogram::new(exponential_buckets(1e-5, 2.0, 21))
}

/// The figures a summary shows, read from the live metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub signs: u64,
    pub connections_current: i64,
    pub connections_total: u64,
    pub connections_refused: u64,
    pub failures: u64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every series created at zero, so a scrape lists them all.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("secretivex_agent");
        let signs_family = Family::<Labels, Counter>::default();
        let signs = KEY_TYPES
            .iter()
            .map(|t| signs_family.get_or_create_owned(&vec![("key_type", *t), ("store", "memory")]))
            .collect();
        let store_signs = signs_family.clone();
        registry.register(
            "signs",
            "Signatures made, by key type and key store",
            signs_family,
        );
        let stores = StoreMetrics {
            signs: store_signs,
            latency: Family::new_with_constructor(store_latency_histogram),
            errors: Family::default(),
            refreshes: Family::default(),
            restarts: Family::default(),
        };
        registry.register(
            "store_sign_latency_seconds",
            "Time an external key store (PKCS#11 token) took to sign, queue wait included",
            stores.latency.clone(),
        );
        registry.register(
            "store_errors",
            "Failed signatures of external key stores, by store and reason",
            stores.errors.clone(),
        );
        registry.register(
            "store_refreshes",
            "Key set changes seen by external key stores (token removed, returned, changed)",
            stores.refreshes.clone(),
        );
        registry.register(
            "store_helper_restarts",
            "Helper processes of external key stores started again after a crash or token churn",
            stores.restarts.clone(),
        );
        // 10 µs .. ~10 s, doubling.
        let sign_seconds = Histogram::new(exponential_buckets(1e-5, 2.0, 21));
        registry.register(
            "sign_latency_seconds",
            "Time from a sign request's arrival to its signature (queue wait included)",
            sign_seconds.clone(),
        );
        let queue_wait_seconds = Histogram::new(exponential_buckets(1e-6, 2.0, 24));
        registry.register(
            "sign_queue_wait_seconds",
            "Time a sign request waited for a free signer",
            queue_wait_seconds.clone(),
        );
        let connections_current = Gauge::default();
        registry.register(
            "connections_current",
            "Client connections open now",
            connections_current.clone(),
        );
        let connections_total = Counter::default();
        registry.register(
            "connections",
            "Client connections accepted and served",
            connections_total.clone(),
        );
        let refused = Family::<Labels, Counter>::default();
        let refused_max = refused.get_or_create_owned(&vec![("reason", "max_connections")]);
        let refused_peer = refused.get_or_create_owned(&vec![("reason", "peer")]);
        registry.register(
            "connections_refused",
            "Connections closed at once without being served",
            refused,
        );
        let failures_family = Family::<Labels, Counter>::default();
        let failures = FailureReason::ALL
            .iter()
            .map(|r| failures_family.get_or_create_owned(&vec![("reason", r.label())]))
            .collect();
        registry.register(
            "failures",
            "Sign requests answered with FAILURE, by reason",
            failures_family,
        );
        Metrics {
            registry,
            signs,
            sign_seconds,
            queue_wait_seconds,
            connections_current,
            connections_total,
            refused_max,
            refused_peer,
            failures,
            stores,
        }
    }

    /// One signature by external store `store` with a key of `key_type`: `store_time` in
    /// the store (queue included), `total` since the request arrived.
    pub fn store_signed(
        &self,
        store: &'static str,
        key_type: &'static str,
        store_time: Duration,
        total: Duration,
    ) {
        self.stores
            .signs
            .get_or_create(&vec![("key_type", key_type), ("store", store)])
            .inc();
        self.stores
            .latency
            .get_or_create(&vec![("store", store)])
            .observe(store_time.as_secs_f64());
        self.sign_seconds.observe(total.as_secs_f64());
    }

    /// A failed signature of external store `store`, by `reason`.
    pub fn store_failed(&self, store: &'static str, reason: &'static str) {
        self.stores
            .errors
            .get_or_create(&vec![("store", store), ("reason", reason)])
            .inc();
    }

    /// External store `store` saw its key set change.
    pub fn store_refreshed(&self, store: &'static str) {
        self.stores
            .refreshes
            .get_or_create(&vec![("store", store)])
            .inc();
    }

    /// External store `store` started a helper again.
    pub fn store_restarted(&self, store: &'static str) {
        self.stores
            .restarts
            .get_or_create(&vec![("store", store)])
            .inc();
    }

    /// One signature made with a key of `alg`, `total` after its arrival.
    pub fn signed(&self, alg: KeyAlgorithm, total: Duration) {
        let label = key_type_label(alg);
        if let Some(c) = KEY_TYPES
            .iter()
            .position(|t| *t == label)
            .and_then(|i| self.signs.get(i))
        {
            c.inc();
        }
        self.sign_seconds.observe(total.as_secs_f64());
    }

    /// A sign request waited `wait` for a signer.
    pub fn queue_waited(&self, wait: Duration) {
        self.queue_wait_seconds.observe(wait.as_secs_f64());
    }

    /// A sign request answered with FAILURE.
    pub fn failed(&self, reason: FailureReason) {
        if let Some(c) = FailureReason::ALL
            .iter()
            .position(|r| *r == reason)
            .and_then(|i| self.failures.get(i))
        {
            c.inc();
        }
    }

    /// A connection accepted for service; the gauge goes down with [`Metrics::closed`].
    pub fn opened(&self) {
        self.connections_total.inc();
        self.connections_current.inc();
    }

    /// A served connection ended.
    pub fn closed(&self) {
        self.connections_current.dec();
    }

    /// A connection closed without service.
    pub fn refused(&self, reason: RefusalReason) {
        match reason {
            RefusalReason::MaxConnections => self.refused_max.inc(),
            RefusalReason::Peer => self.refused_peer.inc(),
        };
    }

    /// The main figures, for logs and tests.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            signs: self.signs.iter().map(Counter::get).sum::<u64>() + self.store_signs(),
            connections_current: self.connections_current.get(),
            connections_total: self.connections_total.get(),
            connections_refused: self.refused_max.get() + self.refused_peer.get(),
            failures: self.failures.iter().map(Counter::get).sum(),
        }
    }

    /// Signatures made by external stores.
    fn store_signs(&self) -> u64 {
        KEY_TYPES
            .iter()
            .map(|t| {
                self.stores
                    .signs
                    .get(&vec![("key_type", *t), ("store", "pkcs11")])
                    .map_or(0, |c| c.get())
            })
            .sum()
    }

    /// Everything in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an error would only mean a truncated page.
        if encode(&mut out, &self.registry).is_err() {
            tracing::warn!("metrics encoding failed");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_up_in_the_text_format() {
        let m = Metrics::new();
        for _ in 0..3 {
            m.signed(KeyAlgorithm::Ed25519, Duration::from_micros(20));
        }
        m.signed(KeyAlgorithm::Rsa { bits: 3072 }, Duration::from_millis(2));
        m.failed(FailureReason::SignTimeout);
        m.opened();
        m.opened();
        m.closed();
        m.refused(RefusalReason::MaxConnections);
        let text = m.render();
        assert!(
            text.contains("secretivex_agent_signs_total{key_type=\"ed25519\",store=\"memory\"} 3")
        );
        assert!(text.contains("secretivex_agent_signs_total{key_type=\"rsa\",store=\"memory\"} 1"));
        assert!(text.contains("secretivex_agent_failures_total{reason=\"sign_timeout\"} 1"));
        assert!(text.contains("secretivex_agent_sign_latency_seconds_count 4"));
        assert_eq!(
            m.snapshot(),
            Snapshot {
                signs: 4,
                connections_current: 1,
                connections_total: 2,
                connections_refused: 1,
                failures: 1,
            }
        );
    }
}
