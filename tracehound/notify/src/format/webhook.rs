//! v1's webhook (spec §21): `POST url`, body `JSON.stringify(event)`, optional
//! `X-Tracehound-Signature: sha256=HMAC`. The core builds the exact request; a single
//! event is delivered byte-identical to v1, a coalesced one carries `count`, `firstSeen`,
//! `lastSeen` and `signatures` appended to the first event's payload.

use tracehound_core::webhook::{WebhookConfig, WebhookRequest};

use crate::record::Record;

/// The request for one record.
pub fn request(hook: &WebhookConfig, record: &Record) -> WebhookRequest {
    hook.build_request(&record.to_event())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::fixtures::records;
    use tracehound_core::webhook::verify_signature;
    use zeroize::Zeroizing;

    #[test]
    fn single_event_is_v1_and_coalesced_adds_counts() {
        let (q, t) = records();
        let mut hook = WebhookConfig::new("http://127.0.0.1:1/hook");
        hook.secret = Some(Zeroizing::new(b"s3cret".to_vec()));
        let r = request(&hook, &t);
        assert_eq!(
            r.body,
            r#"{"type":"threat.detected","timestamp":1700000000000,"payload":{"scentId":"s-1","category":"injection","severity":"high","source":"10.1.2.3"},"id":"evt-2"}"#
        );
        let sig = r.header("X-Tracehound-Signature").unwrap_or_default();
        assert!(verify_signature(b"s3cret", r.body.as_bytes(), sig));
        let r = request(&hook, &q);
        assert_eq!(
            r.body,
            r#"{"type":"evidence.quarantined","timestamp":1700000000123,"payload":{"signature":"injection:abcd","size":1050,"severity":"critical","count":3,"firstSeen":1700000000123,"lastSeen":1700000005000,"signatures":["injection:abcd"]},"id":"evt-1"}"#
        );
    }
}
