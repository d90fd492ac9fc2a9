//! A bounded reader for SSH wire encoding (RFC 4251 §5).
//!
//! Every read checks the remaining length first, so nothing here can panic or
//! allocate: strings are returned as borrowed slices of the input, and callers
//! copy them (into `Zeroizing` for secrets) only once they are accepted.

use crate::error::ProtoError;

/// Largest `mpint` magnitude OpenSSH accepts: 16384 bits (`SSHBUF_MAX_BIGNUM`).
pub(crate) const MAX_MPINT_BYTES: usize = 16384 / 8;

/// A cursor over a byte slice that decodes SSH wire types.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Bytes not yet consumed.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// True when everything has been consumed.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Takes exactly `n` bytes.
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ProtoError> {
        if n > self.buf.len() {
            return Err(ProtoError::Truncated {
                what,
                needed: n,
                remaining: self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Takes everything that is left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// Reads one byte.
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, ProtoError> {
        match self.buf.split_first() {
            Some((&b, tail)) => {
                self.buf = tail;
                Ok(b)
            }
            None => Err(ProtoError::Truncated {
                what,
                needed: 1,
                remaining: 0,
            }),
        }
    }

    /// Reads a big-endian `uint32`.
    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, ProtoError> {
        let b = self.take(4, what)?;
        let arr: [u8; 4] = b.try_into().map_err(|_| ProtoError::Truncated {
            what,
            needed: 4,
            remaining: b.len(),
        })?;
        Ok(u32::from_be_bytes(arr))
    }

    /// Reads a `boolean`. Like OpenSSH, any non-zero byte is true.
    pub(crate) fn bool(&mut self, what: &'static str) -> Result<bool, ProtoError> {
        Ok(self.u8(what)? != 0)
    }

    /// Reads a `string`: `uint32` length then that many bytes.
    pub(crate) fn string(&mut self, what: &'static str) -> Result<&'a [u8], ProtoError> {
        let declared = self.u32(what)?;
        let len = usize::try_from(declared).unwrap_or(usize::MAX);
        if len > self.buf.len() {
            return Err(ProtoError::LengthExceedsInput {
                what,
                declared,
                remaining: self.buf.len(),
            });
        }
        self.take(len, what)
    }

    /// Reads a `string` that OpenSSH treats as a C string: no NUL bytes, and we
    /// additionally require UTF-8 because the field is exposed as `&str`.
    pub(crate) fn cstring(&mut self, what: &'static str) -> Result<&'a str, ProtoError> {
        let raw = self.cstring_bytes(what)?;
        std::str::from_utf8(raw).map_err(|_| ProtoError::InvalidUtf8(what))
    }

    /// Reads a `string` with OpenSSH's C-string rule (no NUL) but any encoding.
    pub(crate) fn cstring_bytes(&mut self, what: &'static str) -> Result<&'a [u8], ProtoError> {
        let raw = self.string(what)?;
        if raw.contains(&0) {
            return Err(ProtoError::NulInString(what));
        }
        Ok(raw)
    }

    /// Reads an `mpint` and returns its unsigned magnitude without leading zeros.
    ///
    /// Negative values are refused (no SSH key component is negative), as are
    /// values above OpenSSH's 16384-bit limit. Leading zero bytes are tolerated
    /// and stripped, as OpenSSH does.
    pub(crate) fn mpint(&mut self, what: &'static str) -> Result<&'a [u8], ProtoError> {
        let raw = self.string(what)?;
        if raw.first().is_some_and(|b| b & 0x80 != 0) {
            return Err(ProtoError::NegativeMpint(what));
        }
        let start = raw.iter().position(|&b| b != 0).unwrap_or(raw.len());
        let magnitude = raw.get(start..).unwrap_or_default();
        if magnitude.len() > MAX_MPINT_BYTES {
            return Err(ProtoError::MpintTooLarge(what));
        }
        Ok(magnitude)
    }

    /// Fails with [`ProtoError::TrailingBytes`] unless everything was consumed.
    pub(crate) fn finish(&self, what: &'static str) -> Result<(), ProtoError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ProtoError::TrailingBytes {
                what,
                count: self.buf.len(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_length_past_end_is_refused() {
        let mut r = Reader::new(&[0, 0, 0, 5, b'a', b'b']);
        assert_eq!(
            r.string("s"),
            Err(ProtoError::LengthExceedsInput {
                what: "s",
                declared: 5,
                remaining: 2
            })
        );
    }

    #[test]
    fn huge_length_is_refused_without_allocating() {
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 1]);
        assert!(matches!(
            r.string("s"),
            Err(ProtoError::LengthExceedsInput {
                declared: u32::MAX,
                ..
            })
        ));
    }

    #[test]
    fn mpint_strips_sign_padding_and_refuses_negative() {
        let mut r = Reader::new(&[0, 0, 0, 3, 0, 0x80, 1]);
        assert_eq!(r.mpint("m"), Ok(&[0x80, 1][..]));
        let mut r = Reader::new(&[0, 0, 0, 1, 0x80]);
        assert_eq!(r.mpint("m"), Err(ProtoError::NegativeMpint("m")));
        let mut r = Reader::new(&[0, 0, 0, 0]);
        assert_eq!(r.mpint("m"), Ok(&[][..]));
    }

    #[test]
    fn mpint_limit_is_16384_bits() {
        let mut ok = vec![0, 0, 0x08, 0x01, 0];
        ok.extend(std::iter::repeat_n(0x7f, 2048));
        assert_eq!(Reader::new(&ok).mpint("m").map(<[u8]>::len), Ok(2048));
        let mut too_big = vec![0, 0, 0x08, 0x01];
        too_big.extend(std::iter::repeat_n(0x7f, 2049));
        assert_eq!(
            Reader::new(&too_big).mpint("m"),
            Err(ProtoError::MpintTooLarge("m"))
        );
    }

    #[test]
    fn cstring_refuses_nul_and_bad_utf8() {
        let mut r = Reader::new(&[0, 0, 0, 2, b'a', 0]);
        assert_eq!(r.cstring("c"), Err(ProtoError::NulInString("c")));
        let mut r = Reader::new(&[0, 0, 0, 1, 0xff]);
        assert_eq!(r.cstring("c"), Err(ProtoError::InvalidUtf8("c")));
    }

    #[test]
    fn finish_reports_trailing_bytes() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u8("b"), Ok(1));
        assert_eq!(
            r.finish("m"),
            Err(ProtoError::TrailingBytes {
                what: "m",
                count: 2
            })
        );
    }
}
