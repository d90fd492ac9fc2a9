//! v1's gzip codec (`GzipCodec`, spec §11.1): level-6 gzip, readable by v1's `gunzip`,
//! with bounded decoding and v1's counters.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use flate2::Compress;
use parking_lot::Mutex;

use super::deflate::{compress_all, new_compress, GzipEncoder};
use super::inflate::GzipDecoder;
use super::CodecError;

/// Default cap on decoded output: 64 MiB. v1 had none (a gzip bomb could exhaust memory).
pub const DEFAULT_MAX_DECODED_SIZE: u64 = 64 * 1024 * 1024;

/// v1's compression level.
pub const DEFAULT_LEVEL: u32 = 6;

/// Codec settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GzipConfig {
    /// Compression level 0..=9 (v1: 6).
    pub level: u32,
    /// Largest decoded output a decode may produce, in bytes.
    pub max_decoded_size: u64,
    /// How many idle compressor/decompressor states are kept for reuse. Reuse avoids
    /// allocating zlib's ~300 KB deflate state on every call.
    pub pool_size: usize,
}

impl Default for GzipConfig {
    fn default() -> Self {
        GzipConfig {
            level: DEFAULT_LEVEL,
            max_decoded_size: DEFAULT_MAX_DECODED_SIZE,
            pool_size: 8,
        }
    }
}

/// A snapshot of v1's codec counters (`GzipCodec.stats`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodecStats {
    /// Successful encodes.
    pub encode_count: u64,
    /// Successful decodes.
    pub decode_count: u64,
    /// Uncompressed bytes given to successful encodes.
    pub total_input_bytes: u64,
    /// Compressed bytes produced by successful encodes.
    pub total_output_bytes: u64,
    /// `total_output_bytes / total_input_bytes`, or 0 when nothing was encoded.
    pub compression_ratio: f64,
}

#[derive(Debug, Default)]
struct Counters {
    encode_count: AtomicU64,
    decode_count: AtomicU64,
    total_input_bytes: AtomicU64,
    total_output_bytes: AtomicU64,
}

impl Counters {
    fn encoded(&self, input: u64, output: u64) {
        self.encode_count.fetch_add(1, Ordering::Relaxed);
        self.total_input_bytes.fetch_add(input, Ordering::Relaxed);
        self.total_output_bytes.fetch_add(output, Ordering::Relaxed);
    }

    fn decoded(&self) {
        self.decode_count.fetch_add(1, Ordering::Relaxed);
    }
}

/// A bounded stack of reusable states. Locked only to take or return one state, never
/// while compressing, so threads do not serialise on the codec.
struct Pool<T> {
    idle: Mutex<Vec<T>>,
    max_idle: usize,
}

impl<T> Pool<T> {
    fn new(max_idle: usize) -> Self {
        Pool {
            idle: Mutex::new(Vec::new()),
            max_idle,
        }
    }

    fn take(&self) -> Option<T> {
        self.idle.lock().pop()
    }

    fn give(&self, item: T) {
        let mut idle = self.idle.lock();
        if idle.len() < self.max_idle {
            idle.push(item);
        }
    }
}

/// v1's gzip codec: encode, bounded decode, streaming variants, and counters.
///
/// `Send + Sync`: share it behind an `Arc` across threads.
pub struct GzipCodec {
    config: GzipConfig,
    counters: Counters,
    compressors: Pool<Compress>,
    decoders: Pool<Box<GzipDecoder>>,
}

