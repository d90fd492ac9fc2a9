//! Webhook wire format (spec §21) bit-exact with v1, and its retry policy.
//!
//! A request is `POST url` with body `JSON.stringify(event)` (keys `type, timestamp,
//! payload, id`; payload keys in the caller's order, not canonical), headers
//! `Content-Type: application/json`, `User-Agent: Tracehound/1.0`, then the custom
//! headers, then — with a secret — `X-Tracehound-Signature: sha256={hex HMAC-SHA256}` of
//! the body. No I/O happens here: callers send [`WebhookRequest`]s with their own HTTP
//! client (through [`WebhookTransport`]) and use [`RetryPolicy`] for v1's retries.

use std::fmt;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::canonical::{write_number_or_null, write_string};
use crate::notify::{Event, EventType};

/// The signature header's name.
pub const SIGNATURE_HEADER: &str = "X-Tracehound-Signature";
/// v1's `User-Agent`.
pub const USER_AGENT: &str = "Tracehound/1.0";

/// `sha256={hex HMAC-SHA256(secret, body)}` (v1's signature header value).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hex::encode(hmac_sha256(secret, body)))
}

fn hmac_sha256(secret: &[u8], body: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length, so this never fails; no panic path either way.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret) else {
        return [0; 32];
    };
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// Checks a received signature header against `body` in constant time.
pub fn verify_signature(secret: &[u8], body: &[u8], header_value: &str) -> bool {
    let Some(hex_part) = header_value.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(given) = hex::decode(hex_part) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// A webhook registration (v1 `registerWebhook` options).
#[derive(Clone)]
pub struct WebhookConfig {
    /// Target URL.
    pub url: String,
    /// Event types to deliver; empty = all (v1: missing or empty `events`).
    pub events: Vec<EventType>,
    /// Custom headers, in order; a name equal to a default header overrides its value.
    pub headers: Vec<(String, String)>,
    /// HMAC secret; zeroized on drop and never printed.
    pub secret: Option<Zeroizing<Vec<u8>>>,
    /// Retry settings.
    pub retry: RetryPolicy,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("events", &self.events)
            .field("headers", &self.headers)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("retry", &self.retry)
            .finish()
    }
}

impl WebhookConfig {
    /// A registration for `url` with v1's defaults (all events, no headers, no secret).
    pub fn new(url: impl Into<String>) -> Self {
        WebhookConfig {
            url: url.into(),
            events: Vec::new(),
            headers: Vec::new(),
            secret: None,
            retry: RetryPolicy::default(),
        }
    }

    /// Whether this webhook wants events of `event_type`.
    pub fn wants(&self, event_type: EventType) -> bool {
        self.events.is_empty() || self.events.contains(&event_type)
    }

    /// Builds the exact request v1 would send for `event`.
    pub fn build_request(&self, event: &Event) -> WebhookRequest {
        let body = event_body(event);
        let mut headers: Vec<(String, String)> = vec![
            ("Content-Type".into(), "application/json".into()),
            ("User-Agent".into(), USER_AGENT.into()),
        ];
        // Object-spread semantics: an existing name keeps its place, takes the new value.
        let mut set = |name: &str, value: String| match headers.iter_mut().find(|(n, _)| n == name)
        {
            Some(slot) => slot.1 = value,
            None => headers.push((name.to_string(), value)),
        };
        for (name, value) in &self.headers {
            set(name, value.clone());
        }
        if let Some(secret) = &self.secret {
            set(SIGNATURE_HEADER, sign(secret, body.as_bytes()));
        }
        WebhookRequest {
            url: self.url.clone(),
            method: "POST",
            headers,
            body,
        }
    }
}

/// One HTTP request to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRequest {
    /// Target URL.
    pub url: String,
    /// Always `POST`.
    pub method: &'static str,
    /// Headers in v1's order.
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: String,
}

