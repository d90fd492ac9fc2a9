//! From byte offsets to `LINE:COLUMN` and dotted field paths, and back: the parser reports
//! an error's span, the policy compiler reports a field path; the message needs both.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// A parsed file's text, kept to locate fields and offsets in it.
#[derive(Debug, Clone)]
pub struct SourceText {
    text: String,
}

/// A line and column, both counted from 1 (columns in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl SourceText {
    /// Keeps `text` for later look-ups.
    pub fn new(text: String) -> SourceText {
        SourceText { text }
    }

    /// The line and column of byte `offset` (clamped to the text).
    pub fn position(&self, offset: usize) -> Position {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = self.text.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).unwrap_or("").chars().count() + 1;
        Position { line, column }
    }

    /// The dotted path (`agent.max_signers`, `keys[1].path`) of the innermost field
    /// whose key or value contains `offset`, or `None` outside any field.
    pub fn field_at(&self, offset: usize) -> Option<String> {
        let doc = DeTable::parse(&self.text).ok()?;
        let mut path = String::new();
        walk_table(doc.get_ref(), offset, &mut path).then_some(path)
    }

    /// The span of the field at dotted `path`, or of its closest ancestor present.
    pub fn span_of(&self, path: &str) -> Option<Range<usize>> {
        let doc = DeTable::parse(&self.text).ok()?;
        let mut best = None;
        let mut table = Some(doc.get_ref());
        let mut value: Option<&Spanned<DeValue<'_>>> = None;
        for segment in split_path(path) {
            let next = match (segment, table, value) {
                (Segment::Key(k), Some(t), _) => t
                    .iter()
                    .find(|(key, _)| key.get_ref().as_ref() == k)
                    .map(|(_, v)| v),
                (Segment::Index(i), _, Some(v)) => match v.get_ref() {
                    DeValue::Array(a) => a.get(i),
                    _ => None,
                },
                _ => None,
            };
            let Some(next) = next else { break };
            best = Some(next.span());
            value = Some(next);
            table = match next.get_ref() {
                DeValue::Table(t) => Some(t),
                _ => None,
            };
        }
        best
    }
}

// Table spans cover only their `[header]`, not their body, so every branch is searched
// rather than only the one whose span contains the offset.
fn walk_table(table: &DeTable<'_>, offset: usize, path: &mut String) -> bool {
    for (key, value) in table.iter() {
        let mark = path.len();
        push_key(path, key.get_ref());
        if key.span().contains(&offset) || walk_value(value, offset, path) {
            return true;
        }
        path.truncate(mark);
    }
    false
}

fn walk_value(value: &Spanned<DeValue<'_>>, offset: usize, path: &mut String) -> bool {
    let inner = match value.get_ref() {
        DeValue::Table(t) => walk_table(t, offset, path),
        DeValue::Array(a) => a.iter().enumerate().any(|(i, item)| {
            let mark = path.len();
            path.push_str(&format!("[{i}]"));
            let found = walk_value(item, offset, path);
            if !found {
                path.truncate(mark);
            }
            found
        }),
        _ => false,
    };
    inner || value.span().contains(&offset)
}

fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// `rules[2].key.fingerprint` → `rules`, `[2]`, `key`, `fingerprint`.
fn split_path(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => part.split_at(i),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        while let Some(close) = rest.find(']') {
            if let Ok(i) = rest.get(1..close).unwrap_or("").parse() {
                out.push(Segment::Index(i));
            }
            rest = rest.get(close + 1..).unwrap_or("");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "profile = \"fanout\"\n\n[agent]\nmax_signers = 4\n\n[[keys]]\npath = \"a\"\n\n[[keys]]\npath = \"b\"\nconfirm = true\n";

    #[test]
    fn positions_count_lines_and_characters() {
        let s = SourceText::new("ab\nçd\n".into());
        assert_eq!(s.position(0), Position { line: 1, column: 1 });
        assert_eq!(s.position(3), Position { line: 2, column: 1 });
        assert_eq!(s.position(5), Position { line: 2, column: 2 });
        assert_eq!(s.position(999), Position { line: 3, column: 1 });
    }

    #[test]
    fn field_paths_and_spans_agree() {
        let s = SourceText::new(DOC.into());
        let at = DOC.find("confirm").unwrap();
        assert_eq!(s.field_at(at).as_deref(), Some("keys[1].confirm"));
        let span = s.span_of("keys[1].confirm").unwrap();
        assert_eq!(s.position(span.start).line, 11);
        let at = DOC.find("4").unwrap();
        assert_eq!(s.field_at(at).as_deref(), Some("agent.max_signers"));
        // A path that goes deeper than the file falls back to the closest ancestor.
        let span = s.span_of("keys[0].nothing.here").unwrap();
        assert_eq!(s.position(span.start).line, 6); // the `[[keys]]` header
    }
}
