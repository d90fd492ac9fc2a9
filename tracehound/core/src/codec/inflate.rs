//! Push-based gzip decoder with bounded memory and an output cap.
//!
//! The gzip framing (RFC 1952 header, CRC-32 and ISIZE trailer) is parsed here, byte by
//! byte, and only the raw deflate body goes to zlib-rs. Owning the framing lets the
//! decoder be fed arbitrary chunks, reset cheaply for reuse, and mirror Node's `gunzip`
//! on what follows a member: further members are decoded, and a zero byte ends the
//! stream (Node treats trailing zero padding as the end and ignores the rest).

use flate2::{Crc, Decompress, FlushDecompress, Status};

use super::CodecError;

/// Size of the internal output window: decoded bytes reach the sink in pieces of at most
/// this many bytes, which bounds the decoder's memory whatever the compression ratio.
pub(crate) const SCRATCH_SIZE: usize = 32 * 1024;

const FTEXT_MASK_RESERVED: u8 = 0xe0;
const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;

/// Where the decoder is inside the gzip stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the 10 fixed header bytes; the count says how many are in.
    Fixed(u8),
    /// Reading the 2-byte FEXTRA length.
    ExtraLen(u8),
    /// Skipping this many FEXTRA bytes.
    Extra(u16),
    /// Skipping the zero-terminated file name.
    Name,
    /// Skipping the zero-terminated comment.
    Comment,
    /// Reading the 2-byte header CRC.
    HeaderCrc(u8),
    /// Inflating the deflate body.
    Body,
    /// Reading the 8-byte trailer; the count says how many are in.
    Trailer(u8),
    /// A member ended; more members or the end may follow.
    Between,
    /// A zero byte followed a member: everything after it is ignored, as Node does.
    Ignoring,
    /// An error happened; the decoder must be reset before reuse.
    Failed,
}

/// Incremental gzip decoder: feed compressed chunks with [`push`](Self::push), receive
/// decoded bytes through a sink callback, and call [`finish`](Self::finish) at the end.
///
/// Memory is bounded by a fixed 32 KiB output window plus zlib's state, whatever the
/// input; total output is capped by `limit` so a gzip bomb fails with
/// [`CodecError::OutputTooLarge`] instead of exhausting memory.
pub struct GzipDecoder {
    inflate: Decompress,
    scratch: Vec<u8>,
    state: State,
    flags: u8,
    header: [u8; 10],
    small: [u8; 8],
    header_crc: Crc,
    body_crc: Crc,
    member_out: u64,
    total_out: u64,
    total_in: u64,
    members: u32,
    limit: u64,
}

impl std::fmt::Debug for GzipDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GzipDecoder")
            .field("state", &self.state)
            .field("total_in", &self.total_in)
            .field("total_out", &self.total_out)
            .field("limit", &self.limit)
            .finish()
    }
}

impl GzipDecoder {
    /// A decoder that fails once more than `limit` decoded bytes would be produced.
    pub fn new(limit: u64) -> Self {
        GzipDecoder {
            inflate: Decompress::new(false),
            scratch: vec![0; SCRATCH_SIZE],
            state: State::Fixed(0),
            flags: 0,
            header: [0; 10],
            small: [0; 8],
            header_crc: Crc::new(),
            body_crc: Crc::new(),
            member_out: 0,
            total_out: 0,
            total_in: 0,
            members: 0,
            limit,
        }
    }

    /// Returns the decoder to its initial state with a new cap, keeping its buffers.
    pub fn reset(&mut self, limit: u64) {
        self.inflate.reset(false);
        self.state = State::Fixed(0);
        self.flags = 0;
        self.header_crc.reset();
        self.body_crc.reset();
        self.member_out = 0;
        self.total_out = 0;
        self.total_in = 0;
        self.members = 0;
        self.limit = limit;
    }

    /// Decoded bytes produced so far.
    pub fn total_out(&self) -> u64 {
        self.total_out
    }

    /// Compressed bytes consumed so far (including ignored trailing bytes).
    pub fn total_in(&self) -> u64 {
        self.total_in
    }

