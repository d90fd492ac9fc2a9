//! Canonical JSON and payload encoding, byte-identical to v1's `serialize` /
//! `encodePayload` (spec §3–§4).
//!
//! The rules v1 gets from `JSON.stringify` with a key-sorting replacer: ECMAScript number
//! formatting, `JSON.stringify` string escaping (lone surrogates as `\udxxx`), object keys
//! sorted by UTF-16 code units with array-index keys first in numeric order, `__proto__`
//! dropped, no whitespace. [`encode_payload`] adds v1's validation (NaN/±Infinity with a
//! path) and the size limit on the canonical UTF-8 bytes.
//!
//! Input is either a `serde_json::Value` (the [`Scent`](crate::types::Scent) payload) or a
//! [`JsValue`] from [`parse_json`], which keeps what only JSON text can carry (lone
//! surrogates, numbers overflowing to Infinity, duplicate keys with `JSON.parse`'s rules).
//!
//! ```
//! use tracehound_core::canonical::canonical_json_from_text;
//!
//! let text = br#"{"b":1,"10":2,"a":[1e21,-0,"\ud800"],"__proto__":{}}"#;
//! let canonical = canonical_json_from_text(text).unwrap();
//! assert_eq!(canonical, r#"{"10":2,"a":[1e+21,0,"\ud800"],"b":1}"#);
//! ```

mod parse;
mod tree;
mod validate;
mod value;
mod write;

pub use parse::{parse_json, ParseError};
pub use tree::JsonTree;
pub use value::{JsString, JsValue};

use std::cell::RefCell;

use crate::error::TracehoundError;
pub(crate) use write::{needs_escape, write_number_or_null, write_string};
use write::{WriteFail, Writer};

/// Deepest nesting of arrays/objects accepted. v1 had no limit and failed with a stack
/// overflow somewhere near 10^4 levels (reported as `EVIDENCE_CREATION_FAILED`,
/// "Maximum call stack size exceeded"); we stop deterministically at this depth with
/// that same code and message, keeping recursion well inside a 2 MiB thread stack.
pub const MAX_DEPTH: usize = 1000;

/// The message v1 reports for a payload nested too deeply.
pub const TOO_DEEP_MESSAGE: &str = "Maximum call stack size exceeded";

/// The result of [`encode_payload`]: the canonical JSON as UTF-8 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedPayload {
    canonical: String,
}

impl EncodedPayload {
    /// The canonical UTF-8 bytes (what is hashed and stored).
    pub fn bytes(&self) -> &[u8] {
        self.canonical.as_bytes()
    }

    /// `bytes().len()`: what v1 compares with the size limit.
    pub fn size(&self) -> usize {
        self.canonical.len()
    }

    /// The canonical JSON text.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// Takes the bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.canonical.into_bytes()
    }
}

/// v1's `encodePayload(value, maxSize)`: validate, canonicalize, then reject when the
/// canonical UTF-8 is longer than `max_size` bytes (equal passes).
///
/// Errors: `AGENT_SERIALIZATION_FAILED` (`Failed to serialize: Infinity value at root.a -
/// not allowed`, ...), `AGENT_PAYLOAD_TOO_LARGE` (`Payload size 9 exceeds limit 8`,
/// context `{size, limit}`), or `EVIDENCE_CREATION_FAILED` for nesting beyond
/// [`MAX_DEPTH`].
pub fn encode_payload<T: JsonTree>(
    value: &T,
    max_size: usize,
) -> Result<EncodedPayload, TracehoundError> {
    let canonical = canonical_json(value)?;
    if canonical.len() > max_size {
        return Err(TracehoundError::payload_too_large(
            canonical.len(),
            max_size,
        ));
    }
    Ok(EncodedPayload { canonical })
}

