//! One view over the two value trees the canonicalizer accepts.

use super::value::{JsString, JsValue};

/// A JSON value tree the canonicalizer can read: `serde_json::Value` (what a
/// [`Scent`](crate::types::Scent) carries) or [`JsValue`] (what JSON text parses to with
/// v1's semantics). Sealed: the canonical rules depend on exactly these two models.
pub trait JsonTree: sealed::Sealed + Sized {
    /// Iterator over an object's `(WTF-8 key, value)` pairs in property-creation order.
    #[doc(hidden)]
    type Entries<'a>: Iterator<Item = (&'a [u8], &'a Self)>
    where
        Self: 'a;

    /// What kind of node this is.
    #[doc(hidden)]
    fn view(&self) -> View<'_, Self>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for serde_json::Value {}
    impl Sealed for super::JsValue {}
}

/// One node of a [`JsonTree`].
#[doc(hidden)]
pub enum View<'a, T: JsonTree + 'a> {
    Null,
    Bool(bool),
    Number(f64),
    /// WTF-8 bytes.
    Str(&'a [u8]),
    Array(&'a [T]),
    Object(T::Entries<'a>),
}

/// The double ECMAScript would hold for a serde_json number.
///
/// Integers convert with round-to-nearest-even, which is what `JSON.parse` does with the
/// same digits (`9007199254740993` → `9007199254740992`).
pub(crate) fn number_to_f64(n: &serde_json::Number) -> f64 {
    if let Some(u) = n.as_u64() {
        u as f64
    } else if let Some(i) = n.as_i64() {
        i as f64
    } else {
        // Without `arbitrary_precision` every number has an f64 form; NaN would only
        // surface as v1's "NaN value" validation error.
        n.as_f64().unwrap_or(f64::NAN)
    }
}

fn serde_entry<'a>(
    (k, v): (&'a String, &'a serde_json::Value),
) -> (&'a [u8], &'a serde_json::Value) {
    (k.as_bytes(), v)
}

fn js_entry(entry: &(JsString, JsValue)) -> (&[u8], &JsValue) {
    (entry.0.as_wtf8(), &entry.1)
}

impl JsonTree for serde_json::Value {
    type Entries<'a> = std::iter::Map<
        serde_json::map::Iter<'a>,
        fn((&'a String, &'a serde_json::Value)) -> (&'a [u8], &'a serde_json::Value),
    >;

    #[inline]
    fn view(&self) -> View<'_, Self> {
        use serde_json::Value;
        match self {
            Value::Null => View::Null,
            Value::Bool(b) => View::Bool(*b),
            Value::Number(n) => View::Number(number_to_f64(n)),
            Value::String(s) => View::Str(s.as_bytes()),
            Value::Array(a) => View::Array(a),
            Value::Object(o) => View::Object(o.iter().map(serde_entry as _)),
        }
    }
}

impl JsonTree for JsValue {
    type Entries<'a> = std::iter::Map<
        std::slice::Iter<'a, (JsString, JsValue)>,
        fn(&'a (JsString, JsValue)) -> (&'a [u8], &'a JsValue),
    >;

    #[inline]
    fn view(&self) -> View<'_, Self> {
        match self {
            JsValue::Null => View::Null,
            JsValue::Bool(b) => View::Bool(*b),
            JsValue::Number(n) => View::Number(*n),
            JsValue::String(s) => View::Str(s.as_wtf8()),
            JsValue::Array(a) => View::Array(a),
            JsValue::Object(o) => View::Object(o.iter().map(js_entry as _)),
        }
    }
}
