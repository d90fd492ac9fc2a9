//! The canonical writer: ECMAScript `JSON.stringify` output with v1's sorted keys, in one
//! pass into a byte buffer.

use std::cmp::Ordering;

use super::tree::{JsonTree, View};
use super::MAX_DEPTH;

/// Why a tree could not be written; the caller turns it into v1's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteFail {
    /// A NaN or ±Infinity somewhere (the caller finds the first one in v1's order).
    NonFinite,
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
}

/// Marker for "not an array index" (array indices stop at 2^32 − 2).
const NOT_INDEX: u32 = u32::MAX;

/// The array index a property key denotes, or [`NOT_INDEX`]: the canonical decimal form
/// of an integer in 0 ..= 2^32 − 2 (no sign, no leading zeros).
#[inline]
pub(crate) fn array_index(key: &[u8]) -> u32 {
    match key {
        [] => NOT_INDEX,
        [b'0'] => 0,
        [b'0', ..] => NOT_INDEX,
        _ if key.len() > 10 => NOT_INDEX,
        _ => {
            let mut v: u64 = 0;
            for &b in key {
                if !b.is_ascii_digit() {
                    return NOT_INDEX;
                }
                v = v * 10 + u64::from(b - b'0');
            }
            // 4_294_967_295 itself is not an index; it maps to NOT_INDEX as well.
            u32::try_from(v).unwrap_or(NOT_INDEX)
        }
    }
}

/// Compares two WTF-8 strings by UTF-16 code units, as JavaScript's default sort does.
pub(crate) fn utf16_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let Some(i) = a.iter().zip(b).position(|(x, y)| x != y) else {
        return a.len().cmp(&b.len());
    };
    let (x, y) = (a[i], b[i]);
    // Byte order equals code-unit order unless the first differing characters are a
    // supplementary one (lead F0..F4, a surrogate pair in UTF-16) against one whose first
    // unit is ≥ U+D800 (lead ED/EE/EF). A differing continuation byte means equal leads,
    // i.e. characters of the same kind, where the orders agree.
    let slow = x >= 0xED && y >= 0xED && (x >= 0xF0) != (y >= 0xF0);
    if !slow {
        return x.cmp(&y);
    }
    Utf16Units::new(&a[i..]).cmp(Utf16Units::new(&b[i..]))
}

/// UTF-16 code units of a WTF-8 string starting on a character boundary.
struct Utf16Units<'a> {
    bytes: &'a [u8],
    pending_low: Option<u16>,
}

impl<'a> Utf16Units<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Utf16Units {
            bytes,
            pending_low: None,
        }
    }
}

impl Iterator for Utf16Units<'_> {
    type Item = u16;

    fn next(&mut self) -> Option<u16> {
        if let Some(low) = self.pending_low.take() {
            return Some(low);
        }
        let (&lead, rest) = self.bytes.split_first()?;
        let len = match lead {
            0x00..=0x7F => 1,
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            _ => 4,
        };
        let cont = |k: usize| u32::from(rest.get(k).copied().unwrap_or(0x80) & 0x3F);
        let cp = match len {
            1 => u32::from(lead),
            2 => (u32::from(lead & 0x1F) << 6) | cont(0),
            3 => (u32::from(lead & 0x0F) << 12) | (cont(0) << 6) | cont(1),
            _ => (u32::from(lead & 0x07) << 18) | (cont(0) << 12) | (cont(1) << 6) | cont(2),
        };
        self.bytes = self.bytes.get(len..).unwrap_or_default();
        if cp >= 0x1_0000 {
            let c = cp - 0x1_0000;
            self.pending_low = Some(0xDC00 | (c & 0x3FF) as u16);
            Some(0xD800 | ((c >> 10) & 0x3FF) as u16)
        } else {
            Some(cp as u16)
        }
    }
}

/// Writes an ECMAScript `Number::toString` of a finite double.
#[inline]
pub(crate) fn write_number(out: &mut Vec<u8>, f: f64) {
    if f == 0.0 {
        // Both zeros print as "0".
        out.push(b'0');
    } else if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        // Exact integers (millisecond timestamps above all) print without fraction or
        // exponent; below 2^53 the conversion is exact, and this is cheaper than ryu.
        write_i64(out, f as i64);
    } else {
        let mut buf = ryu_js::Buffer::new();
        out.extend_from_slice(buf.format_finite(f).as_bytes());
    }
}

