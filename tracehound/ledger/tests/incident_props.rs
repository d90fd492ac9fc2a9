//! Incident records: built from a real ledger, verified offline; any altered byte or
//! field fails verification or parsing, and no input panics.

use proptest::prelude::*;
use tracehound_core::audit::RecordKind;
use tracehound_ledger::incident::{incident_id, IncidentEvidence, INCIDENT_FORMAT};
use tracehound_ledger::{
    verify_incident_record, CheckpointSigner, CheckpointVerifier, IncidentError, IncidentRecord,
    Ledger, LedgerConfig, NewRecord,
};

const HASH: &str = "5f1ab8d2c0e94b6a7d3e21f0c9b8a7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0";

fn evidence() -> IncidentEvidence {
    IncidentEvidence {
        signature: format!("injection:{HASH}"),
        hash: HASH.to_owned(),
        category: "injection".to_owned(),
        severity: "high".to_owned(),
        size: 17,
        captured_ms: 1_700_000_000_000.0,
    }
}

/// A ledger of `before` neutralization records, one incident record, and `after` more;
/// returns the descriptor's canonical text and the verifier.
fn record(before: u64, after: u64) -> (String, CheckpointVerifier) {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    for i in 0..before {
        let id = format!("n-{i}");
        log.append(&NewRecord {
            kind: RecordKind::Neutralization,
            id: &id,
            signature: "ddos:00",
            timestamp: i as f64,
        })
        .unwrap();
    }
    let ev = evidence();
    let id = incident_id(&ev).unwrap();
    let recorded = 1_700_000_000_123.0;
    log.append(&NewRecord {
        kind: RecordKind::Incident,
        id: &id,
        signature: &ev.signature,
        timestamp: recorded,
    })
    .unwrap();
    for i in 0..after {
        let id = format!("m-{i}");
        log.append(&NewRecord {
            kind: RecordKind::Evacuation,
            id: &id,
            signature: "spam:01",
            timestamp: i as f64,
        })
        .unwrap();
    }
    log.sync().unwrap();
    let signer = CheckpointSigner::from_seed("tracehoundd", &[9; 32]).unwrap();
    let bundle = log
        .prove(before, Some(("tracehoundd/audit", &signer)))
        .unwrap();
    let verifier = signer.verifier();
    let text = IncidentRecord::new(ev, recorded, &bundle, &verifier)
        .unwrap()
        .to_canonical_json()
        .unwrap();
    (text, verifier)
}

#[test]
fn a_genuine_record_verifies_and_binds_its_fields() {
    let (text, verifier) = record(3, 4);
    assert!(text.starts_with("{\"audit\":{\"index\":3,"), "{text}");
    assert!(text.contains(&format!("\"format\":\"{INCIDENT_FORMAT}\"")));
    let v = verify_incident_record(&text, &verifier).unwrap();
    assert_eq!(v.evidence, evidence());
    assert_eq!(v.inclusion.index, 3);
    assert_eq!(v.inclusion.tree_size, 8);
    assert!(v.inclusion.checkpoint_verified);
    // A trailing newline (as files end) is fine.
    assert!(verify_incident_record(&format!("{text}\n"), &verifier).is_ok());
}

#[test]
fn altered_fields_fail_with_the_reason() {
    let (text, verifier) = record(2, 2);
    type Check = fn(&IncidentError) -> bool;
    let binding: Check = |e| matches!(e, IncidentError::Binding(_));
    let bundle: Check = |e| matches!(e, IncidentError::Bundle(_));
    let evidence: Check = |e| matches!(e, IncidentError::Evidence(_));
    // (from, to, expected error): each field is caught by the check that owns it.
    let cases: [(&str, &str, Check); 8] = [
        ("\"severity\":\"high\"", "\"severity\":\"low\"", binding),
        ("\"size\":17", "\"size\":18", binding),
        ("\"index\":2", "\"index\":1", bundle),
        ("\"tree_size\":5", "\"tree_size\":4", bundle),
        // evidence.captured_ms alone: disagrees with times.captured_ms.
        (
            "\"captured_ms\":1700000000000,\"category\"",
            "\"captured_ms\":1700000000001,\"category\"",
            evidence,
        ),
        // times.captured_ms alone: disagrees with evidence.captured_ms.
        (
            "\"captured_ms\":1700000000000,\"recorded_ms\"",
            "\"captured_ms\":1700000000001,\"recorded_ms\"",
            evidence,
        ),
        // Both capture times, consistently: the audit record's id no longer matches.
        ("1700000000000", "1700000000001", binding),
        (
            "\"recorded_ms\":1700000000123",
            "\"recorded_ms\":1700000000124",
            binding,
        ),
    ];
    for (from, to, expected) in cases {
        // The bare capture time occurs twice (evidence and times); every other pattern once.
        let occurrences = if from == "1700000000000" { 2 } else { 1 };
        assert_eq!(text.matches(from).count(), occurrences, "{from}");
        let bad = text.replace(from, to);
        let err = verify_incident_record(&bad, &verifier).unwrap_err();
        assert!(expected(&err), "{from} -> {err:?}");
    }
    // The hash, in the evidence object only (the signature still names the old one).
    let bad = text.replacen(
        &format!("\"hash\":\"{HASH}\""),
        &format!("\"hash\":\"{}\"", HASH.replace('5', "6")),
        1,
    );
    assert!(matches!(
        verify_incident_record(&bad, &verifier),
        Err(IncidentError::Evidence(_))
    ));
    // Another key: refused even though the record is genuine.
    let other = CheckpointSigner::from_seed("tracehoundd", &[8; 32])
        .unwrap()
        .verifier();
    assert!(matches!(
        verify_incident_record(&text, &other),
        Err(IncidentError::KeyMismatch(_))
    ));
    // Pretty-printed: same content, not the canonical bytes.
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&text).unwrap())
            .unwrap();
    assert_eq!(
        verify_incident_record(&pretty, &verifier),
        Err(IncidentError::NotCanonical)
    );
}

#[test]
fn a_non_incident_entry_does_not_bind() {
    let (text, verifier) = record(1, 0);
    let bad = text.replace(
        "\\\"type\\\":\\\"incident\\\"",
        "\\\"type\\\":\\\"evacuation\\\"",
    );
    assert_ne!(bad, text);
    assert!(verify_incident_record(&bad, &verifier).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any single byte altered by any non-zero mask: verification or parsing fails.
    #[test]
    fn flipping_any_byte_fails(pos in any::<prop::sample::Index>(), mask in 1u8..=255) {
        let (text, verifier) = fixture();
        let mut bytes = text.as_bytes().to_vec();
        let i = pos.index(bytes.len());
        bytes[i] ^= mask;
        if let Ok(altered) = String::from_utf8(bytes) {
            prop_assert!(verify_incident_record(&altered, &verifier).is_err(), "byte {} ^ {:#x}", i, mask);
        }
    }

    /// Arbitrary text never panics.
    #[test]
    fn arbitrary_input_never_panics(s in ".{0,400}") {
        let (_, verifier) = fixture();
        let _ = verify_incident_record(&s, &verifier);
    }
}

fn fixture() -> (String, CheckpointVerifier) {
    use std::sync::OnceLock;
    static F: OnceLock<(String, CheckpointVerifier)> = OnceLock::new();
    F.get_or_init(|| record(5, 6)).clone()
}
