//! Lowercase hex into fixed arrays, for the hot paths (audit chain, evidence, secure ids)
//! that must not allocate a `String` per digest.

/// Lowercase hex digits, indexed by nibble.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Byte → its two lowercase hex digits (one lookup per byte).
static HEX2: [[u8; 2]; 256] = {
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 0x0f]];
        i += 1;
    }
    t
};

/// Lowercase hex of `bytes` into `out`, which must be twice as long (extra input or
/// output is ignored; callers pass `[u8; N]` / `[u8; 2N]`).
#[inline]
fn encode_into(bytes: &[u8], out: &mut [u8]) {
    for (pair, &b) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&HEX2[usize::from(b)]);
    }
}

/// Lowercase hex of a 32-byte digest.
pub(crate) fn hex32(bytes: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    encode_into(bytes, &mut out);
    out
}

/// Lowercase hex of 4 bytes (the secure-id suffix).
pub(crate) fn hex4(bytes: &[u8; 4]) -> [u8; 8] {
    let mut out = [0u8; 8];
    encode_into(bytes, &mut out);
    out
}

/// The `&str` view of [`hex32`]'s output.
pub(crate) fn hex_str(hex: &[u8; 64]) -> &str {
    // Only ever filled by `hex32`, which writes ASCII.
    std::str::from_utf8(hex).unwrap_or("")
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
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        *o = (nibble(*hi)? << 4) | nibble(*lo)?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_is_lowercase_only() {
        let b: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37));
        let h = hex32(&b);
        assert_eq!(hex_str(&h), hex::encode(b));
        assert_eq!(parse_hex32(hex_str(&h)), Some(b));
        assert_eq!(parse_hex32(&"AB".repeat(32)), None);
        assert_eq!(parse_hex32("ab"), None);
        assert_eq!(parse_hex32(&"g0".repeat(32)), None);
        assert_eq!(&hex4(&[0x5b, 0x7f, 0x69, 0xb3]), b"5b7f69b3");
    }
}
