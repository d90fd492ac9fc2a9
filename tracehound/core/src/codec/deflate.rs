//! Push-based gzip encoder (zlib-rs, gzip wrapper written by zlib-rs as zlib does).

use flate2::{Compress, Compression, FlushCompress, Status};

use super::CodecError;

/// Output window of the streaming encoder: compressed bytes reach the sink in pieces of
/// at most this many bytes.
const SCRATCH_SIZE: usize = 32 * 1024;

/// v1's gzip parameters: `zlib.gzipSync(bytes, {level: 6})` with windowBits 15.
pub(crate) const WINDOW_BITS: u8 = 15;

/// Creates a gzip-mode compressor at `level` (clamped to 0..=9).
pub(crate) fn new_compress(level: u32) -> Compress {
    Compress::new_gzip(Compression::new(level.min(9)), WINDOW_BITS)
}

/// Compresses all of `input` into one gzip member using `c` (which must be freshly reset).
pub(crate) fn compress_all(c: &mut Compress, input: &[u8]) -> Result<Vec<u8>, CodecError> {
    // deflateBound-like first guess; grown if ever too small (incompressible input).
    let guess = input
        .len()
        .saturating_add(input.len() / 1000)
        .saturating_add(64);
    let mut out = Vec::with_capacity(guess);
    loop {
        let pos = usize::try_from(c.total_in()).unwrap_or(usize::MAX);
        let rest = input.get(pos..).unwrap_or(&[]);
        let status = c
            .compress_vec(rest, &mut out, FlushCompress::Finish)
            .map_err(|e| CodecError::EncodeFailed {
                reason: e.to_string(),
            })?;
        match status {
            Status::StreamEnd => return Ok(out),
            Status::Ok | Status::BufError => {
                let extra = out.capacity().max(1024);
                out.reserve(extra);
            }
        }
    }
}

/// Incremental gzip encoder: [`push`](Self::push) uncompressed chunks, then
/// [`finish`](Self::finish). Compressed output goes to a sink callback in pieces of at
/// most 32 KiB, so memory stays bounded however large the payload.
pub struct GzipEncoder {
    deflate: Compress,
    scratch: Vec<u8>,
    finished: bool,
}

impl std::fmt::Debug for GzipEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GzipEncoder")
            .field("total_in", &self.deflate.total_in())
            .field("total_out", &self.deflate.total_out())
            .field("finished", &self.finished)
            .finish()
    }
}

impl GzipEncoder {
    /// A streaming encoder at the given level (v1 uses 6).
    pub fn new(level: u32) -> Self {
        GzipEncoder {
            deflate: new_compress(level),
            scratch: vec![0; SCRATCH_SIZE],
            finished: false,
        }
    }

    /// Uncompressed bytes consumed so far.
    pub fn total_in(&self) -> u64 {
        self.deflate.total_in()
    }

    /// Compressed bytes produced so far.
    pub fn total_out(&self) -> u64 {
        self.deflate.total_out()
    }

    /// Compresses `input`; output produced so far is handed to `sink`.
    pub fn push<F>(&mut self, input: &[u8], sink: &mut F) -> Result<(), CodecError>
    where
        F: FnMut(&[u8]) -> Result<(), CodecError>,
    {
        if self.finished {
            return Err(CodecError::StreamFinished);
        }
        self.run(input, FlushCompress::None, sink).map(|_| ())
    }

    /// Flushes the rest of the stream and writes the gzip trailer. Returns the total
    /// compressed size.
    pub fn finish<F>(&mut self, sink: &mut F) -> Result<u64, CodecError>
    where
        F: FnMut(&[u8]) -> Result<(), CodecError>,
    {
        if self.finished {
            return Err(CodecError::StreamFinished);
        }
        self.run(&[], FlushCompress::Finish, sink)?;
        self.finished = true;
        Ok(self.deflate.total_out())
    }

    fn run<F>(
        &mut self,
        mut input: &[u8],
        flush: FlushCompress,
        sink: &mut F,
    ) -> Result<bool, CodecError>
    where
        F: FnMut(&[u8]) -> Result<(), CodecError>,
    {
        loop {
            let in_before = self.deflate.total_in();
            let out_before = self.deflate.total_out();
            let status = self
                .deflate
                .compress(input, &mut self.scratch, flush)
                .map_err(|e| CodecError::EncodeFailed {
                    reason: e.to_string(),
                })?;
            let consumed = super::progress(in_before, self.deflate.total_in());
            let produced = super::progress(out_before, self.deflate.total_out());
            input = input.get(consumed..).unwrap_or(&[]);
            if produced > 0 {
                let out = self
                    .scratch
                    .get(..produced)
                    .ok_or_else(|| CodecError::EncodeFailed {
                        reason: "deflate overran buffer".into(),
                    })?;
                sink(out)?;
            }
            match status {
                Status::StreamEnd => return Ok(true),
                Status::Ok | Status::BufError => {
                    let output_full = produced == self.scratch.len();
                    if input.is_empty() && !output_full && !matches!(flush, FlushCompress::Finish) {
                        return Ok(false);
                    }
                    if consumed == 0 && produced == 0 && !output_full {
                        if matches!(flush, FlushCompress::Finish) {
                            return Err(CodecError::EncodeFailed {
                                reason: "deflate made no progress".into(),
                            });
                        }
                        return Ok(false);
                    }
                }
            }
        }
    }
}