/// Writes a number as `JSON.stringify` does outside the canonical path: like
/// [`write_number`] for finite values, `null` for NaN and ±Infinity.
#[inline]
pub(crate) fn write_number_or_null(out: &mut Vec<u8>, f: f64) {
    if f.is_finite() {
        write_number(out, f);
    } else {
        out.extend_from_slice(b"null");
    }
}

/// "00".."99": two digits per table lookup halves the divisions.
static DIGITS2: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

fn write_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    let mut n = v.unsigned_abs();
    let mut digits = [0u8; 20];
    let mut pos = digits.len();
    // 20 digits hold any u64, so `pos` never underflows and the indices stay in range.
    while n >= 100 {
        pos -= 2;
        digits[pos..pos + 2].copy_from_slice(&DIGITS2[(n % 100) as usize]);
        n /= 100;
    }
    if n >= 10 {
        pos -= 2;
        digits[pos..pos + 2].copy_from_slice(&DIGITS2[n as usize]);
    } else {
        pos -= 1;
        digits[pos] = b'0' + n as u8;
    }
    out.extend_from_slice(&digits[pos..]);
}

/// Escape class per byte: 0 = literal, `b'u'` = `\u00xx`, `SURR` = possible surrogate
/// (lead byte ED), anything else = the character after the backslash.
const SURR: u8 = 1;
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0A] = b'n';
    t[0x0C] = b'f';
    t[0x0D] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t[0xED] = SURR;
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Whether any byte of `w` is below `n` (exact for `n <= 128`; bit-twiddling "hasless").
#[inline]
fn has_byte_below(w: u64, n: u8) -> bool {
    w.wrapping_sub(LO * u64::from(n)) & !w & HI != 0
}

/// Whether any byte of `w` equals `b`.
#[inline]
fn has_byte(w: u64, b: u8) -> bool {
    has_byte_below(w ^ (LO * u64::from(b)), 1)
}

/// Whether a word holds a byte `write_string` must look at: a control character, `"`,
/// `\`, or 0xED (the lead byte of a possible lone surrogate).
#[inline]
fn word_needs_attention(w: u64) -> bool {
    has_byte_below(w, 0x20) || has_byte(w, b'"') || has_byte(w, b'\\') || has_byte(w, 0xED)
}

/// True if a `JSON.stringify` string literal of `s` differs from `"` + `s` + `"`: it has a
/// `"`, a `\` or a byte below 0x20 (for `&str` input, where lone surrogates cannot occur).
/// Eight bytes per step: ids and signatures almost never need escaping, so the audit
/// chain checks once and then copies them verbatim.
pub(crate) fn needs_escape(s: &[u8]) -> bool {
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let w = u64::from_le_bytes(w);
        if has_byte_below(w, 0x20) || has_byte(w, b'"') || has_byte(w, b'\\') {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// Writes a quoted string with `JSON.stringify`'s escaping (well-formed variant: lone
/// surrogates become lowercase `\udxxx`).
#[inline]
pub(crate) fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        // Skip 8 plain bytes at a time; most payload text needs no escaping.
        if let Some(chunk) = s.get(i..i + 8) {
            if let Ok(bytes) = <[u8; 8]>::try_from(chunk) {
                if !word_needs_attention(u64::from_le_bytes(bytes)) {
                    i += 8;
                    continue;
                }
            }
        }
        let class = ESCAPE[usize::from(b)];
        if class == 0 {
            i += 1;
            continue;
        }
        if class == SURR {
            match s.get(i + 1) {
                // ED A0..BF xx encodes U+D800..U+DFFF: a lone surrogate (WTF-8).
                Some(&b1) if b1 >= 0xA0 => {
                    let b2 = s.get(i + 2).copied().unwrap_or(0x80);
                    let unit = 0xD000 | (u16::from(b1 & 0x3F) << 6) | u16::from(b2 & 0x3F);
                    out.extend_from_slice(s.get(start..i).unwrap_or_default());
                    out.extend_from_slice(b"\\u");
                    for shift in [12u16, 8, 4, 0] {
                        out.push(HEX[usize::from((unit >> shift) & 0xF)]);
                    }
                    i += 3;
                    start = i.min(s.len());
                }
                _ => i += 1,
            }
            continue;
        }
        out.extend_from_slice(s.get(start..i).unwrap_or_default());
        if class == b'u' {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xF)]);
        } else {
            out.push(b'\\');
            out.push(class);
        }
        i += 1;
        start = i;
    }
    out.extend_from_slice(s.get(start..).unwrap_or_default());
    out.push(b'"');
}