impl WebhookRequest {
    /// The value of header `name` (exact, case-sensitive match as in v1's object).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `JSON.stringify(event)`: `{"type":…,"timestamp":…,"payload":…,"id":…}`.
pub fn event_body(event: &Event) -> String {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"{\"type\":");
    write_string(&mut out, event.event_type.as_str().as_bytes());
    out.extend_from_slice(b",\"timestamp\":");
    write_number_or_null(&mut out, event.timestamp as f64);
    out.extend_from_slice(b",\"payload\":");
    write_js_json(&mut out, event.payload());
    out.extend_from_slice(b",\"id\":");
    write_string(&mut out, event.id().as_bytes());
    out.push(b'}');
    into_string(out)
}

/// `JSON.stringify(value)` for a JSON value, keys in the value's own order (serde_json
/// is built with `preserve_order`), numbers formatted as ECMAScript does.
pub fn js_stringify(value: &Value) -> String {
    let mut out = Vec::new();
    write_js_json(&mut out, value);
    into_string(out)
}

fn into_string(out: Vec<u8>) -> String {
    // Only `&str` contents and ASCII were written.
    String::from_utf8(out).unwrap_or_default()
}

fn write_js_json(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => match n.as_f64() {
            Some(f) => write_number_or_null(out, f),
            None => out.extend_from_slice(b"null"),
        },
        Value::String(s) => write_string(out, s.as_bytes()),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_js_json(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, k.as_bytes());
                out.push(b':');
                write_js_json(out, v);
            }
            out.push(b'}');
        }
    }
}

/// v1's retry settings: up to `max_attempts` tries, sleeping `delay_ms * attempt` after a
/// network error or an HTTP status ≥ 500 (linear back-off, as the code does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts (v1 default 3).
    pub max_attempts: u32,
    /// Base delay in ms (v1 default 1000).
    pub delay_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            delay_ms: 1000,
        }
    }
}

/// What one delivery attempt returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// An HTTP response with this status.
    Status(u16),
    /// No response (connection refused, timeout, ...).
    NetworkError,
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// 2xx: done.
    Delivered,
    /// Retry after this many ms.
    RetryAfterMs(u64),
    /// Stop: a 4xx/other non-OK status, or attempts exhausted.
    GiveUp,
}

impl RetryPolicy {
    /// Decision after attempt number `attempt` (1-based) ended with `outcome`.
    pub fn decide(&self, attempt: u32, outcome: AttemptOutcome) -> RetryDecision {
        let retryable = match outcome {
            AttemptOutcome::Status(s) if (200..300).contains(&s) => {
                return RetryDecision::Delivered
            }
            AttemptOutcome::Status(s) => s >= 500,
            AttemptOutcome::NetworkError => true,
        };
        if retryable && attempt < self.max_attempts {
            RetryDecision::RetryAfterMs(self.delay_ms.saturating_mul(u64::from(attempt)))
        } else {
            RetryDecision::GiveUp
        }
    }
}

/// Sends a request; implemented by the caller's HTTP client.
pub trait WebhookTransport {
    /// Performs one attempt.
    fn send(&self, request: &WebhookRequest) -> AttemptOutcome;
}

/// Result of [`deliver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Attempts made.
    pub attempts: u32,
    /// Whether a 2xx was received.
    pub delivered: bool,
}

/// Delivers `request` with v1's retry loop; `sleep_ms` is called between attempts so the
/// caller decides how to wait (thread sleep, async timer, or nothing in tests).
pub fn deliver<T: WebhookTransport + ?Sized>(
    transport: &T,
    request: &WebhookRequest,
    policy: RetryPolicy,
    mut sleep_ms: impl FnMut(u64),
) -> DeliveryReport {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match policy.decide(attempt, transport.send(request)) {
            RetryDecision::Delivered => {
                return DeliveryReport {
                    attempts: attempt,
                    delivered: true,
                }
            }
            RetryDecision::RetryAfterMs(ms) => sleep_ms(ms),
            RetryDecision::GiveUp => {
                return DeliveryReport {
                    attempts: attempt,
                    delivered: false,
                }
            }
        }
    }
}
