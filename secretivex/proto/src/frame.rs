//! Agent framing: `uint32 length ‖ byte type ‖ contents`.
//!
//! A reader first takes the 4-byte header, validates it with [`body_len`], then
//! reads exactly that many bytes and hands them to `Request::decode` or
//! `Response::decode`.

use crate::error::FrameError;
use crate::MAX_FRAME_LEN;

/// Size of the length prefix.
pub const HEADER_LEN: usize = 4;

/// Validates a frame header and returns the body length.
///
/// Refuses 0 (a body must at least hold its type byte) and anything above
/// [`MAX_FRAME_LEN`] (OpenSSH's `AGENT_MAX_LEN`), so a reader never allocates
/// more than 256 KiB for one message.
pub fn body_len(header: [u8; 4]) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header);
    if len == 0 {
        return Err(FrameError::Empty);
    }
    match usize::try_from(len) {
        Ok(n) if n <= MAX_FRAME_LEN => Ok(n),
        _ => Err(FrameError::TooLong(len)),
    }
}

/// Appends a frame `length ‖ msg_type ‖ body` to `out`.
///
/// The length is written as `u32`; a body longer than `u32::MAX - 1` bytes (far
/// beyond any peer's limit) is written with length `u32::MAX`, which every
/// reader refuses, instead of panicking.
pub fn encode_frame(msg_type: u8, body: &[u8], out: &mut Vec<u8>) {
    let len = body.len().saturating_add(1);
    out.reserve(len.saturating_add(HEADER_LEN));
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    out.push(msg_type);
    out.extend_from_slice(body);
}

/// One complete frame split off the front of a buffer by [`split_frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split<'a> {
    /// The body: type byte and contents.
    pub body: &'a [u8],
    /// Whatever follows the frame.
    pub rest: &'a [u8],
}

/// Splits one complete frame off the front of `buf`.
///
/// Returns `Ok(None)` when more bytes are needed, `Ok(Some(split))` when a frame
/// is complete, or the header error.
pub fn split_frame(buf: &[u8]) -> Result<Option<Split<'_>>, FrameError> {
    let Some((header, tail)) = buf.split_first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let len = body_len(*header)?;
    if tail.len() < len {
        return Ok(None);
    }
    let (body, rest) = tail.split_at(len);
    Ok(Some(Split { body, rest }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_oversized_lengths_are_refused() {
        assert_eq!(body_len([0, 0, 0, 0]), Err(FrameError::Empty));
        assert_eq!(body_len([0, 4, 0, 0]), Ok(MAX_FRAME_LEN));
        assert_eq!(body_len([0, 4, 0, 1]), Err(FrameError::TooLong(262_145)));
        assert_eq!(body_len([0xff; 4]), Err(FrameError::TooLong(u32::MAX)));
        assert_eq!(body_len([0, 0, 0, 1]), Ok(1));
    }

    #[test]
    fn encode_then_split() {
        let mut out = Vec::new();
        encode_frame(11, &[], &mut out);
        encode_frame(22, b"pw", &mut out);
        assert_eq!(out[..5], [0, 0, 0, 1, 11]);
        let first = split_frame(&out).unwrap().unwrap();
        assert_eq!(first.body, [11]);
        let second = split_frame(first.rest).unwrap().unwrap();
        assert_eq!(second.body, [22, b'p', b'w']);
        assert!(second.rest.is_empty());
        assert_eq!(split_frame(&[0, 0, 0, 2, 6]), Ok(None));
        assert_eq!(split_frame(&[0, 0]), Ok(None));
    }
}