/// One pass over a tree into `out`, reusing one scratch vector for every object's sorted
/// keys (no allocation per object once it has grown).
pub(crate) struct Writer<'t, 'o, T: JsonTree> {
    out: &'o mut Vec<u8>,
    scratch: Vec<(&'t [u8], &'t T, u32)>,
}

impl<'t, 'o, T: JsonTree> Writer<'t, 'o, T> {
    pub(crate) fn new(out: &'o mut Vec<u8>) -> Self {
        Writer {
            out,
            scratch: Vec::new(),
        }
    }

    pub(crate) fn write(&mut self, v: &'t T, depth: usize) -> Result<(), WriteFail> {
        match v.view() {
            View::Null => self.out.extend_from_slice(b"null"),
            View::Bool(true) => self.out.extend_from_slice(b"true"),
            View::Bool(false) => self.out.extend_from_slice(b"false"),
            View::Number(f) => {
                if !f.is_finite() {
                    return Err(WriteFail::NonFinite);
                }
                write_number(self.out, f);
            }
            View::Str(s) => write_string(self.out, s),
            View::Array(items) => {
                if depth >= MAX_DEPTH {
                    return Err(WriteFail::TooDeep);
                }
                self.out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    self.write(item, depth + 1)?;
                }
                self.out.push(b']');
            }
            View::Object(entries) => {
                if depth >= MAX_DEPTH {
                    return Err(WriteFail::TooDeep);
                }
                let start = self.scratch.len();
                for (k, child) in entries {
                    if k == b"__proto__" {
                        // v1 assigns it to a fresh object, which sets the prototype instead
                        // of creating a key: dropped from the output, but still validated.
                        check(child, depth + 1)?;
                        continue;
                    }
                    self.scratch.push((k, child, array_index(k)));
                }
                let keys = &mut self.scratch[start..];
                let cmp = |a: &(&[u8], &T, u32), b: &(&[u8], &T, u32)| {
                    a.2.cmp(&b.2).then_with(|| utf16_cmp(a.0, b.0))
                };
                if keys
                    .windows(2)
                    .any(|w| cmp(&w[0], &w[1]) == Ordering::Greater)
                {
                    keys.sort_unstable_by(cmp);
                }
                self.out.push(b'{');
                let end = self.scratch.len();
                for i in start..end {
                    let (k, child, _) = self.scratch[i];
                    if i > start {
                        self.out.push(b',');
                    }
                    write_string(self.out, k);
                    self.out.push(b':');
                    self.write(child, depth + 1)?;
                }
                self.out.push(b'}');
                self.scratch.truncate(start);
            }
        }
        Ok(())
    }
}