    fn fail(&mut self, e: CodecError) -> CodecError {
        self.state = State::Failed;
        e
    }

    /// Feeds a chunk of compressed bytes. Decoded output is handed to `sink` in pieces of
    /// at most 32 KiB. An error from `sink` aborts decoding and is returned as is.
    pub fn push<F>(&mut self, input: &[u8], sink: &mut F) -> Result<(), CodecError>
    where
        F: FnMut(&[u8]) -> Result<(), CodecError>,
    {
        let r = self.push_inner(input, sink);
        if r.is_err() {
            self.state = State::Failed;
        }
        r
    }

    fn push_inner<F>(&mut self, mut input: &[u8], sink: &mut F) -> Result<(), CodecError>
    where
        F: FnMut(&[u8]) -> Result<(), CodecError>,
    {
        self.total_in = self.total_in.saturating_add(input.len() as u64);
        loop {
            if self.state == State::Body {
                input = self.inflate_some(input, sink)?;
                if self.state == State::Body {
                    // inflate_some returns in Body only when it needs more input.
                    return Ok(());
                }
                continue;
            }
            if matches!(self.state, State::Ignoring) {
                return Ok(());
            }
            if self.state == State::Failed {
                return Err(CodecError::StreamFinished);
            }
            let Some((&b, rest)) = input.split_first() else {
                return Ok(());
            };
            input = rest;
            self.step(b)?;
        }
    }

    /// Advances the header/trailer state machine by one byte.
    fn step(&mut self, b: u8) -> Result<(), CodecError> {
        match self.state {
            State::Between => {
                if b == 0 {
                    self.state = State::Ignoring;
                    return Ok(());
                }
                // Another member follows (RFC 1952 allows concatenation).
                self.inflate.reset(false);
                self.header_crc.reset();
                self.body_crc.reset();
                self.member_out = 0;
                self.state = State::Fixed(0);
                self.step(b)
            }
            State::Fixed(n) => {
                let idx = usize::from(n);
                if let Some(slot) = self.header.get_mut(idx) {
                    *slot = b;
                }
                self.header_crc.update(&[b]);
                match n {
                    0 if b != 0x1f => return Err(bad("not gzip: bad magic")),
                    1 if b != 0x8b => return Err(bad("not gzip: bad magic")),
                    2 if b != 8 => return Err(bad("unknown compression method")),
                    3 if b & FTEXT_MASK_RESERVED != 0 => {
                        return Err(bad("reserved header flags set"))
                    }
                    3 => self.flags = b,
                    _ => {}
                }
                self.state = if n == 9 {
                    self.after_fixed()
                } else {
                    State::Fixed(n + 1)
                };
                Ok(())
            }
            State::ExtraLen(n) => {
                self.header_crc.update(&[b]);
                if n == 0 {
                    self.small[0] = b;
                    self.state = State::ExtraLen(1);
                } else {
                    let len = u16::from_le_bytes([self.small[0], b]);
                    self.state = if len == 0 {
                        self.after_extra()
                    } else {
                        State::Extra(len)
                    };
                }
                Ok(())
            }
            State::Extra(left) => {
                self.header_crc.update(&[b]);
                self.state = if left <= 1 {
                    self.after_extra()
                } else {
                    State::Extra(left - 1)
                };
                Ok(())
            }
            State::Name => {
                self.header_crc.update(&[b]);
                if b == 0 {
                    self.state = self.after_name();
                }
                Ok(())
            }
            State::Comment => {
                self.header_crc.update(&[b]);
                if b == 0 {
                    self.state = self.after_comment();
                }
                Ok(())
            }
            State::HeaderCrc(n) => {
                if n == 0 {
                    self.small[0] = b;
                    self.state = State::HeaderCrc(1);
                } else {
                    let want = u16::from_le_bytes([self.small[0], b]);
                    // The header CRC is the low 16 bits of the CRC-32 of the header.
                    if (self.header_crc.sum() & 0xffff) as u16 != want {
                        return Err(bad("header CRC mismatch"));
                    }
                    self.state = State::Body;
                }
                Ok(())
            }
            State::Trailer(n) => {
                let idx = usize::from(n);
                if let Some(slot) = self.small.get_mut(idx) {
                    *slot = b;
                }
                if n < 7 {
                    self.state = State::Trailer(n + 1);
                    return Ok(());
                }
                let [c0, c1, c2, c3, s0, s1, s2, s3] = self.small;
                if u32::from_le_bytes([c0, c1, c2, c3]) != self.body_crc.sum() {
                    return Err(bad("CRC-32 mismatch"));
                }
                // ISIZE is the member's length modulo 2^32.
                if u32::from_le_bytes([s0, s1, s2, s3]) != self.member_out as u32 {
                    return Err(bad("length mismatch"));
                }
                self.members = self.members.saturating_add(1);
                self.state = State::Between;
                Ok(())
            }
            State::Body | State::Ignoring | State::Failed => Ok(()),
        }
    }

