//! Loads `../shared/vectors/tracehound-v1.json` (relative to the workspace root).
//!
//! The file is parsed with the crate's own `JSON.parse`-compatible parser: it contains a
//! lone surrogate (`"\ud800 lone"`) that serde_json refuses.

#![allow(dead_code)]

use std::path::PathBuf;

use tracehound_core::canonical::{parse_json, JsValue};

/// Path of the shared vectors file.
pub fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/tracehound-v1.json")
}

/// The whole vectors file. Panics with the expected location if it is missing.
pub fn load() -> JsValue {
    let path = vectors_path();
    let text = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "test vectors not found at {} ({e}); they live in ../shared/vectors/ next to the \
             workspace root",
            path.display()
        )
    });
    parse_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `section` of the vectors file, which must exist.
pub fn section<'a>(all: &'a JsValue, name: &str) -> &'a JsValue {
    all.get(name)
        .unwrap_or_else(|| panic!("vectors file has no section {name:?}"))
}

/// Member `key` as a string; panics naming the key when absent.
pub fn str_of<'a>(v: &'a JsValue, key: &str) -> &'a str {
    v.get(key)
        .and_then(JsValue::as_str)
        .unwrap_or_else(|| panic!("missing string {key:?} in {v:?}"))
}

/// Member `key` as a number.
pub fn num_of(v: &JsValue, key: &str) -> f64 {
    v.get(key)
        .and_then(JsValue::as_f64)
        .unwrap_or_else(|| panic!("missing number {key:?} in {v:?}"))
}

/// Member `key` as an array.
pub fn arr_of<'a>(v: &'a JsValue, key: &str) -> &'a [JsValue] {
    v.get(key)
        .and_then(JsValue::as_array)
        .unwrap_or_else(|| panic!("missing array {key:?} in {v:?}"))
}

/// Converts a vector value (no lone surrogates) to serde_json.
pub fn to_serde(v: &JsValue) -> serde_json::Value {
    v.to_serde()
        .unwrap_or_else(|| panic!("not representable in serde_json: {v:?}"))
}

/// Section `name` converted to serde_json (for sections without lone surrogates; the
/// file as a whole has one, which serde_json refuses, so it is parsed as v1 does first).
pub fn serde_section(name: &str) -> serde_json::Value {
    to_serde(section(&load(), name))
}

/// The named sections, each converted as [`serde_section`], in one object keyed by name.
pub fn serde_sections(names: &[&str]) -> serde_json::Value {
    let all = load();
    let map = names
        .iter()
        .map(|&n| ((*n).to_owned(), to_serde(section(&all, n))))
        .collect();
    serde_json::Value::Object(map)
}
