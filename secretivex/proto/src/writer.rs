//! SSH wire encoding, written to any [`Sink`].
//!
//! Encoders run twice: once into a [`Counter`] to learn the exact length, then
//! into the output `Vec` after reserving that much. Reserving first means the
//! output never reallocates mid-write, so no stray copy of secret key material
//! is left behind in a freed buffer, and the frame length prefix is known before
//! the body is written.

/// Something SSH wire bytes can be written to.
pub(crate) trait Sink {
    /// Appends raw bytes.
    fn put(&mut self, bytes: &[u8]);

    /// Appends one byte.
    fn put_u8(&mut self, v: u8) {
        self.put(&[v]);
    }

    /// Appends a big-endian `uint32`.
    fn put_u32(&mut self, v: u32) {
        self.put(&v.to_be_bytes());
    }

    /// Appends a `boolean` (0 or 1).
    fn put_bool(&mut self, v: bool) {
        self.put_u8(u8::from(v));
    }

    /// Appends a `string`. Lengths above `u32::MAX` cannot be represented; they
    /// are written as `u32::MAX`, which every decoder refuses, rather than
    /// panicking (such a value could never fit a 256 KiB frame anyway).
    fn put_string(&mut self, bytes: &[u8]) {
        self.put_u32(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
        self.put(bytes);
    }

    /// Appends an `mpint` from an unsigned big-endian magnitude: leading zeros
    /// are dropped and a zero byte is prepended when the top bit is set.
    fn put_mpint(&mut self, magnitude: &[u8]) {
        let start = magnitude
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(magnitude.len());
        let m = magnitude.get(start..).unwrap_or_default();
        let pad = m.first().is_some_and(|b| b & 0x80 != 0);
        let len = m.len().saturating_add(usize::from(pad));
        self.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
        if pad {
            self.put_u8(0);
        }
        self.put(m);
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// A sink that only counts bytes.
#[derive(Debug, Default)]
pub(crate) struct Counter(pub(crate) usize);

impl Sink for Counter {
    fn put(&mut self, bytes: &[u8]) {
        self.0 = self.0.saturating_add(bytes.len());
    }
}

/// The number of bytes `f` writes.
pub(crate) fn encoded_len(f: impl Fn(&mut dyn Sink)) -> usize {
    let mut counter = Counter::default();
    f(&mut counter);
    counter.0
}

/// Appends what `f` writes to `out`, reserving the exact size up front (see the
/// module docs for why).
pub(crate) fn append_exact(out: &mut Vec<u8>, f: impl Fn(&mut dyn Sink)) {
    out.reserve(encoded_len(&f));
    f(out);
}

/// Writes a length-prefixed frame whose body is produced by `body`, reserving
/// the exact size up front.
pub(crate) fn write_frame(out: &mut Vec<u8>, body: impl Fn(&mut dyn Sink)) {
    let len = encoded_len(&body);
    out.reserve(len.saturating_add(4));
    out.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    body(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpint_padding_matches_rfc4251_examples() {
        let mut v = Vec::new();
        v.put_mpint(&[]);
        v.put_mpint(&[0x00, 0x80]);
        v.put_mpint(&[0x7f]);
        assert_eq!(v, [0, 0, 0, 0, 0, 0, 0, 2, 0, 0x80, 0, 0, 0, 1, 0x7f]);
    }

    #[test]
    fn frame_length_prefix_counts_body() {
        let mut out = vec![9];
        write_frame(&mut out, |s| {
            s.put_u8(6);
            s.put_string(b"ab");
        });
        assert_eq!(out, [9, 0, 0, 0, 7, 6, 0, 0, 0, 2, b'a', b'b']);
    }
}