/// Walks a subtree that is not written (a `__proto__` value) for what v1's validation
/// would reject.
fn check<T: JsonTree>(v: &T, depth: usize) -> Result<(), WriteFail> {
    match v.view() {
        View::Number(f) if !f.is_finite() => Err(WriteFail::NonFinite),
        View::Array(items) => {
            if depth >= MAX_DEPTH {
                return Err(WriteFail::TooDeep);
            }
            items.iter().try_for_each(|x| check(x, depth + 1))
        }
        View::Object(entries) => {
            if depth >= MAX_DEPTH {
                return Err(WriteFail::TooDeep);
            }
            for (_, x) in entries {
                check(x, depth + 1)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(f: f64) -> String {
        let mut v = Vec::new();
        write_number(&mut v, f);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn numbers_format_like_ecmascript() {
        let cases = [
            (0.0, "0"),
            (-0.0, "0"),
            (42.0, "42"),
            (-7.0, "-7"),
            (1.5, "1.5"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1e-7, "1e-7"),
            (-2.5e-8, "-2.5e-8"),
            (0.000001, "0.000001"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (9007199254740993.0, "9007199254740992"),
            (18446744073709552000.0, "18446744073709552000"),
            (1700000000000.5, "1700000000000.5"),
            (123456789012345680000.0, "123456789012345680000"),
        ];
        for (f, want) in cases {
            assert_eq!(num(f), want, "{f:e}");
        }
    }

    #[test]
    fn integers_and_non_finite() {
        for x in [
            5.0,
            10.0,
            99.0,
            100.0,
            101.0,
            1009.0,
            123_456_789.0,
            -7.0,
            -10.0,
        ] {
            assert_eq!(num(x), format!("{}", x as i64));
        }
        assert_eq!(num(1_700_000_000_000.0), "1700000000000");
        assert_eq!(num(-9_007_199_254_740_991.0), "-9007199254740991");
        for (x, want) in [(f64::NAN, "null"), (f64::INFINITY, "null"), (-1.5, "-1.5")] {
            let mut v = Vec::new();
            write_number_or_null(&mut v, x);
            assert_eq!(String::from_utf8(v).unwrap(), want);
        }
    }

    #[test]
    fn escape_scan_matches_bytewise_check() {
        for s in [
            "",
            "plain-ascii-id-0123456789",
            "é😀 no escapes here at all, \u{d55c}\u{d7a3}",
            "x\"",
            "abcdefgh\\",
            "abcdefghijklmno\u{1f}",
            "\u{7f}\u{80}",
        ] {
            let slow = s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\');
            assert_eq!(needs_escape(s.as_bytes()), slow, "{s:?}");
            // Not needing escapes means the writer copies the string verbatim.
            let mut v = Vec::new();
            write_string(&mut v, s.as_bytes());
            assert_eq!(v == format!("\"{s}\"").into_bytes(), !slow, "{s:?}");
        }
    }

    #[test]
    fn array_indices() {
        assert_eq!(array_index(b"0"), 0);
        assert_eq!(array_index(b"10"), 10);
        assert_eq!(array_index(b"4294967294"), 4_294_967_294);
        for k in [
            "",
            "01",
            "-1",
            "1.5",
            "4294967295",
            "99999999999",
            "a",
            "+1",
        ] {
            assert_eq!(array_index(k.as_bytes()), NOT_INDEX, "{k}");
        }
    }

    #[test]
    fn utf16_order_puts_astral_before_high_bmp() {
        assert_eq!(utf16_cmp("😀".as_bytes(), "Ａ".as_bytes()), Ordering::Less);
        assert_eq!(utf16_cmp("é".as_bytes(), "😀".as_bytes()), Ordering::Less);
        assert_eq!(utf16_cmp("a".as_bytes(), "ab".as_bytes()), Ordering::Less);
        assert_eq!(utf16_cmp("".as_bytes(), "a".as_bytes()), Ordering::Less);
        // Lone low surrogate U+DC00 (WTF-8 ED B0 80) sorts after the pair D83D DE00.
        assert_eq!(
            utf16_cmp(&[0xED, 0xB0, 0x80], "😀".as_bytes()),
            Ordering::Greater
        );
    }

    #[test]
    fn word_scan_flags_exactly_the_special_bytes() {
        for b in 0..=255u8 {
            let special = b < 0x20 || b == b'"' || b == b'\\' || b == 0xED;
            for pos in 0..8 {
                let mut w = [b'a'; 8];
                w[pos] = b;
                assert_eq!(
                    word_needs_attention(u64::from_le_bytes(w)),
                    special,
                    "{b:#x}@{pos}"
                );
            }
        }
        // Long strings mixing plain runs and escapes at every alignment.
        for pad in 0..9 {
            let text = format!(
                "{}\"{}\n{}é\u{1}",
                "x".repeat(pad),
                "y".repeat(9),
                "z".repeat(17)
            );
            let mut v = Vec::new();
            write_string(&mut v, text.as_bytes());
            let want = serde_json::to_string(&text).unwrap();
            assert_eq!(String::from_utf8(v).unwrap(), want);
        }
    }

    #[test]
    fn strings_escape_like_json_stringify() {
        let mut v = Vec::new();
        write_string(
            &mut v,
            "a\"\\\u{8}\u{c}\n\r\t\u{1}\u{1f}/\u{7f}\u{2028}é".as_bytes(),
        );
        assert_eq!(
            String::from_utf8(v).unwrap(),
            "\"a\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f/\u{7f}\u{2028}é\""
        );
        let mut v = Vec::new();
        write_string(&mut v, &[0xED, 0xA0, 0x80, b'x', 0xED, 0xB0, 0x80]);
        assert_eq!(String::from_utf8(v).unwrap(), "\"\\ud800x\\udc00\"");
    }
}
