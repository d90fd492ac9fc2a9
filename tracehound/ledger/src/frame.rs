//! The on-disk byte layout of segments and frames, as pure functions over byte slices
//! (the file code in the `segment` module and the fuzz target both use them).
//!
//! ```text
//! segment = header frame*
//! header  = "THLEDG01" (8 bytes) · first entry index (u64 LE)
//! frame   = payload length n (u32 LE) · !n (u32 LE) · SHA-256(0x00 ‖ payload) · payload (n bytes)
//! ```
//!
//! The checksum is the entry's RFC 6962 leaf hash, so verifying a frame also yields the
//! tree leaf. The inverted length makes a damaged length field distinguishable from a
//! frame that was cut short: only a frame that runs past the end of the file (or a
//! checksum failure in the file's very last frame, or a zero-filled tail) is a torn
//! write; anything else is corruption.

use crate::merkle::{leaf_hash, Hash};

/// Magic bytes at the start of every segment (format version 1).
pub const SEGMENT_MAGIC: [u8; 8] = *b"THLEDG01";
/// Bytes of the segment header.
pub const SEGMENT_HEADER_LEN: usize = 16;
/// Bytes of a frame before its payload.
pub const FRAME_OVERHEAD: usize = 40;
/// Largest accepted payload. Audit records are a few hundred bytes; a larger length field
/// is damage, not data.
pub const MAX_ENTRY_BYTES: usize = 16 << 20;

/// Writes a segment header for a segment whose first entry is `first_index`.
pub fn encode_segment_header(first_index: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut out = [0u8; SEGMENT_HEADER_LEN];
    let (magic, index) = out.split_at_mut(8);
    magic.copy_from_slice(&SEGMENT_MAGIC);
    index.copy_from_slice(&first_index.to_le_bytes());
    out
}

/// Why a segment header was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer bytes than a header (a segment whose creation was cut short).
    Short,
    /// The magic bytes are wrong (not a segment, or an unknown format version).
    BadMagic,
}

/// Reads a segment header and returns the segment's first entry index.
pub fn decode_segment_header(bytes: &[u8]) -> Result<u64, HeaderError> {
    let header = bytes.get(..SEGMENT_HEADER_LEN).ok_or(HeaderError::Short)?;
    let (magic, index) = header.split_at(8);
    if magic != SEGMENT_MAGIC {
        return Err(HeaderError::BadMagic);
    }
    let mut le = [0u8; 8];
    le.copy_from_slice(index);
    Ok(u64::from_le_bytes(le))
}

/// Appends one frame for `payload` (whose leaf hash the caller already has) to `out`.
/// `payload` must be at most [`MAX_ENTRY_BYTES`] long.
pub fn encode_frame(payload: &[u8], leaf: &Hash, out: &mut Vec<u8>) {
    let n = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.reserve(FRAME_OVERHEAD + payload.len());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&(!n).to_le_bytes());
    out.extend_from_slice(leaf);
    out.extend_from_slice(payload);
}

/// One intact frame found by [`scan_frames`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Offset of the frame in the scanned bytes.
    pub offset: usize,
    /// The verified leaf hash (`SHA-256(0x00 ‖ payload)`).
    pub leaf: Hash,
    /// The entry bytes.
    pub payload: &'a [u8],
}

/// What stopped a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameFault {
    /// Fewer than 8 bytes left: a length field cut short.
    PartialHeader,
    /// The frame runs past the end of the bytes.
    PartialFrame,
    /// The last frame's checksum does not match (its payload was not fully written).
    ChecksumAtTail,
    /// Only zero bytes remain (space allocated but never written).
    ZeroFill,
    /// The length field and its inverse disagree.
    BadLength,
    /// The length field is consistent but larger than [`MAX_ENTRY_BYTES`].
    TooLarge,
    /// A frame followed by more data has a wrong checksum.
    ChecksumMismatch,
}

impl FrameFault {
    /// True for the faults a write cut short by a crash can leave at the end of a file;
    /// the others mean the file was damaged.
    pub fn is_torn(self) -> bool {
        matches!(
            self,
            FrameFault::PartialHeader
                | FrameFault::PartialFrame
                | FrameFault::ChecksumAtTail
                | FrameFault::ZeroFill
        )
    }

    /// A short description for reports and errors.
    pub fn describe(self) -> &'static str {
        match self {
            FrameFault::PartialHeader => "partial frame header",
            FrameFault::PartialFrame => "frame cut short",
            FrameFault::ChecksumAtTail => "bad checksum in the last frame",
            FrameFault::ZeroFill => "zero-filled tail",
            FrameFault::BadLength => "damaged length field",
            FrameFault::TooLarge => "length field larger than any entry",
            FrameFault::ChecksumMismatch => "bad checksum in a frame followed by more data",
        }
    }
}

/// How a scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every byte belongs to an intact frame.
    Clean,
    /// A fault at `offset`; bytes from there on are not frames.
    Fault {
        /// Where the bad frame starts.
        offset: usize,
        /// What is wrong with it.
        fault: FrameFault,
    },
}

