//! v1's `validatePayloadStructure` error reasons and paths.
//!
//! Only run after the writer found a non-finite number: v1 reports the *first* invalid
//! value in its own walk order (depth first, array order, object properties in
//! `Object.entries` order: array-index keys ascending, then the others in creation
//! order), which differs from the canonical (sorted) order the writer uses.

use std::fmt::Write as _;

use super::tree::{JsonTree, View};
use super::value::wtf8_to_utf8_lossy;
use super::write::array_index;

/// The reason text of the first invalid value, e.g. `Infinity value at root.a[0].b - not allowed`.
pub(crate) fn first_invalid<T: JsonTree>(v: &T) -> Option<String> {
    let mut path = String::from("root");
    walk(v, &mut path)
}

fn walk<T: JsonTree>(v: &T, path: &mut String) -> Option<String> {
    match v.view() {
        View::Number(f) if f.is_nan() => Some(format!("NaN value at {path} - not allowed")),
        // v1 says "Infinity" for both signs.
        View::Number(f) if f.is_infinite() => {
            Some(format!("Infinity value at {path} - not allowed"))
        }
        View::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                let _ = write!(path, "[{i}]");
                let found = walk(item, path);
                path.truncate(len);
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        View::Object(entries) => {
            let mut ordered: Vec<(&[u8], &T, u32)> =
                entries.map(|(k, x)| (k, x, array_index(k))).collect();
            // Stable: non-index keys (all u32::MAX) keep their creation order.
            ordered.sort_by_key(|e| e.2);
            for (k, x, _) in ordered {
                let len = path.len();
                path.push('.');
                path.push_str(&wtf8_to_utf8_lossy(k));
                let found = walk(x, path);
                path.truncate(len);
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        _ => None,
    }
}
