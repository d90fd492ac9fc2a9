//! Hound IPC framing (spec §16.1), bit-exact with v1: a frame is a big-endian `u32`
//! length followed by that many payload bytes, at most 1 MiB; hound → core payloads are
//! status and metrics messages.
//!
//! Everything here treats its input as untrusted (a hound is an untrusted child): errors
//! are values, never panics, and a bad length prefix is an error for that stream only
//! (v1 let it escape as an uncaught exception that killed the host).

use std::fmt;

/// Largest payload a frame may carry (v1 `MAX_MESSAGE_SIZE`).
pub const MAX_MESSAGE_SIZE: usize = 1_048_576;

/// Length of the frame's length prefix.
pub const PREFIX_LEN: usize = 4;

/// A framing or message error. `Display` gives v1's exact message text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpcError {
    /// Encoding a payload above the limit.
    #[error("Message too large: {size} > {max}")]
    MessageTooLarge {
        /// The payload length.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A length prefix above the limit.
    #[error("Invalid message length: {length}")]
    InvalidLength {
        /// The announced length.
        length: u32,
    },
    /// A message payload with no bytes.
    #[error("Empty message payload")]
    EmptyPayload,
    /// A status message shorter than 2 bytes.
    #[error("Invalid status message: too short")]
    StatusTooShort,
    /// A status byte other than 1, 2, 3.
    #[error("Unknown status state: {0}")]
    UnknownState(u8),
    /// A metrics message shorter than 17 bytes.
    #[error("Invalid metrics message: too short")]
    MetricsTooShort,
    /// A type byte other than 1 (status) or 2 (metrics).
    #[error("Unknown message type: {0}")]
    UnknownType(u8),
}

/// Frames `payload` (v1 `encodeMessage`).
pub fn encode_frame(payload: &[u8]) -> Result<Vec<u8>, IpcError> {
    let len = checked_len(payload.len())?;
    let mut out = Vec::with_capacity(PREFIX_LEN + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

fn checked_len(size: usize) -> Result<u32, IpcError> {
    if size > MAX_MESSAGE_SIZE {
        return Err(IpcError::MessageTooLarge {
            size,
            max: MAX_MESSAGE_SIZE,
        });
    }
    u32::try_from(size).map_err(|_| IpcError::MessageTooLarge {
        size,
        max: MAX_MESSAGE_SIZE,
    })
}

/// Parses one frame from the start of `buf` (v1 `tryParseMessage`): `Ok(None)` if the
/// frame is incomplete, `Ok(Some((payload, bytes_consumed)))` if complete, an error if
/// the length prefix exceeds the limit.
pub fn try_parse_frame(buf: &[u8]) -> Result<Option<(&[u8], usize)>, IpcError> {
    let Some(&[a, b, c, d]) = buf.get(..PREFIX_LEN) else {
        return Ok(None);
    };
    let length = u32::from_be_bytes([a, b, c, d]);
    let len = usize::try_from(length).unwrap_or(usize::MAX);
    if len > MAX_MESSAGE_SIZE {
        return Err(IpcError::InvalidLength { length });
    }
    let end = PREFIX_LEN.saturating_add(len);
    Ok(buf.get(PREFIX_LEN..end).map(|payload| (payload, end)))
}

/// Streaming frame parser (v1 `createMessageParser`), O(n) in the bytes fed (v1 copied
/// the whole buffer on every chunk).
///
/// Memory is bounded: at most one incomplete frame (≤ 4 + 1 MiB) is kept between calls.
/// After a bad length prefix the parser stays failed until [`reset`](Self::reset): the
/// stream has lost framing and nothing after it can be trusted.
#[derive(Debug, Default)]
pub struct FrameParser {
    buf: Vec<u8>,
    failed: Option<IpcError>,
}

impl FrameParser {
    /// An empty parser.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `chunk` and returns every payload completed by it, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Vec<u8>>, IpcError> {
        let mut out = Vec::new();
        self.feed_with(chunk, |payload| out.push(payload.to_vec()))?;
        Ok(out)
    }

    /// Like [`feed`](Self::feed) but hands each payload to `on_payload` without copying
    /// it into a new vector.
    pub fn feed_with<F: FnMut(&[u8])>(
        &mut self,
        chunk: &[u8],
        mut on_payload: F,
    ) -> Result<(), IpcError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let mut rest = chunk;
        // Complete a frame carried over from earlier chunks first.
        while !self.buf.is_empty() {
            let need = match self.missing_bytes() {
                Ok(n) => n,
                Err(e) => return Err(self.fail(e)),
            };
            if need == 0 {
                break;
            }
            let take = need.min(rest.len());
            let (head, tail) = rest.split_at(take);
            self.buf.extend_from_slice(head);
            rest = tail;
            if take < need {
                return Ok(());
            }
            // The prefix was validated by `missing_bytes`, so this frame is complete.
            let parsed = try_parse_frame(&self.buf);
            match parsed {
                Ok(Some((payload, _))) => {
                    on_payload(payload);
                    self.buf.clear();
                }
                Ok(None) => {}
                Err(e) => return Err(self.fail(e)),
            }
        }
        // Then parse frames straight out of the chunk, keeping only an incomplete tail.
        loop {
            match try_parse_frame(rest) {
                Ok(Some((payload, used))) => {
                    on_payload(payload);
                    rest = rest.get(used..).unwrap_or(&[]);
                }
                Ok(None) => {
                    self.buf.extend_from_slice(rest);
                    return Ok(());
                }
                Err(e) => return Err(self.fail(e)),
            }
        }
    }

    /// How many more bytes the buffered partial frame needs (0 if none is buffered).
    fn missing_bytes(&self) -> Result<usize, IpcError> {
        let have = self.buf.len();
        match self.buf.get(..PREFIX_LEN) {
            None => Ok(PREFIX_LEN - have),
            Some(&[a, b, c, d]) => {
                let length = u32::from_be_bytes([a, b, c, d]);
                let len = usize::try_from(length).unwrap_or(usize::MAX);
                if len > MAX_MESSAGE_SIZE {
                    return Err(IpcError::InvalidLength { length });
                }
                Ok((PREFIX_LEN + len).saturating_sub(have))
            }
            Some(_) => Ok(0),
        }
    }

    fn fail(&mut self, e: IpcError) -> IpcError {
        self.failed = Some(e.clone());
        e
    }

    /// Bytes held for an incomplete frame (v1 `bufferedBytes`).
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Whether a bad length prefix has put the parser in the failed state.
    pub fn is_failed(&self) -> bool {
        self.failed.is_some()
    }

    /// Drops buffered bytes and clears the failed state.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.buf.shrink_to(64 * 1024);
        self.failed = None;
    }
}

