//! Property tests of the canonical JSON path: round trip, idempotence, key order, and
//! signature comparison on arbitrary input.

use proptest::prelude::*;
use serde_json::{Map, Value};
use tracehound_core::canonical::{canonical_json, canonical_json_from_text, parse_json, JsValue};
use tracehound_core::hash::compare_signatures;

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-c]{0,3}",
        "(0|[1-9][0-9]{0,10})",
        "-?[0-9]{1,3}(\\.[0-9])?",
        prop::sample::select(vec![
            "__proto__",
            "é",
            "😀",
            "Ａ",
            "\u{e000}",
            "\u{ffff}",
            "𝒜b",
            "a\u{0}"
        ])
        .prop_map(str::to_owned),
        any::<String>(),
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Comparable form: objects sorted by key without `__proto__`, numbers as f64.
fn normalize(v: &JsValue) -> JsValue {
    match v {
        JsValue::Array(a) => JsValue::Array(a.iter().map(normalize).collect()),
        JsValue::Object(o) => {
            let mut entries: Vec<_> = o
                .iter()
                .filter(|(k, _)| k.as_wtf8() != b"__proto__")
                .map(|(k, v)| (k.clone(), normalize(v)))
                .collect();
            entries.sort_by(|a, b| a.0.as_wtf8().cmp(b.0.as_wtf8()));
            JsValue::Object(entries)
        }
        JsValue::Number(n) if *n == 0.0 => JsValue::Number(0.0),
        other => other.clone(),
    }
}

fn is_index(k: &str) -> Option<u64> {
    let n: u64 = k.parse().ok()?;
    (n.to_string() == k && n < 4_294_967_295).then_some(n)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn canonical_reparses_to_the_same_value(v in json_value()) {
        let text = canonical_json(&v).unwrap();
        // Valid JSON for serde_json too.
        prop_assert!(serde_json::from_str::<Value>(&text).is_ok());
        let back = parse_json(text.as_bytes()).unwrap();
        prop_assert_eq!(normalize(&back), normalize(&JsValue::from(&v)));
        // Idempotent, and the two input models agree.
        prop_assert_eq!(canonical_json(&back).unwrap(), text.clone());
        prop_assert_eq!(canonical_json(&JsValue::from(&v)).unwrap(), text);
    }

    #[test]
    fn object_keys_follow_v1_order(keys in prop::collection::vec(key(), 0..16)) {
        let obj: Map<String, Value> = keys.iter().map(|k| (k.clone(), Value::Null)).collect();
        let text = canonical_json(&Value::Object(obj.clone())).unwrap();
        let back = parse_json(text.as_bytes()).unwrap();
        let got: Vec<String> = back.as_object().unwrap().iter()
            .map(|(k, _)| k.as_str().unwrap().to_owned()).collect();
        // Oracle: index keys ascending, then the rest by UTF-16 code units.
        let mut idx: Vec<(u64, String)> = vec![];
        let mut rest: Vec<String> = vec![];
        for k in obj.keys().filter(|k| k.as_str() != "__proto__") {
            match is_index(k) {
                Some(n) => idx.push((n, k.clone())),
                None => rest.push(k.clone()),
            }
        }
        idx.sort();
        rest.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
        let want: Vec<String> = idx.into_iter().map(|(_, k)| k).chain(rest).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn text_path_is_idempotent(units in prop::collection::vec(
        prop_oneof![0xD800u16..0xE000, 0x20u16..0x80, any::<u16>()], 0..12)) {
        // A string of arbitrary UTF-16 units (lone surrogates included), as \u escapes.
        let escaped: String = units.iter().map(|u| format!("\\u{u:04x}")).collect();
        let text = format!("{{\"{escaped}\":[\"{escaped}\",1.5e300,-0]}}");
        let once = canonical_json_from_text(text.as_bytes()).unwrap();
        let twice = canonical_json_from_text(once.as_bytes()).unwrap();
        prop_assert_eq!(&once, &twice);
        prop_assert!(std::str::from_utf8(once.as_bytes()).is_ok());
    }

    #[test]
    fn compare_signatures_never_panics(a in any::<String>(), b in any::<String>()) {
        prop_assert_eq!(compare_signatures(&a, &b), a == b);
        prop_assert!(compare_signatures(&a, &a.clone()));
    }
}