impl std::fmt::Debug for GzipCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GzipCodec")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Default for GzipCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl GzipCodec {
    /// A codec with v1's level 6 and the default decode cap.
    pub fn new() -> Self {
        Self::with_config(GzipConfig::default())
    }

    /// A codec with explicit settings.
    pub fn with_config(config: GzipConfig) -> Self {
        GzipCodec {
            config,
            counters: Counters::default(),
            compressors: Pool::new(config.pool_size),
            decoders: Pool::new(config.pool_size),
        }
    }

    /// The codec's settings.
    pub fn config(&self) -> GzipConfig {
        self.config
    }

    /// Compresses `input` into one gzip member (v1 `encode` = `gzipSync(level 6)`).
    pub fn encode(&self, input: &[u8]) -> Result<Vec<u8>, CodecError> {
        let mut c = match self.compressors.take() {
            Some(mut c) => {
                c.reset();
                c
            }
            None => new_compress(self.config.level),
        };
        let out = compress_all(&mut c, input);
        // A compressor that failed mid-stream is dropped rather than reused.
        if out.is_ok() {
            self.compressors.give(c);
        }
        let out = out?;
        self.counters.encoded(input.len() as u64, out.len() as u64);
        Ok(out)
    }

    /// Decompresses `input` (v1 `decode` = `gunzipSync`), producing at most the codec's
    /// `max_decoded_size` bytes.
    pub fn decode(&self, input: &[u8]) -> Result<Vec<u8>, CodecError> {
        self.decode_with_limit(input, self.config.max_decoded_size)
    }

    /// Like [`decode`](Self::decode) with an explicit cap (never above the codec's own).
    pub fn decode_with_limit(&self, input: &[u8], limit: u64) -> Result<Vec<u8>, CodecError> {
        let limit = limit.min(self.config.max_decoded_size);
        let mut d = match self.decoders.take() {
            Some(mut d) => {
                d.reset(limit);
                d
            }
            None => Box::new(GzipDecoder::new(limit)),
        };
        // First guess: gzip's ISIZE trailer, bounded by the cap so a forged trailer
        // cannot make us pre-allocate a lot.
        let hint = isize_hint(input).min(limit).min(1 << 20);
        let mut out = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
        let r = d
            .push(input, &mut |chunk: &[u8]| {
                out.extend_from_slice(chunk);
                Ok(())
            })
            .and_then(|()| d.finish());
        self.decoders.give(d);
        r?;
        self.counters.decoded();
        Ok(out)
    }

    /// Compresses everything `reader` yields into `writer`, in bounded memory. Returns
    /// `(uncompressed, compressed)` byte counts.
    pub fn encode_stream<R: Read, W: Write>(
        &self,
        mut reader: R,
        mut writer: W,
    ) -> Result<(u64, u64), CodecError> {
        let mut enc = GzipEncoder::new(self.config.level);
        let mut sink = |chunk: &[u8]| writer.write_all(chunk).map_err(io_err);
        for_each_chunk(&mut reader, |chunk| enc.push(chunk, &mut sink))?;
        let out = enc.finish(&mut sink)?;
        let input = enc.total_in();
        self.counters.encoded(input, out);
        Ok((input, out))
    }

    /// Decompresses everything `reader` yields into `writer`, in bounded memory and
    /// capped at the codec's `max_decoded_size`. Returns the decoded byte count.
    pub fn decode_stream<R: Read, W: Write>(
        &self,
        mut reader: R,
        mut writer: W,
    ) -> Result<u64, CodecError> {
        let mut dec = GzipDecoder::new(self.config.max_decoded_size);
        let mut sink = |chunk: &[u8]| writer.write_all(chunk).map_err(io_err);
        for_each_chunk(&mut reader, |chunk| dec.push(chunk, &mut sink))?;
        let total = dec.finish()?;
        self.counters.decoded();
        Ok(total)
    }

    /// A push-based streaming encoder at the codec's level. Its work is not counted in
    /// [`stats`](Self::stats) (it does not borrow the codec).
    pub fn encoder(&self) -> GzipEncoder {
        GzipEncoder::new(self.config.level)
    }

    /// A push-based streaming decoder capped at the codec's `max_decoded_size`.
    pub fn decoder(&self) -> GzipDecoder {
        GzipDecoder::new(self.config.max_decoded_size)
    }

    /// v1's counters.
    pub fn stats(&self) -> CodecStats {
        let c = &self.counters;
        let input = c.total_input_bytes.load(Ordering::Relaxed);
        let output = c.total_output_bytes.load(Ordering::Relaxed);
        CodecStats {
            encode_count: c.encode_count.load(Ordering::Relaxed),
            decode_count: c.decode_count.load(Ordering::Relaxed),
            total_input_bytes: input,
            total_output_bytes: output,
            compression_ratio: if input == 0 {
                0.0
            } else {
                output as f64 / input as f64
            },
        }
    }
}