/// The canonical JSON text of `value` (v1's `serialize` for values `encodePayload` accepts),
/// with `encode_payload`'s validation errors but no size limit.
pub fn canonical_json<T: JsonTree>(value: &T) -> Result<String, TracehoundError> {
    // Write into this thread's scratch buffer, then copy out exactly `len` bytes: one
    // allocation of the right size instead of a chain of growing reallocations (and no
    // slack capacity kept alive inside stored evidence).
    let run = |buf: &mut Vec<u8>| -> Result<String, TracehoundError> {
        buf.clear();
        let written = Writer::new(buf).write(value, 0);
        let out = match written {
            Ok(()) => String::from_utf8(buf.to_vec()).map_err(|_| {
                // Unreachable by construction (every written byte sequence is UTF-8);
                // kept as an error rather than a panic.
                TracehoundError::serialization_failed("internal: canonical output is not UTF-8")
            }),
            Err(fail) => Err(write_error(value, fail)),
        };
        if buf.capacity() > SCRATCH_KEEP {
            *buf = Vec::new();
        }
        out
    };
    SCRATCH
        .try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut buf) => run(&mut buf),
            Err(_) => run(&mut Vec::new()),
        })
        .unwrap_or_else(|_| run(&mut Vec::new()))
}

/// Scratch capacity a thread keeps between calls.
const SCRATCH_KEEP: usize = 1 << 20;

thread_local! {
    /// Per-thread output buffer for [`canonical_json`] (never shared between threads).
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn write_error<T: JsonTree>(value: &T, fail: WriteFail) -> TracehoundError {
    match fail {
        WriteFail::TooDeep => TracehoundError::new(
            crate::error::ErrorCode::EvidenceCreationFailed,
            TOO_DEEP_MESSAGE,
            None,
        ),
        WriteFail::NonFinite => {
            let reason = validate::first_invalid(value)
                .unwrap_or_else(|| "NaN value at root - not allowed".to_owned());
            TracehoundError::serialization_failed(&reason)
        }
    }
}

/// Parses JSON text and canonicalizes it in one call (what the CLI's `canonical` does).
pub fn canonical_json_from_text(text: &[u8]) -> Result<String, CanonicalTextError> {
    let value = parse_json(text)?;
    Ok(canonical_json(&value)?)
}

/// Failure of [`canonical_json_from_text`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CanonicalTextError {
    /// The text is not JSON that `JSON.parse` accepts.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The value is rejected by v1's payload validation.
    #[error(transparent)]
    Encode(#[from] TracehoundError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon_text(s: &str) -> String {
        canonical_json_from_text(s.as_bytes()).unwrap()
    }

    #[test]
    fn key_order_index_keys_first() {
        let t = r#"{"b":1,"10":2,"9":3,"a":4,"01":5,"-1":6,"4294967294":7,"4294967295":8,"1.5":9}"#;
        let want =
            r#"{"9":3,"10":2,"4294967294":7,"-1":6,"01":5,"1.5":9,"4294967295":8,"a":4,"b":1}"#;
        assert_eq!(canon_text(t), want);
        let v: serde_json::Value = serde_json::from_str(t).unwrap();
        assert_eq!(canonical_json(&v).unwrap(), want);
    }

    #[test]
    fn proto_dropped_but_validated() {
        assert_eq!(canon_text(r#"{"__proto__":{"x":1},"a":1}"#), r#"{"a":1}"#);
        let e = canonical_json_from_text(br#"{"z":1,"__proto__":{"x":1e400}}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Failed to serialize: Infinity value at root.__proto__.x - not allowed"
        );
    }

    #[test]
    fn first_invalid_in_entries_order() {
        // Object.entries order: index keys first, then creation order (b before a).
        let e =
            canonical_json_from_text(br#"{"b":[1,-1e999],"a":1e999,"7":{"k":1e999}}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Failed to serialize: Infinity value at root.7.k - not allowed"
        );
        let e = canonical_json_from_text(br#"{"b":[1,-1e999],"a":1e999}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Failed to serialize: Infinity value at root.b[1] - not allowed"
        );
    }

    #[test]
    fn size_limit_on_utf8_bytes() {
        let v = json!("é");
        assert_eq!(encode_payload(&v, 4).unwrap().size(), 4);
        let e = encode_payload(&v, 3).unwrap_err();
        assert_eq!(e.code(), "AGENT_PAYLOAD_TOO_LARGE");
        assert_eq!(e.message(), "Payload size 4 exceeds limit 3");
    }

    #[test]
    fn too_deep_is_an_error_not_a_crash() {
        let mut v = json!(1);
        for _ in 0..MAX_DEPTH {
            v = json!([v]);
        }
        assert!(canonical_json(&v).is_ok());
        let v = json!([v]);
        let e = canonical_json(&v).unwrap_err();
        assert_eq!(e.code(), "EVIDENCE_CREATION_FAILED");
        assert_eq!(e.message(), TOO_DEEP_MESSAGE);
    }
}
