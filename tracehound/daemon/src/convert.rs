//! Between the wire (`tracehound_rpc::pb`) and the core.

use serde::de::IgnoredAny;
use tracehound_core::agent::InterceptResult;
use tracehound_core::id::generate_secure_id;
use tracehound_core::types::{IdentityContext, Scent, ThreatSignal};
use tracehound_rpc::pb;

/// The error code for requests the daemon cannot turn into a scent.
pub const INVALID_SCENT: &str = "SCENT_PAYLOAD_INVALID";

/// A request that cannot become a scent: an `error` reply's code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest {
    /// v1-style code.
    pub code: &'static str,
    /// Why (never payload content).
    pub message: String,
}

fn bad(message: String) -> BadRequest {
    BadRequest {
        code: INVALID_SCENT,
        message,
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// Builds the scent for `req`. A clean scent's payload is only checked to be JSON, never
/// built (the core never reads it); an empty payload is `null`.
pub fn scent_from(req: pb::InterceptRequest, now_ms: f64) -> Result<Scent, BadRequest> {
    let threat = match &req.threat {
        None => None,
        Some(t) => {
            Some(ThreatSignal::parse(&t.category, &t.severity).map_err(|e| bad(e.to_string()))?)
        }
    };
    let payload = if req.payload_json.is_empty() {
        serde_json::Value::Null
    } else if threat.is_some() {
        serde_json::from_str(&req.payload_json)
            .map_err(|e| bad(format!("payload_json is not JSON: {e}")))?
    } else {
        serde_json::from_str::<IgnoredAny>(&req.payload_json)
            .map_err(|e| bad(format!("payload_json is not JSON: {e}")))?;
        serde_json::Value::Null
    };
    let id = if req.id.is_empty() {
        generate_secure_id()
    } else {
        req.id
    };
    let timestamp = if req.timestamp_ms > 0.0 && req.timestamp_ms.is_finite() {
        req.timestamp_ms
    } else {
        now_ms
    };
    let identity = req.identity.map(|i| IdentityContext {
        user_id: non_empty(i.user_id),
        tenant_id: non_empty(i.tenant_id),
        session_id: non_empty(i.session_id),
    });
    Ok(Scent {
        id,
        timestamp,
        source: req.source,
        payload,
        threat,
        identity,
    })
}

/// The reply for a core result.
pub fn reply_from(sequence: u64, result: &InterceptResult) -> pb::InterceptReply {
    let mut r = pb::InterceptReply {
        sequence,
        ..Default::default()
    };
    match result {
        InterceptResult::Clean => r.status = pb::Status::Clean.into(),
        InterceptResult::RateLimited { retry_after_ms } => {
            r.status = pb::Status::RateLimited.into();
            r.retry_after_ms = *retry_after_ms;
        }
        InterceptResult::PayloadTooLarge { limit } => {
            r.status = pb::Status::PayloadTooLarge.into();
            r.limit = *limit as u64;
        }
        InterceptResult::Ignored { signature } => {
            r.status = pb::Status::Ignored.into();
            r.signature = signature.clone();
        }
        InterceptResult::Quarantined { handle } => {
            r.status = pb::Status::Quarantined.into();
            r.signature = handle.signature().to_owned();
            r.hash = handle.hash().to_owned();
            r.size = handle.size() as u64;
            r.severity = handle.severity().as_str().to_owned();
            r.captured_ms = handle.captured();
        }
        InterceptResult::Error { error } => {
            r.status = pb::Status::Error.into();
            r.error_code = error.code().to_owned();
            r.error_message = error.message().to_owned();
        }
    }
    r
}

/// The reply for a request refused before the core.
pub fn error_reply(sequence: u64, bad: BadRequest) -> pb::InterceptReply {
    pb::InterceptReply {
        sequence,
        status: pb::Status::Error.into(),
        error_code: bad.code.to_owned(),
        error_message: bad.message,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(payload: &str, threat: Option<(&str, &str)>) -> pb::InterceptRequest {
        pb::InterceptRequest {
            source: "s".into(),
            payload_json: payload.into(),
            threat: threat.map(|(c, s)| pb::Threat {
                category: c.into(),
                severity: s.into(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn clean_payload_is_checked_but_not_kept() {
        let s = scent_from(req("{\"a\":1}", None), 5.0).unwrap();
        assert_eq!(s.payload, serde_json::Value::Null);
        assert_eq!(s.timestamp, 5.0);
        assert!(!s.id.is_empty());
        assert!(scent_from(req("{nope", None), 5.0).is_err());
    }

    #[test]
    fn threats_keep_payload_and_reject_unknown_names() {
        let s = scent_from(req("{\"a\":1}", Some(("injection", "high"))), 5.0).unwrap();
        assert_eq!(s.payload, serde_json::json!({"a": 1}));
        let e = scent_from(req("1", Some(("bogus", "high"))), 5.0).unwrap_err();
        assert_eq!(e.code, INVALID_SCENT);
        assert!(e.message.contains("bogus"));
        assert!(scent_from(req("1", Some(("spam", "HIGH"))), 5.0).is_err());
    }
}
