//! A JSON value as ECMAScript's `JSON.parse` produces it.
//!
//! `serde_json::Value` cannot hold what v1 accepts from JSON text: lone UTF-16 surrogates
//! (`"\ud800"`) and numbers that overflow to ±Infinity (`1e400`, which v1 then rejects
//! with a path). [`JsValue`] keeps both: strings are WTF-8 (UTF-8 that may also encode
//! unpaired surrogates), numbers are `f64`, objects keep `JSON.parse`'s property order
//! (first occurrence position, last value wins).

use std::borrow::Cow;

/// A string of UTF-16 code units stored as WTF-8.
///
/// Valid UTF-8 is valid WTF-8; additionally an unpaired surrogate U+D800..U+DFFF may
/// appear as its 3-byte generalized UTF-8 form. A surrogate pair is never stored as two
/// 3-byte halves (it is always the 4-byte form), so byte equality is string equality.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct JsString(Vec<u8>);

impl JsString {
    /// Builds from WTF-8 bytes the parser produced (crate-internal: the invariant above).
    pub(crate) fn from_wtf8_unchecked(bytes: Vec<u8>) -> Self {
        JsString(bytes)
    }

    /// The WTF-8 bytes.
    pub fn as_wtf8(&self) -> &[u8] {
        &self.0
    }

    /// The string, if it holds no lone surrogate.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// The UTF-8 encoding `TextEncoder`/Node uses: each lone surrogate becomes U+FFFD.
    pub fn to_utf8_lossy(&self) -> Cow<'_, str> {
        wtf8_to_utf8_lossy(&self.0)
    }
}

impl From<&str> for JsString {
    fn from(s: &str) -> Self {
        JsString(s.as_bytes().to_vec())
    }
}

impl From<String> for JsString {
    fn from(s: String) -> Self {
        JsString(s.into_bytes())
    }
}

/// WTF-8 → UTF-8 with one U+FFFD per lone surrogate (what Node's UTF-8 encoder does).
pub(crate) fn wtf8_to_utf8_lossy(bytes: &[u8]) -> Cow<'_, str> {
    {
        // A 3-byte surrogate is invalid UTF-8; Rust's lossy decoder replaces each of its
        // maximal invalid prefixes separately (ED, A0, 80 → three U+FFFD), while Node
        // replaces the whole code unit with one. So replace surrogates ourselves.
        if let Ok(s) = std::str::from_utf8(bytes) {
            return Cow::Borrowed(s);
        }
        let mut out = String::with_capacity(bytes.len());
        let mut rest = bytes;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    out.push_str(std::str::from_utf8(good).unwrap_or_default());
                    out.push('\u{FFFD}');
                    // Our bytes are WTF-8, so an invalid sequence here is a 3-byte surrogate;
                    // anything else is skipped by the length the decoder reports.
                    let skip = if bad.first() == Some(&0xED) && bad.len() >= 3 {
                        3
                    } else {
                        e.error_len().unwrap_or(bad.len()).max(1)
                    };
                    rest = bad.get(skip..).unwrap_or_default();
                }
            }
        }
        Cow::Owned(out)
    }
}

/// A JSON value with `JSON.parse` semantics (see the module docs).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum JsValue {
    /// `null`.
    #[default]
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// Always the `f64` `JSON.parse` yields; may be ±Infinity after overflow.
    Number(f64),
    /// A string of UTF-16 code units.
    String(JsString),
    /// An array.
    Array(Vec<JsValue>),
    /// Own properties in creation order; keys are unique.
    Object(Vec<(JsString, JsValue)>),
}

impl JsValue {
    /// Member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&JsValue> {
        match self {
            JsValue::Object(entries) => entries
                .iter()
                .find(|(k, _)| k.as_wtf8() == key.as_bytes())
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, if this is a string without lone surrogates.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            JsValue::String(s) => s.as_str(),
            _ => None,
        }
    }

    /// The string, if this is a string.
    pub fn as_js_string(&self) -> Option<&JsString> {
        match self {
            JsValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            JsValue::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The boolean, if this is a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            JsValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[JsValue]> {
        match self {
            JsValue::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The entries, if this is an object.
    pub fn as_object(&self) -> Option<&[(JsString, JsValue)]> {
        match self {
            JsValue::Object(o) => Some(o),
            _ => None,
        }
    }

    /// Converts to a `serde_json::Value`, if that is possible without loss: `None` when
    /// a string holds a lone surrogate or a number is not finite.
    pub fn to_serde(&self) -> Option<serde_json::Value> {
        use serde_json::Value;
        Some(match self {
            JsValue::Null => Value::Null,
            JsValue::Bool(b) => Value::Bool(*b),
            // Integral values become serde_json integers so they compare (and print) as
            // the integers JavaScript would show.
            JsValue::Number(n) if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 => {
                Value::from(*n as i64)
            }
            JsValue::Number(n) => Value::Number(serde_json::Number::from_f64(*n)?),
            JsValue::String(s) => Value::String(s.as_str()?.to_owned()),
            JsValue::Array(a) => Value::Array(
                a.iter()
                    .map(JsValue::to_serde)
                    .collect::<Option<Vec<_>>>()?,
            ),
            JsValue::Object(o) => {
                let mut map = serde_json::Map::with_capacity(o.len());
                for (k, v) in o {
                    map.insert(k.as_str()?.to_owned(), v.to_serde()?);
                }
                Value::Object(map)
            }
        })
    }
}

impl From<&serde_json::Value> for JsValue {
    fn from(v: &serde_json::Value) -> Self {
        use serde_json::Value;
        match v {
            Value::Null => JsValue::Null,
            Value::Bool(b) => JsValue::Bool(*b),
            Value::Number(n) => JsValue::Number(super::tree::number_to_f64(n)),
            Value::String(s) => JsValue::String(JsString::from(s.as_str())),
            Value::Array(a) => JsValue::Array(a.iter().map(JsValue::from).collect()),
            Value::Object(o) => JsValue::Object(
                o.iter()
                    .map(|(k, v)| (JsString::from(k.as_str()), JsValue::from(v)))
                    .collect(),
            ),
        }
    }
}
