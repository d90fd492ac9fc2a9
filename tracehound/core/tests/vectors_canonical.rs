//! Vectors `canonical_json`, `canonical_json_errors`, `hash`, `validate_signature` and
//! `secure_id` from `../shared/vectors/tracehound-v1.json`.

mod vectors_support;

use tracehound_core::canonical::{canonical_json, encode_payload, parse_json, JsValue};
use tracehound_core::hash::{
    hash_js_string, sha256_hex, signature, signature_of_canonical, validate_signature,
};
use tracehound_core::id::is_valid_secure_id;
use tracehound_core::types::ThreatCategory;
use vectors_support::{arr_of, load, num_of, section, str_of, to_serde};

#[test]
fn canonical_json_vectors() {
    let all = load();
    let cases = section(&all, "canonical_json").as_array().expect("array");
    assert!(cases.len() >= 15, "expected the canonical_json vectors");
    let mut serde_rejected = Vec::new();
    for case in cases {
        let name = str_of(case, "name");
        let input = str_of(case, "input_json");
        let want = str_of(case, "canonical");
        let value = parse_json(input.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let encoded =
            encode_payload(&value, 1_000_000_000).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(encoded.canonical(), want, "{name}: canonical");
        assert_eq!(
            hex::encode(encoded.bytes()),
            str_of(case, "canonical_utf8_hex"),
            "{name}: bytes"
        );
        assert_eq!(encoded.size() as f64, num_of(case, "size"), "{name}: size");
        assert_eq!(
            sha256_hex(encoded.bytes()),
            str_of(case, "sha256"),
            "{name}: sha256"
        );
        let sigs = case
            .get("signatures")
            .and_then(JsValue::as_object)
            .expect("signatures");
        assert_eq!(sigs.len(), ThreatCategory::ALL.len());
        for (cat, sig) in sigs {
            let cat: ThreatCategory = cat.as_str().unwrap().parse().expect("known category");
            let want_sig = sig.as_str().unwrap();
            assert_eq!(signature(cat, &value).unwrap(), want_sig, "{name}: {cat}");
            assert_eq!(signature_of_canonical(cat, encoded.bytes()), want_sig);
            assert!(validate_signature(want_sig));
        }
        // The same through serde_json::Value, the Scent payload type, wherever serde_json
        // can represent the input.
        match serde_json::from_str::<serde_json::Value>(input) {
            Ok(v) => assert_eq!(canonical_json(&v).unwrap(), want, "{name}: via serde_json"),
            Err(_) => serde_rejected.push(name.to_owned()),
        }
    }
    // Only the lone-surrogate input is outside serde_json's model.
    assert_eq!(serde_rejected, ["lone_surrogate"]);
}

/// JS-only inputs of `canonical_json_errors` that JSON text can express, as JSON text
/// (`1e999` parses to Infinity as in `JSON.parse`).
fn js_input_as_json(js: &str) -> Option<&'static str> {
    match js {
        "{a: [{b: Infinity}]}" => Some(r#"{"a":[{"b":1e999}]}"#),
        "-Infinity" => Some("-1e999"),
        "Infinity" => Some("1e999"),
        "-0" => Some("-0"),
        _ => None,
    }
}

#[test]
fn canonical_json_error_vectors() {
    let all = load();
    let cases = section(&all, "canonical_json_errors")
        .as_array()
        .expect("array");
    let mut unrepresentable = Vec::new();
    let mut checked = 0;
    for case in cases {
        let name = str_of(case, "name");
        let value = if let Some(text) = case.get("input_json").and_then(JsValue::as_str) {
            parse_json(text.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"))
        } else {
            let js = str_of(case, "js_input");
            match js_input_as_json(js) {
                Some(text) => parse_json(text.as_bytes()).unwrap(),
                None => {
                    // undefined, holes, functions, symbols and bigints cannot exist in a
                    // JSON value tree.
                    unrepresentable.push(name.to_owned());
                    continue;
                }
            }
        };
        let max = case.get("maxSize").and_then(JsValue::as_f64).unwrap_or(1e9) as usize;
        let result = encode_payload(&value, max);
        let ok = case.get("ok").and_then(JsValue::as_bool).expect("ok");
        if ok {
            let encoded = result.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(encoded.size() as f64, num_of(case, "size"), "{name}");
        } else {
            let err = result.expect_err(name);
            let want = to_serde(case.get("error").expect("error"));
            assert_eq!(err.to_json(), want, "{name}");
        }
        checked += 1;
    }
    assert_eq!(
        unrepresentable,
        [
            "undefined_top",
            "undefined_prop",
            "bigint",
            "sparse_array_hole"
        ]
    );
    assert!(checked >= 5);
}

#[test]
fn hash_vectors() {
    let all = load();
    let cases = section(&all, "hash").as_array().expect("array");
    let mut lone = 0;
    for case in cases {
        let want = str_of(case, "sha256");
        match str_of(case, "fn") {
            "hash(string)" => {
                let input = case
                    .get("input")
                    .and_then(JsValue::as_js_string)
                    .expect("input");
                if input.as_str().is_none() {
                    lone += 1;
                }
                assert_eq!(hash_js_string(input), want, "{input:?}");
            }
            "hashBuffer(bytes)" => {
                let bytes = hex::decode(str_of(case, "input_hex")).expect("hex");
                assert_eq!(sha256_hex(&bytes), want);
            }
            other => panic!("unknown hash fn {other}"),
        }
    }
    assert_eq!(lone, 1, "the lone-surrogate case is exercised");
}

#[test]
fn validate_signature_vectors() {
    let all = load();
    for case in section(&all, "validate_signature")
        .as_array()
        .expect("array")
    {
        let sig = str_of(case, "signature");
        let want = case.get("valid").and_then(JsValue::as_bool).expect("valid");
        assert_eq!(validate_signature(sig), want, "{sig}");
    }
}

#[test]
fn secure_id_vectors() {
    let all = load();
    let sec = section(&all, "secure_id");
    for case in arr_of(sec, "is_valid") {
        let id = str_of(case, "id");
        let want = case.get("valid").and_then(JsValue::as_bool).expect("valid");
        assert_eq!(is_valid_secure_id(id), want, "{id}");
    }
    assert!(is_valid_secure_id(str_of(
        sec,
        "sample_generated_nondeterministic"
    )));
    assert!(is_valid_secure_id(
        &tracehound_core::id::generate_secure_id()
    ));
}
