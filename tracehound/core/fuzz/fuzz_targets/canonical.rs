//! Fuzz the canonical JSON path: arbitrary bytes → `JSON.parse`-style parse → canonical
//! text. Checks that canonical output re-parses, is a fixed point, agrees between the two
//! value models where both apply, and that signatures validate.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tracehound_core::canonical::{canonical_json, encode_payload, parse_json};
use tracehound_core::hash::{compare_signatures, signature_of_canonical, validate_signature};
use tracehound_core::types::ThreatCategory;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = parse_json(data) else { return };
    let Ok(canonical) = canonical_json(&value) else {
        return;
    };

    // Canonical output is JSON, and canonicalizing it again changes nothing.
    let again = parse_json(canonical.as_bytes()).expect("canonical output must re-parse");
    let twice = canonical_json(&again).expect("re-parsed canonical output must canonicalize");
    assert_eq!(canonical, twice, "canonical form is not idempotent");

    // The serde_json model (the Scent payload type) yields the same text whenever the
    // value fits that model (no lone surrogates).
    if let Some(sv) = value.to_serde() {
        assert_eq!(
            canonical_json(&sv).expect("serde model canonicalizes"),
            canonical
        );
    }

    // The size limit is exact on the UTF-8 length.
    let size = canonical.len();
    assert!(encode_payload(&value, size).is_ok());
    if size > 0 {
        let err = encode_payload(&value, size - 1).expect_err("one byte short must fail");
        assert_eq!(err.code(), "AGENT_PAYLOAD_TOO_LARGE");
    }

    let sig = signature_of_canonical(ThreatCategory::Unknown, canonical.as_bytes());
    assert!(validate_signature(&sig));
    assert!(compare_signatures(&sig, &sig.clone()));
    let _ = compare_signatures(&sig, &canonical);
});
