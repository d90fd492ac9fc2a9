//! A strict JSON parser with ECMAScript `JSON.parse` semantics.
//!
//! Differences from `serde_json` that matter for v1 compatibility: every number is an
//! `f64` (huge integers round, `1e400` becomes Infinity and is rejected later by the
//! canonicalizer with v1's path message), `\ud800`-style lone surrogates are kept, and a
//! duplicate key keeps its first position with the last value.

use std::collections::HashMap;

use super::value::{JsString, JsValue};
use super::MAX_DEPTH;

/// JSON text that `JSON.parse` would reject (or that nests deeper than [`MAX_DEPTH`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON at byte {offset}: {reason}")]
pub struct ParseError {
    /// Byte offset of the problem in the input.
    pub offset: usize,
    /// What is wrong there.
    pub reason: &'static str,
}

/// Parses JSON text (UTF-8) the way `JSON.parse` does.
pub fn parse_json(text: &[u8]) -> Result<JsValue, ParseError> {
    if let Err(e) = std::str::from_utf8(text) {
        return Err(ParseError {
            offset: e.valid_up_to(),
            reason: "input is not valid UTF-8",
        });
    }
    let mut p = Parser { s: text, i: 0 };
    p.skip_ws();
    let v = p.value(0)?;
    p.skip_ws();
    if p.i != text.len() {
        return Err(p.err("unexpected data after the JSON value"));
    }
    Ok(v)
}

/// Objects with more members than this switch from a linear duplicate scan to a map.
const LINEAR_DEDUP: usize = 16;

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err(&self, reason: &'static str) -> ParseError {
        ParseError {
            offset: self.i,
            reason,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn expect_literal(&mut self, lit: &'static [u8], v: JsValue) -> Result<JsValue, ParseError> {
        if self.s.get(self.i..self.i + lit.len()) == Some(lit) {
            self.i += lit.len();
            Ok(v)
        } else {
            Err(self.err("unexpected token"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<JsValue, ParseError> {
        match self.peek() {
            None => Err(self.err("unexpected end of input")),
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => Ok(JsValue::String(self.string()?)),
            Some(b't') => self.expect_literal(b"true", JsValue::Bool(true)),
            Some(b'f') => self.expect_literal(b"false", JsValue::Bool(false)),
            Some(b'n') => self.expect_literal(b"null", JsValue::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("unexpected token")),
        }
    }

    fn array(&mut self, depth: usize) -> Result<JsValue, ParseError> {
        if depth >= MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        self.i += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(JsValue::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(JsValue::Array(items));
                }
                _ => return Err(self.err("expected ',' or ']'")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<JsValue, ParseError> {
        if depth >= MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        self.i += 1;
        let mut entries: Vec<(JsString, JsValue)> = Vec::new();
        let mut index: Option<HashMap<Vec<u8>, usize>> = None;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(JsValue::Object(entries));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a string key"));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected ':'"));
            }
            self.i += 1;
            self.skip_ws();
            let v = self.value(depth + 1)?;
            // JSON.parse: a repeated key keeps its first position and takes the last value.
            if index.is_none() && entries.len() >= LINEAR_DEDUP {
                let map = entries
                    .iter()
                    .enumerate()
                    .map(|(n, (k, _))| (k.as_wtf8().to_vec(), n));
                index = Some(map.collect());
            }
            let existing = match &index {
                Some(map) => map.get(key.as_wtf8()).copied(),
                None => entries.iter().position(|(k, _)| *k == key),
            };
            match existing.and_then(|n| entries.get_mut(n)) {
                Some(slot) => slot.1 = v,
                None => {
                    if let Some(map) = &mut index {
                        map.insert(key.as_wtf8().to_vec(), entries.len());
                    }
                    entries.push((key, v));
                }
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(JsValue::Object(entries));
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }

    fn number(&mut self) -> Result<JsValue, ParseError> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.err("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.err("invalid number"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.err("invalid number"));
            }
            self.digits();
        }
        let text = self
            .s
            .get(start..self.i)
            .and_then(|t| std::str::from_utf8(t).ok());
        // Rust's float parsing is correctly rounded and overflows to ±Infinity, as
        // ECMAScript's StringToNumber does.
        match text.map(str::parse::<f64>) {
            Some(Ok(f)) => Ok(JsValue::Number(f)),
            _ => Err(ParseError {
                offset: start,
                reason: "invalid number",
            }),
        }
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
    }

    fn hex4(&mut self) -> Result<u16, ParseError> {
        let mut v: u16 = 0;
        for _ in 0..4 {
            let d = match self.peek() {
                Some(c @ b'0'..=b'9') => c - b'0',
                Some(c @ b'a'..=b'f') => c - b'a' + 10,
                Some(c @ b'A'..=b'F') => c - b'A' + 10,
                _ => return Err(self.err("invalid \\u escape")),
            };
            v = (v << 4) | u16::from(d);
            self.i += 1;
        }
        Ok(v)
    }

    fn string(&mut self) -> Result<JsString, ParseError> {
        self.i += 1; // opening quote
        let start = self.i;
        // Fast path: no escapes.
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    let bytes = self.s.get(start..self.i).unwrap_or_default().to_vec();
                    self.i += 1;
                    return Ok(JsString::from_wtf8_unchecked(bytes));
                }
                Some(b'\\') => break,
                Some(0x00..=0x1F) => return Err(self.err("control character in string")),
                Some(_) => self.i += 1,
            }
        }
        let mut out = self.s.get(start..self.i).unwrap_or_default().to_vec();
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(JsString::from_wtf8_unchecked(out));
                }
                Some(0x00..=0x1F) => return Err(self.err("control character in string")),
                Some(b'\\') => {
                    self.i += 1;
                    let c = self.peek().ok_or_else(|| self.err("unterminated string"))?;
                    self.i += 1;
                    match c {
                        b'"' | b'\\' | b'/' => out.push(c),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0C),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => self.unicode_escape(&mut out)?,
                        _ => {
                            self.i -= 1;
                            return Err(self.err("invalid escape"));
                        }
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }

    /// After `\u`: one code unit, joined with a following `\uDC00..\uDFFF` escape when it
    /// is a high surrogate; an unpaired surrogate is stored in its WTF-8 form.
    fn unicode_escape(&mut self, out: &mut Vec<u8>) -> Result<(), ParseError> {
        let unit = self.hex4()?;
        if (0xD800..0xDC00).contains(&unit) && self.s.get(self.i..self.i + 2) == Some(b"\\u") {
            let save = self.i;
            self.i += 2;
            match self.hex4() {
                Ok(low) if (0xDC00..0xE000).contains(&low) => {
                    let cp =
                        0x1_0000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
                    push_char(out, cp);
                    return Ok(());
                }
                // Not a low surrogate: leave that escape for the next round.
                _ => self.i = save,
            }
        }
        push_char(out, u32::from(unit));
        Ok(())
    }
}