/// Walks the frames of `bytes` from `start`, calling `visit` for each intact frame in
/// order, and reports how the walk ended. Never panics, whatever the bytes.
pub fn scan_frames<'a>(bytes: &'a [u8], start: usize, mut visit: impl FnMut(Frame<'a>)) -> ScanEnd {
    let mut offset = start;
    loop {
        let Some(rest) = bytes.get(offset..) else {
            return ScanEnd::Fault {
                offset,
                fault: FrameFault::PartialHeader,
            };
        };
        if rest.is_empty() {
            return ScanEnd::Clean;
        }
        let fault = |fault| ScanEnd::Fault { offset, fault };
        let (Some(len), Some(check)) = (read_u32(rest, 0), read_u32(rest, 4)) else {
            return fault(FrameFault::PartialHeader);
        };
        if check != !len {
            return if rest.iter().all(|&b| b == 0) {
                fault(FrameFault::ZeroFill)
            } else {
                fault(FrameFault::BadLength)
            };
        }
        let len = len as usize;
        if len > MAX_ENTRY_BYTES {
            return fault(FrameFault::TooLarge);
        }
        let end = FRAME_OVERHEAD + len;
        let (Some(stored), Some(payload)) =
            (rest.get(8..FRAME_OVERHEAD), rest.get(FRAME_OVERHEAD..end))
        else {
            return fault(FrameFault::PartialFrame);
        };
        let leaf = leaf_hash(payload);
        if leaf != stored {
            return if end == rest.len() {
                fault(FrameFault::ChecksumAtTail)
            } else {
                fault(FrameFault::ChecksumMismatch)
            };
        }
        visit(Frame {
            offset,
            leaf,
            payload,
        });
        offset += end;
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let mut le = [0u8; 4];
    le.copy_from_slice(bytes.get(at..at.checked_add(4)?)?);
    Some(u32::from_le_bytes(le))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            encode_frame(p, &leaf_hash(p), &mut out);
        }
        out
    }

    fn scan(bytes: &[u8]) -> (Vec<Vec<u8>>, ScanEnd) {
        let mut seen = Vec::new();
        let end = scan_frames(bytes, 0, |f| seen.push(f.payload.to_vec()));
        (seen, end)
    }

    #[test]
    fn intact_frames_scan_clean() {
        let bytes = frames(&[b"one", b"", b"three"]);
        let (seen, end) = scan(&bytes);
        assert_eq!(seen, vec![b"one".to_vec(), vec![], b"three".to_vec()]);
        assert_eq!(end, ScanEnd::Clean);
    }

    #[test]
    fn a_cut_at_every_offset_of_the_last_frame_is_torn_at_its_start() {
        let bytes = frames(&[b"first", b"second entry"]);
        let last = FRAME_OVERHEAD + 5;
        for cut in last + 1..bytes.len() {
            let (seen, end) = scan(&bytes[..cut]);
            assert_eq!(seen.len(), 1, "cut at {cut}");
            match end {
                ScanEnd::Fault { offset, fault } => {
                    assert_eq!(offset, last, "cut at {cut}");
                    assert!(fault.is_torn(), "cut at {cut}: {fault:?}");
                }
                ScanEnd::Clean => panic!("cut at {cut} scanned clean"),
            }
        }
    }

    #[test]
    fn damage_before_the_last_frame_is_corruption() {
        let bytes = frames(&[b"first", b"second"]);
        let mut payload_flip = bytes.clone();
        payload_flip[FRAME_OVERHEAD] ^= 1;
        assert_eq!(
            scan(&payload_flip).1,
            ScanEnd::Fault {
                offset: 0,
                fault: FrameFault::ChecksumMismatch
            }
        );
        let mut len_flip = bytes.clone();
        len_flip[0] ^= 4;
        assert_eq!(
            scan(&len_flip).1,
            ScanEnd::Fault {
                offset: 0,
                fault: FrameFault::BadLength
            }
        );
        let mut tail_flip = bytes;
        let n = tail_flip.len();
        tail_flip[n - 1] ^= 1;
        assert_eq!(
            scan(&tail_flip).1,
            ScanEnd::Fault {
                offset: FRAME_OVERHEAD + 5,
                fault: FrameFault::ChecksumAtTail
            }
        );
    }

    #[test]
    fn zero_fill_is_torn_and_huge_lengths_are_not() {
        let mut bytes = frames(&[b"a"]);
        bytes.extend_from_slice(&[0u8; 100]);
        let (seen, end) = scan(&bytes);
        assert_eq!(seen.len(), 1);
        assert_eq!(
            end,
            ScanEnd::Fault {
                offset: FRAME_OVERHEAD + 1,
                fault: FrameFault::ZeroFill
            }
        );
        let n = (MAX_ENTRY_BYTES as u32) + 1;
        let mut huge = n.to_le_bytes().to_vec();
        huge.extend_from_slice(&(!n).to_le_bytes());
        assert_eq!(
            scan(&huge).1,
            ScanEnd::Fault {
                offset: 0,
                fault: FrameFault::TooLarge
            }
        );
    }

    #[test]
    fn headers_round_trip_and_reject_garbage() {
        let h = encode_segment_header(42);
        assert_eq!(decode_segment_header(&h), Ok(42));
        assert_eq!(decode_segment_header(&h[..15]), Err(HeaderError::Short));
        let mut bad = h;
        bad[0] = b'X';
        assert_eq!(decode_segment_header(&bad), Err(HeaderError::BadMagic));
    }
}
