//! ECMAScript `JSON.stringify` primitives needed by the audit chain's hash input (spec §3, §9).
//!
//! Kept private to the audit module: the hash input must be byte-identical to v1, and these
//! writers append into a caller-owned buffer so the append/verify hot loops never allocate.

/// Lowercase hex digits, indexed by nibble.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a JSON string literal with `JSON.stringify`'s escaping: `"` and `\`,
/// the short escapes `\b \f \n \r \t`, every other code unit below U+0020 as `\u00xx`
/// (lowercase hex), everything else literal (Rust strings cannot hold lone surrogates).
pub(crate) fn write_js_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0c => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0x0f)]);
        } else {
            out.extend_from_slice(short);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// True if `s` has a byte `JSON.stringify` escapes (`"`, `\`, or below U+0020).
/// Checks eight bytes at a time: ids and signatures almost never need escaping, and the
/// chain's hot loops then copy them verbatim.
pub(crate) fn needs_escape(s: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_le_bytes(w);
        // Classic SWAR tests ("has byte < n", "has zero byte" after XOR); exact as a whole.
        let below = x.wrapping_sub(0x20 * LO) & !x & HI;
        let q = x ^ (u64::from(b'"') * LO);
        let quote = q.wrapping_sub(LO) & !q & HI;
        let b = x ^ (u64::from(b'\\') * LO);
        let backslash = b.wrapping_sub(LO) & !b & HI;
        if below | quote | backslash != 0 {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// Appends `x` as `JSON.stringify` prints a number: ECMAScript `Number::toString` for finite
/// values (`-0` prints as `0`), `null` for NaN and ±Infinity.
pub(crate) fn write_js_number(out: &mut Vec<u8>, x: f64) {
    if !x.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    // Integral millisecond timestamps are by far the common case; print them without the
    // float formatter. Below 2^53 every integral f64 is exact and prints as its integer.
    if x.fract() == 0.0 && x.abs() < 9_007_199_254_740_992.0 {
        // The range check above makes this conversion exact.
        let v = x as i64;
        write_i64(out, v);
        return;
    }
    let mut buf = ryu_js::Buffer::new();
    out.extend_from_slice(buf.format_finite(x).as_bytes());
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
    while n >= 100 {
        pos -= 2;
        // `n % 100` is below 100, a valid index.
        digits[pos..pos + 2].copy_from_slice(&DIGITS2[(n % 100) as usize]);
        n /= 100;
    }
    if n >= 10 {
        pos -= 2;
        digits[pos..pos + 2].copy_from_slice(&DIGITS2[n as usize]);
    } else {
        pos -= 1;
        // `n` is below 10 here.
        digits[pos] = b'0' + n as u8;
    }
    out.extend_from_slice(&digits[pos..]);
}

/// Byte → its two lowercase hex digits.
static HEX2: [[u8; 2]; 256] = {
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 0x0f]];
        i += 1;
    }
    t
};

/// Lowercase hex of 32 bytes into a fixed array (no allocation).
pub(crate) fn hex32(bytes: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (pair, &b) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&HEX2[usize::from(b)]);
    }
    out
}

/// Parses exactly 64 lowercase hex digits (v1 compares hashes as strings, so `A` ≠ `a`).
pub(crate) fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(x: f64) -> String {
        let mut v = Vec::new();
        write_js_number(&mut v, x);
        String::from_utf8(v).unwrap()
    }

    fn st(s: &str) -> String {
        let mut v = Vec::new();
        write_js_string(&mut v, s);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn numbers_follow_ecmascript() {
        assert_eq!(num(1_700_000_000_000.0), "1700000000000");
        assert_eq!(num(1_700_000_000_000.5), "1700000000000.5");
        assert_eq!(num(1e21), "1e+21");
        assert_eq!(num(1e20), "100000000000000000000");
        assert_eq!(num(-0.0), "0");
        assert_eq!(num(-12.0), "-12");
        assert_eq!(num(1e-7), "1e-7");
        assert_eq!(num(f64::NAN), "null");
        assert_eq!(num(f64::NEG_INFINITY), "null");
        assert_eq!(num(9_007_199_254_740_992.0), "9007199254740992");
        for x in [
            0.0,
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
    }

    #[test]
    fn strings_follow_json_stringify() {
        assert_eq!(st("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(st("\u{8}\u{c}\n\r\t"), r#""\b\f\n\r\t""#);
        assert_eq!(
            st("\u{1}\u{1f}\u{7f}/é\u{2028}"),
            "\"\\u0001\\u001f\u{7f}/é\u{2028}\""
        );
    }

    #[test]
    fn escape_scan_matches_bytewise_check() {
        for s in [
            "",
            "plain-ascii-id-0123456789",
            "é😀 no escapes here at all",
            "x\"",
            "abcdefgh\\",
            "abcdefghijklmno\u{1f}",
            "\u{7f}\u{80}",
        ] {
            let slow = s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\');
            assert_eq!(needs_escape(s.as_bytes()), slow, "{s:?}");
        }
    }

    #[test]
    fn hex_round_trip_is_lowercase_only() {
        let b = [0xabu8; 32];
        let h = hex32(&b);
        assert_eq!(parse_hex32(std::str::from_utf8(&h).unwrap()), Some(b));
        assert_eq!(parse_hex32(&"AB".repeat(32)), None);
        assert_eq!(parse_hex32("ab"), None);
    }
}