/// The encode-only capability handed to the hot path (v1 `createHotPathCodec()`): it
/// can compress evidence but cannot decompress anything.
#[derive(Debug, Clone)]
pub struct HotPathGzip {
    codec: Arc<GzipCodec>,
}

impl HotPathGzip {
    /// Wraps a shared codec, exposing only its encoder.
    pub fn new(codec: Arc<GzipCodec>) -> Self {
        HotPathGzip { codec }
    }

    /// Compresses `input` (see [`GzipCodec::encode`]).
    pub fn encode(&self, input: &[u8]) -> Result<Vec<u8>, CodecError> {
        self.codec.encode(input)
    }

    /// The compression level in use.
    pub fn level(&self) -> u32 {
        self.codec.config().level
    }

    /// The shared codec's counters.
    pub fn stats(&self) -> CodecStats {
        self.codec.stats()
    }
}

/// Level of [`hot_path_codec`]: 1 (zlib-rs `deflate_quick`).
///
/// The hot path compresses evidence inside `intercept`, where latency matters more than
/// size. On 1 KB payloads level 1 encodes+decodes 2–2.5× faster than level 6 and
/// gives larger output (measured in `docs/PERFORMANCE.md`: JSON-like text
/// 565 vs 410 bytes, an HTTP request 930 vs 733 bytes). The output is ordinary gzip
/// (RFC 1952); the evidence hash is of the uncompressed bytes either way.
/// [`GzipCodec::new`] / [`GzipConfig::default`] stay at v1's level 6
/// ([`DEFAULT_LEVEL`]) for everything else.
pub const HOT_PATH_LEVEL: u32 = 1;

/// v1 `createHotPathCodec()`: an encode-only handle over a fresh codec at
/// [`HOT_PATH_LEVEL`] (v1 used level 6; see there for why this differs).
pub fn hot_path_codec() -> HotPathGzip {
    HotPathGzip::new(Arc::new(GzipCodec::with_config(GzipConfig {
        level: HOT_PATH_LEVEL,
        ..GzipConfig::default()
    })))
}

/// v1 `createColdPathCodec()`: a full codec.
pub fn cold_path_codec() -> GzipCodec {
    GzipCodec::new()
}

/// The ISIZE field of the last gzip trailer, used only as an allocation hint.
fn isize_hint(input: &[u8]) -> u64 {
    match input.len().checked_sub(4).and_then(|s| input.get(s..)) {
        Some(&[a, b, c, d]) => u64::from(u32::from_le_bytes([a, b, c, d])),
        _ => 0,
    }
}

/// Reads `reader` to its end in 64 KiB pieces, handing each to `f` (retrying reads
/// interrupted by a signal).
fn for_each_chunk<R: Read>(
    reader: &mut R,
    mut f: impl FnMut(&[u8]) -> Result<(), CodecError>,
) -> Result<(), CodecError> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => f(buf.get(..n).unwrap_or(&[]))?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(e)),
        }
    }
}

fn io_err(e: std::io::Error) -> CodecError {
    CodecError::Io {
        reason: e.to_string(),
    }
}

impl crate::evidence::HotPathCodec for GzipCodec {
    fn encode(&self, bytes: &[u8]) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
        GzipCodec::encode(self, bytes).map_err(|e| Box::new(e) as _)
    }
}

impl crate::evidence::HotPathCodec for HotPathGzip {
    fn encode(&self, bytes: &[u8]) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
        HotPathGzip::encode(self, bytes).map_err(|e| Box::new(e) as _)
    }
}
