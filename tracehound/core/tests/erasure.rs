//! Erasure support in the core: quarantine entries erased without a v1 record, erasure
//! records that keep the chain verifiable (also through v1's export/import), and pending
//! notifications purged by signature or source.

use tracehound_core::audit::{AuditChain, RecordKind};
use tracehound_core::evidence::EvidenceFactory;
use tracehound_core::notify::{
    threat_detected_payload, EventType, NotificationEmitter, NotifyConfig,
};
use tracehound_core::quarantine::{Quarantine, QuarantineConfig, ERASURE_ID_PREFIX};
use tracehound_core::types::{Severity, ThreatCategory, ThreatSignal};
use tracehound_core::webhook::WebhookConfig;

fn evidence(n: u32) -> tracehound_core::evidence::Evidence {
    let threat = ThreatSignal::new(ThreatCategory::Injection, Severity::High);
    EvidenceFactory::new()
        .create_from(&serde_json::json!({ "n": n }), threat, 1.0, 1 << 20)
        .unwrap()
}

#[test]
fn erased_evidence_leaves_the_quarantine_and_the_chain_still_verifies() {
    let q = Quarantine::new(QuarantineConfig::default());
    let (a, b) = (evidence(1), evidence(2));
    let (sa, sb) = (a.signature().to_owned(), b.signature().to_owned());
    let ha = a.handle();
    q.insert(a, 1.0);
    q.insert(b, 1.0);
    q.neutralize(&sb, 2.0);
    let before = q.stats();
    let (removed, (index, hash)) =
        q.with_store(|s| (s.erase_evidence(&sa), s.append_erasure(&sa, 3.0)));
    assert!(removed && ha.is_disposed());
    assert!(
        !q.with_store(|s| s.erase_evidence(&sa)),
        "erasing twice finds nothing"
    );
    assert_eq!((before.count, q.stats().count, q.stats().bytes), (1, 0, 0));
    let (len, last, ok, record) = q.with_audit(|c| {
        let r = c
            .get(index)
            .map(|r| (r.id.to_owned(), r.signature.to_owned(), r.kind));
        (c.len(), c.last_hash(), c.verify(), r)
    });
    assert_eq!((len, index, last, ok), (2, 1, hash, Ok(())));
    let (id, sig, kind) = record.unwrap();
    assert!(id.starts_with(ERASURE_ID_PREFIX), "{id}");
    assert_eq!((sig, kind), (sa, RecordKind::Neutralization));
    // v1's export format carries it, and an import verifies.
    let json = q.with_audit(|c| c.export_json());
    let back = AuditChain::import_json(&json).unwrap();
    assert_eq!((back.verify(), back.last_hash()), (Ok(()), hash));
}

#[test]
fn pending_notifications_are_purged_by_signature_or_source() {
    let n = NotificationEmitter::new(NotifyConfig::default());
    let sub = n.subscribe(&[]).unwrap();
    n.register_webhook(WebhookConfig::new("http://127.0.0.1:9/hook"))
        .unwrap();
    let threat =
        |source: &str| threat_detected_payload("s-1", ThreatCategory::Spam, Severity::Low, source);
    n.emit(EventType::ThreatDetected, threat("192.0.2.1"), 1);
    n.emit(EventType::ThreatDetected, threat("192.0.2.2"), 2);
    n.emit(
        EventType::EvidenceQuarantined,
        serde_json::json!({"signature": "spam:aa"}),
        3,
    );
    n.emit(
        EventType::EvidenceQuarantined,
        serde_json::json!({"signature": "spam:bb"}),
        4,
    );
    assert_eq!(n.stats().pending_webhooks, 4);
    // Each match is removed from the subscriber queue and from the webhook outbox.
    assert_eq!(n.purge_matching(Some("spam:aa"), Some("192.0.2.1")), 4);
    assert_eq!(n.purge_matching(Some("spam:aa"), Some("192.0.2.1")), 0);
    assert_eq!(n.purge_matching(None, None), 0);
    let left: Vec<String> = sub
        .drain(10)
        .iter()
        .map(|e| e.payload().to_string())
        .collect();
    assert_eq!(left.len(), 2);
    assert!(
        left[0].contains("192.0.2.2") && left[1].contains("spam:bb"),
        "{left:?}"
    );
    assert_eq!(n.stats().pending_webhooks, 2);
    assert_eq!(n.stats().dropped, 0);
}