    fn after_fixed(&self) -> State {
        if self.flags & FEXTRA != 0 {
            State::ExtraLen(0)
        } else {
            self.after_extra()
        }
    }

    fn after_extra(&self) -> State {
        if self.flags & FNAME != 0 {
            State::Name
        } else {
            self.after_name()
        }
    }

    fn after_name(&self) -> State {
        if self.flags & FCOMMENT != 0 {
            State::Comment
        } else {
            self.after_comment()
        }
    }

    fn after_comment(&self) -> State {
        if self.flags & FHCRC != 0 {
            State::HeaderCrc(0)
        } else {
            State::Body
        }
    }

    /// Inflates as much of `input` as possible; returns the unconsumed rest. Leaves the
    /// state in `Body` only when more input is needed.
    fn inflate_some<'a, F>(
        &mut self,
        mut input: &'a [u8],
        sink: &mut F,
    ) -> Result<&'a [u8], CodecError>
    where
        F: FnMut(&[u8]) -> Result<(), CodecError>,
    {
        loop {
            let in_before = self.inflate.total_in();
            let out_before = self.inflate.total_out();
            let status = self
                .inflate
                .decompress(input, &mut self.scratch, FlushDecompress::None)
                .map_err(|_| bad("invalid deflate data"))?;
            let consumed = super::progress(in_before, self.inflate.total_in());
            let produced = super::progress(out_before, self.inflate.total_out());
            input = input.get(consumed..).unwrap_or(&[]);
            if produced > 0 {
                let out = self
                    .scratch
                    .get(..produced)
                    .ok_or_else(|| bad("inflate overran buffer"))?;
                let new_total = self.total_out.saturating_add(produced as u64);
                if new_total > self.limit {
                    return Err(self.fail(CodecError::OutputTooLarge { limit: self.limit }));
                }
                self.total_out = new_total;
                self.member_out = self.member_out.wrapping_add(produced as u64);
                self.body_crc.update(out);
                sink(out)?;
            }
            match status {
                Status::StreamEnd => {
                    self.state = State::Trailer(0);
                    return Ok(input);
                }
                Status::Ok | Status::BufError => {
                    if consumed == 0 && produced == 0 {
                        if input.is_empty() {
                            return Ok(input);
                        }
                        return Err(bad("inflate made no progress"));
                    }
                    if input.is_empty() && produced < self.scratch.len() {
                        return Ok(input);
                    }
                }
            }
        }
    }

    /// Ends the stream: succeeds only if at least one complete member was read and the
    /// stream did not stop inside a member. Returns the total decoded size.
    pub fn finish(&mut self) -> Result<u64, CodecError> {
        match self.state {
            State::Between | State::Ignoring if self.members > 0 => {
                self.state = State::Failed;
                Ok(self.total_out)
            }
            State::Failed => Err(CodecError::StreamFinished),
            _ => Err(self.fail(bad("unexpected end of input"))),
        }
    }
}

fn bad(reason: &'static str) -> CodecError {
    CodecError::DecodeFailed { reason }
}
