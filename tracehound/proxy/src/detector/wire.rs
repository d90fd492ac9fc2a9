//! The detector endpoint's JSON wire format.
//!
//! Request (`POST`, `Content-Type: application/json`):
//!
//! ```json
//! {
//!   "method": "POST",
//!   "uri": "/login?next=%2F",
//!   "client": "203.0.113.9",
//!   "headers": [["content-type", "application/x-www-form-urlencoded"], ["user-agent", "curl/8.5.0"]],
//!   "body_base64": "dXNlcj1hZG1pbicgT1IgMT0xIC0t",
//!   "body_truncated": false
//! }
//! ```
//!
//! `headers` keeps order and repeats; values that are not UTF-8 are sent lossily, and the
//! credentials headers (`authorization`, `proxy-authorization`, `cookie`) are never sent.
//! `body_base64` is the body prefix the layer inspected (at most the inspection limit);
//! `body_truncated` says the body was longer.
//!
//! Answer (`2xx`, JSON, at most [`MAX_ANSWER_BYTES`]): `{"threat": null}` for a clean
//! request, or `{"threat": {"category": "injection", "severity": "high"}}` with v1's
//! category (`injection`, `ddos`, `flood`, `spam`, `malware`, `unknown`) and severity
//! (`low`, `medium`, `high`, `critical`) names. Anything else is a detector error: the
//! request passes (fail-open) and the error is counted.

use base64::Engine as _;
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use tracehound_core::types::ThreatSignal;

/// Largest detector answer read; a longer one is an error (it cannot be a verdict).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Header names never sent to the detector: they carry credentials.
const WITHHELD: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

/// What the detector endpoint is told about one request.
#[derive(Debug, Serialize)]
pub struct DetectorQuery<'a> {
    /// Request method.
    pub method: &'a str,
    /// Path and query as the client sent them.
    pub uri: &'a str,
    /// The client address Tracehound attributes the request to.
    pub client: &'a str,
    /// Header name/value pairs, credentials withheld.
    pub headers: Vec<(&'a str, String)>,
    /// The inspected body prefix, base64 (standard alphabet, padded).
    pub body_base64: String,
    /// The body was longer than the prefix.
    pub body_truncated: bool,
}

impl<'a> DetectorQuery<'a> {
    /// The query for one request.
    pub fn new(
        method: &'a str,
        uri: &'a str,
        client: &'a str,
        headers: &'a HeaderMap,
        body_prefix: &[u8],
        body_truncated: bool,
    ) -> DetectorQuery<'a> {
        let headers = headers
            .iter()
            .filter(|(name, _)| !WITHHELD.contains(&name.as_str()))
            .map(|(name, value)| {
                (
                    name.as_str(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        DetectorQuery {
            method,
            uri,
            client,
            headers,
            body_base64: base64::engine::general_purpose::STANDARD.encode(body_prefix),
            body_truncated,
        }
    }
}

#[derive(Debug, Deserialize)]
struct WireThreat {
    category: String,
    severity: String,
}

/// Why an answer could not be read as a verdict.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// Not JSON of the documented shape.
    #[error("answer is not {{\"threat\": null | {{\"category\", \"severity\"}}}}: {0}")]
    Shape(#[from] serde_json::Error),
    /// A JSON object without the `threat` member.
    #[error("answer has no \"threat\" member")]
    MissingThreat,
    /// A category or severity name v1 does not know.
    #[error("answer names an unknown {kind} {name:?}")]
    UnknownName {
        /// `category` or `severity`.
        kind: &'static str,
        /// The name given.
        name: String,
    },
}

/// Reads a detector answer.
pub fn parse_answer(bytes: &[u8]) -> Result<Option<ThreatSignal>, AnswerError> {
    // Parsed in two steps so that a missing `threat` member is an error, not "clean".
    let mut answer: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(bytes)?;
    let threat = answer.remove("threat").ok_or(AnswerError::MissingThreat)?;
    match Option::<WireThreat>::deserialize(threat)? {
        None => Ok(None),
        Some(threat) => ThreatSignal::parse(&threat.category, &threat.severity)
            .map(Some)
            .map_err(|e| AnswerError::UnknownName {
                kind: e.kind,
                name: e.name,
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracehound_core::types::{Severity, ThreatCategory};

    #[test]
    fn answers_are_read_strictly() {
        assert!(matches!(parse_answer(br#"{"threat": null}"#), Ok(None)));
        assert_eq!(
            parse_answer(br#"{"threat": {"category": "injection", "severity": "high"}}"#)
                .expect("valid"),
            Some(ThreatSignal::new(ThreatCategory::Injection, Severity::High))
        );
        for bad in [
            &br#"{"threat": {"category": "nope", "severity": "high"}}"#[..],
            br#"{"threat": {"category": "injection"}}"#,
            br#"{}"#,
            b"garbage",
            b"",
        ] {
            assert!(
                parse_answer(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn credentials_are_withheld_from_the_query() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer secret".parse().expect("valid"));
        headers.insert("cookie", "sid=secret".parse().expect("valid"));
        headers.insert("user-agent", "t/1".parse().expect("valid"));
        let query = DetectorQuery::new("GET", "/x", "10.0.0.1", &headers, b"hi", true);
        let json = serde_json::to_string(&query).expect("serialisable");
        assert!(!json.contains("secret"), "{json}");
        assert!(json.contains(r#"["user-agent","t/1"]"#), "{json}");
        assert!(json.contains(r#""body_base64":"aGk=""#), "{json}");
        assert!(json.contains(r#""body_truncated":true"#), "{json}");
    }
}