/// Appends a code point (or a lone surrogate) in generalized UTF-8.
fn push_char(out: &mut Vec<u8>, cp: u32) {
    match cp {
        0..=0x7F => out.push(cp as u8),
        0x80..=0x7FF => out.extend_from_slice(&[0xC0 | (cp >> 6) as u8, 0x80 | (cp & 0x3F) as u8]),
        0x800..=0xFFFF => out.extend_from_slice(&[
            0xE0 | (cp >> 12) as u8,
            0x80 | ((cp >> 6) & 0x3F) as u8,
            0x80 | (cp & 0x3F) as u8,
        ]),
        _ => out.extend_from_slice(&[
            0xF0 | ((cp >> 18) & 0x07) as u8,
            0x80 | ((cp >> 12) & 0x3F) as u8,
            0x80 | ((cp >> 6) & 0x3F) as u8,
            0x80 | (cp & 0x3F) as u8,
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_json_parse_rejects() {
        for bad in [
            "",
            " ",
            "{",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "1.",
            ".5",
            "+1",
            "NaN",
            "Infinity",
            "'a'",
            "\"\t\"",
            "\"\\x\"",
            "\"\\u12\"",
            "{a:1}",
            "[1] x",
            "\u{feff}1",
            "tru",
            "-",
            "1e",
            "[",
            "\"abc",
        ] {
            assert!(parse_json(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(parse_json(&[b'"', 0xFF, b'"']).is_err());
    }

    #[test]
    fn keeps_js_semantics() {
        assert_eq!(
            parse_json(b"1e400").unwrap(),
            JsValue::Number(f64::INFINITY)
        );
        assert_eq!(
            parse_json(b"-1e400").unwrap(),
            JsValue::Number(f64::NEG_INFINITY)
        );
        assert!(parse_json(b"-0")
            .unwrap()
            .as_f64()
            .unwrap()
            .is_sign_negative());
        assert_eq!(
            parse_json(b"9007199254740993").unwrap(),
            JsValue::Number(9007199254740992.0)
        );
        let v = parse_json(br#"{"a":1,"b":2,"a":3}"#).unwrap();
        let keys: Vec<_> = v
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, _)| k.as_str().unwrap())
            .collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(v.get("a").unwrap().as_f64(), Some(3.0));
        let s = parse_json(br#""\ud800x\udc00\ud83d\ude00""#).unwrap();
        assert_eq!(
            s.as_js_string().unwrap().as_wtf8(),
            [
                &[0xED, 0xA0, 0x80][..],
                b"x",
                &[0xED, 0xB0, 0x80],
                "😀".as_bytes()
            ]
            .concat()
        );
    }

    #[test]
    fn many_duplicate_keys_use_the_map() {
        let mut text = String::from("{");
        for i in 0..40 {
            text.push_str(&format!("\"k{}\":{},", i % 20, i));
        }
        text.push_str("\"z\":0}");
        let v = parse_json(text.as_bytes()).unwrap();
        let o = v.as_object().unwrap();
        assert_eq!(o.len(), 21);
        assert_eq!(v.get("k3").unwrap().as_f64(), Some(23.0));
        assert_eq!(o[3].0.as_str(), Some("k3"));
    }

    #[test]
    fn depth_is_bounded() {
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse_json(ok.as_bytes()).is_ok());
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(
            parse_json(deep.as_bytes()).unwrap_err().reason,
            "nesting too deep"
        );
    }
}
