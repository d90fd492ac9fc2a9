//! A toy detector: flags the classic SQL tautology `' OR 1=1` (any case, any spacing, URL
//! encoding undone) in the query string or the body prefix. It stands in for a real WAF,
//! SIEM rule or ML model; Tracehound itself never decides.

use tracehound_core::types::{Severity, ThreatCategory, ThreatSignal};
use tracehound_tower::{Detector, DetectorFuture, RequestView};

/// Flags `' OR 1=1` as a high-severity injection.
#[derive(Debug, Default)]
pub struct Tautology;

impl Detector for Tautology {
    fn inspect<'a>(&'a self, request: &'a RequestView<'a>) -> DetectorFuture<'a> {
        let hit = request
            .uri()
            .query()
            .is_some_and(|q| has_tautology(q.as_bytes()))
            || has_tautology(request.body_prefix());
        Box::pin(async move {
            Ok(hit.then(|| ThreatSignal::new(ThreatCategory::Injection, Severity::High)))
        })
    }
}

/// Whether `text` holds `'`, then `or`, then `1=1` with only spaces between them, after
/// undoing `+` and `%XX` escapes. No allocation: one pass over normalized bytes.
pub fn has_tautology(text: &[u8]) -> bool {
    const PATTERN: &[u8] = b"'or1=1";
    let mut matched = 0usize;
    for byte in decoded(text) {
        let byte = byte.to_ascii_lowercase();
        if byte == b' ' && matched > 0 {
            continue;
        }
        if PATTERN.get(matched) == Some(&byte) {
            matched += 1;
            if matched == PATTERN.len() {
                return true;
            }
        } else {
            matched = usize::from(byte == b'\'');
        }
    }
    false
}

/// `text` with `+` as a space and `%XX` decoded (a bad escape stays as is).
fn decoded(text: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let mut i = 0usize;
    std::iter::from_fn(move || {
        let b = *text.get(i)?;
        i += 1;
        match b {
            b'+' => Some(b' '),
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (
                    text.get(i).copied().and_then(hex),
                    text.get(i + 1).copied().and_then(hex),
                ) {
                    (Some(h), Some(l)) => {
                        i += 2;
                        u8::try_from(h * 16 + l).ok()
                    }
                    _ => Some(b'%'),
                }
            }
            other => Some(other),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::has_tautology;

    #[test]
    fn finds_the_tautology_in_its_disguises() {
        for hit in [
            "' OR 1=1",
            "x=%27%20or%201%3D1--",
            "name='+Or+1=1",
            "''or 1=1",
        ] {
            assert!(has_tautology(hit.as_bytes()), "{hit}");
        }
        for miss in ["OR 1=1", "' AND 1=1", "'or 1=2", "%", "%2", "%zz'", ""] {
            assert!(!has_tautology(miss.as_bytes()), "{miss}");
        }
    }
}
