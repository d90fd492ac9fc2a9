//! Minimal SSH wire encoding (RFC 4251 §5): `uint32`, `string` and `mpint`.
//!
//! Only what blobs and signatures need. The reader never panics: every length is checked
//! against the bytes that remain.

use crate::KeyError;

/// A cursor over untrusted bytes.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    pub(crate) fn u32(&mut self) -> Result<u32, KeyError> {
        let (head, tail) = self
            .rest
            .split_first_chunk::<4>()
            .ok_or(KeyError::Malformed("truncated uint32"))?;
        self.rest = tail;
        Ok(u32::from_be_bytes(*head))
    }

    /// An SSH `string`: `uint32 length` then that many bytes.
    pub(crate) fn string(&mut self) -> Result<&'a [u8], KeyError> {
        let len = usize::try_from(self.u32()?).map_err(|_| KeyError::Malformed("length"))?;
        if len > self.rest.len() {
            return Err(KeyError::Malformed("truncated string"));
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    /// An SSH `mpint` that must be non-negative; returns the magnitude without leading zeros.
    pub(crate) fn positive_mpint(&mut self) -> Result<&'a [u8], KeyError> {
        let raw = self.string()?;
        if raw.first().is_some_and(|b| b & 0x80 != 0) {
            return Err(KeyError::Malformed("negative mpint"));
        }
        Ok(strip_leading_zeros(raw))
    }

    /// Whether every byte was consumed.
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(&self) -> Result<(), KeyError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(KeyError::Malformed("trailing bytes"))
        }
    }
}

/// Drops leading zero bytes of a big-endian magnitude.
pub(crate) fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or_default()
}

/// Appends an SSH `string`.
pub(crate) fn put_string(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), KeyError> {
    let len = u32::try_from(bytes.len()).map_err(|_| KeyError::Malformed("field too long"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// Appends an unsigned big-endian magnitude as an SSH `mpint` (minimal, sign byte when needed).
pub(crate) fn put_mpint(out: &mut Vec<u8>, magnitude: &[u8]) -> Result<(), KeyError> {
    let m = strip_leading_zeros(magnitude);
    let pad = m.first().is_some_and(|b| b & 0x80 != 0);
    let len = m
        .len()
        .checked_add(usize::from(pad))
        .and_then(|l| u32::try_from(l).ok())
        .ok_or(KeyError::Malformed("mpint too long"))?;
    out.extend_from_slice(&len.to_be_bytes());
    if pad {
        out.push(0);
    }
    out.extend_from_slice(m);
    Ok(())
}

/// Length of `magnitude` encoded by [`put_mpint`], for pre-sizing buffers.
pub(crate) fn mpint_len(magnitude: &[u8]) -> usize {
    let m = strip_leading_zeros(magnitude);
    4 + m.len() + usize::from(m.first().is_some_and(|b| b & 0x80 != 0))
}

/// Number of significant bits of a big-endian magnitude.
pub(crate) fn bit_len(magnitude: &[u8]) -> usize {
    let m = strip_leading_zeros(magnitude);
    match m.first() {
        None => 0,
        Some(&top) => (m.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpint_sign_byte_and_minimality() {
        let mut out = Vec::new();
        put_mpint(&mut out, &[0, 0, 0x80, 1]).unwrap();
        assert_eq!(out, [0, 0, 0, 3, 0, 0x80, 1]);
        assert_eq!(mpint_len(&[0, 0, 0x80, 1]), out.len());
        out.clear();
        put_mpint(&mut out, &[0, 0x7f]).unwrap();
        assert_eq!(out, [0, 0, 0, 1, 0x7f]);
        out.clear();
        put_mpint(&mut out, &[]).unwrap();
        assert_eq!(out, [0, 0, 0, 0]);
    }

    #[test]
    fn reader_rejects_truncation_and_negative() {
        assert!(Reader::new(&[0, 0, 0, 5, 1]).string().is_err());
        assert!(Reader::new(&[0, 0, 0]).u32().is_err());
        assert!(Reader::new(&[0, 0, 0, 1, 0x80]).positive_mpint().is_err());
        let mut r = Reader::new(&[0, 0, 0, 2, 0, 0x90, 9]);
        assert_eq!(r.positive_mpint().unwrap(), &[0x90]);
        assert!(r.finish().is_err());
    }

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_len(&[]), 0);
        assert_eq!(bit_len(&[0, 1]), 1);
        assert_eq!(bit_len(&[0x80, 0]), 16);
        assert_eq!(bit_len(&[0, 0x40, 0]), 15);
    }
}