/// A hound's processing state in a status message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HoundState {
    /// `0x01`
    Processing,
    /// `0x02`
    Complete,
    /// `0x03`
    Error,
}

impl HoundState {
    /// The wire byte.
    pub fn byte(self) -> u8 {
        match self {
            HoundState::Processing => 1,
            HoundState::Complete => 2,
            HoundState::Error => 3,
        }
    }

    /// v1's name (`"processing"`, `"complete"`, `"error"`).
    pub fn as_str(self) -> &'static str {
        match self {
            HoundState::Processing => "processing",
            HoundState::Complete => "complete",
            HoundState::Error => "error",
        }
    }
}

impl fmt::Display for HoundState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A hound → core message.
#[derive(Debug, Clone, PartialEq)]
pub enum HoundMessage {
    /// `01, state, [utf8 error…]`
    Status {
        /// The hound's state.
        state: HoundState,
        /// Optional error text (an empty string is not sent).
        error: Option<String>,
    },
    /// `02, f64 BE processingTime, f64 BE memoryUsed`
    Metrics {
        /// Processing time in ms.
        processing_time: f64,
        /// Memory used in bytes.
        memory_used: f64,
    },
}

const TYPE_STATUS: u8 = 0x01;
const TYPE_METRICS: u8 = 0x02;
const METRICS_LEN: usize = 17;

/// The unframed payload of a message.
pub fn encode_hound_payload(msg: &HoundMessage) -> Vec<u8> {
    match msg {
        HoundMessage::Status { state, error } => {
            let text = error.as_deref().unwrap_or("");
            let mut out = Vec::with_capacity(2 + text.len());
            out.push(TYPE_STATUS);
            out.push(state.byte());
            out.extend_from_slice(text.as_bytes());
            out
        }
        HoundMessage::Metrics {
            processing_time,
            memory_used,
        } => {
            let mut out = Vec::with_capacity(METRICS_LEN);
            out.push(TYPE_METRICS);
            out.extend_from_slice(&processing_time.to_be_bytes());
            out.extend_from_slice(&memory_used.to_be_bytes());
            out
        }
    }
}

/// Encodes and frames a message (v1 `encodeHoundMessage`).
pub fn encode_hound_message(msg: &HoundMessage) -> Result<Vec<u8>, IpcError> {
    encode_frame(&encode_hound_payload(msg))
}

/// Decodes a message payload (v1 `decodeHoundMessage`), with v1's error texts.
///
/// Like v1, bytes after the 17 metrics bytes are ignored, and error text is decoded as
/// UTF-8 with invalid sequences replaced (v1's `TextDecoder` default).
pub fn decode_hound_message(payload: &[u8]) -> Result<HoundMessage, IpcError> {
    let Some((&kind, rest)) = payload.split_first() else {
        return Err(IpcError::EmptyPayload);
    };
    match kind {
        TYPE_STATUS => {
            let Some((&state, text)) = rest.split_first() else {
                return Err(IpcError::StatusTooShort);
            };
            let state = match state {
                1 => HoundState::Processing,
                2 => HoundState::Complete,
                3 => HoundState::Error,
                other => return Err(IpcError::UnknownState(other)),
            };
            let error = if text.is_empty() {
                None
            } else {
                Some(String::from_utf8_lossy(text).into_owned())
            };
            Ok(HoundMessage::Status { state, error })
        }
        TYPE_METRICS => {
            let f = |from: usize| -> Option<f64> {
                let bytes: [u8; 8] = payload.get(from..from + 8)?.try_into().ok()?;
                Some(f64::from_be_bytes(bytes))
            };
            match (f(1), f(9)) {
                (Some(processing_time), Some(memory_used)) => Ok(HoundMessage::Metrics {
                    processing_time,
                    memory_used,
                }),
                _ => Err(IpcError::MetricsTooShort),
            }
        }
        other => Err(IpcError::UnknownType(other)),
    }
}
