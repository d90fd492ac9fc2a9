//! The agent ↔ helper protocol: length-prefixed frames over the helper's stdin/stdout.
//!
//! ```text
//! frame    = uint32 length | uint32 request-id | byte type | payload   (length counts id..end)
//! string   = uint32 length | bytes
//!
//! requests (agent → helper)
//!   1 LOGIN   string pin                      → KEYS | ERROR
//!   2 LIST                                    → KEYS | ERROR
//!   3 SIGN    string key-blob, string data, uint32 flags → SIGNATURE | ERROR
//! replies (helper → agent), carrying the id of the request they answer
//!   100 KEYS       uint32 n, n × (string key-blob, string label)
//!   101 SIGNATURE  string ssh-signature
//!   102 ERROR      byte code, string message
//! ```
//!
//! `LOGIN` (re)initializes the module and logs in to every token present; the helper keeps
//! the PIN only after it worked, so a wrong PIN is tried exactly once. `LIST` re-reads the
//! tokens (presence polling). Several requests may be in flight; replies come in any order.
//! Decoding is strict: a frame over [`MAX_FRAME`], an unknown type, a short field or
//! trailing bytes is an error, never a panic. Secrets (the PIN) are held in `Zeroizing`.

use zeroize::Zeroizing;

/// Largest frame (after the length word) either side accepts.
pub const MAX_FRAME: usize = 1024 * 1024;

/// Most keys one `KEYS` reply may list.
pub const MAX_KEYS: usize = 4096;

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The frame is longer than [`MAX_FRAME`] or shorter than its header.
    #[error("frame length {0} out of range")]
    Length(usize),
    /// A field runs past the end of the frame.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// Bytes left after the last field.
    #[error("{0} trailing bytes")]
    Trailing(usize),
    /// The type byte names no message.
    #[error("unknown message type {0}")]
    UnknownType(u8),
    /// A count above its limit.
    #[error("too many keys: {0}")]
    TooMany(u32),
    /// A label that is not UTF-8.
    #[error("label is not UTF-8")]
    Utf8,
}

/// Error classes a helper reports; the agent maps them to metrics and log reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The PIN was refused (`CKR_PIN_INCORRECT`); the helper does not try it again.
    PinIncorrect,
    /// The token's PIN is locked, or the PIN's last try is near: no login was tried.
    PinLocked,
    /// No token is present (removed, or never inserted).
    TokenAbsent,
    /// No key with this blob on any present token.
    KeyNotFound,
    /// The module or token failed.
    Device,
    /// A key type, curve or signature flag the helper does not support.
    Unsupported,
    /// The request could not be decoded.
    BadRequest,
    /// No PIN has been accepted yet.
    NotLoggedIn,
    /// `C_Login` failed for another reason (`CKR_PIN_INVALID`, `CKR_PIN_LEN_RANGE`,
    /// `CKR_PIN_EXPIRED`, `CKR_GENERAL_ERROR`, ...). The try may have counted against the
    /// token's PIN counter, so the agent treats it like a refused PIN: never retried.
    LoginFailed,
    /// A code from a newer helper.
    Other(u8),
}

impl ErrorCode {
    fn to_byte(self) -> u8 {
        match self {
            ErrorCode::PinIncorrect => 1,
            ErrorCode::PinLocked => 2,
            ErrorCode::TokenAbsent => 3,
            ErrorCode::KeyNotFound => 4,
            ErrorCode::Device => 5,
            ErrorCode::Unsupported => 6,
            ErrorCode::BadRequest => 7,
            ErrorCode::NotLoggedIn => 8,
            ErrorCode::LoginFailed => 9,
            ErrorCode::Other(b) => b,
        }
    }

    fn from_byte(b: u8) -> ErrorCode {
        match b {
            1 => ErrorCode::PinIncorrect,
            2 => ErrorCode::PinLocked,
            3 => ErrorCode::TokenAbsent,
            4 => ErrorCode::KeyNotFound,
            5 => ErrorCode::Device,
            6 => ErrorCode::Unsupported,
            7 => ErrorCode::BadRequest,
            8 => ErrorCode::NotLoggedIn,
            9 => ErrorCode::LoginFailed,
            other => ErrorCode::Other(other),
        }
    }

    /// Whether this login error means the PIN must never be tried again (fail closed):
    /// everything but an absent token. An unknown code from a newer helper counts too.
    pub fn is_fatal_login(self) -> bool {
        !matches!(self, ErrorCode::TokenAbsent)
    }

    /// A short stable name, for metrics labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::PinIncorrect => "pin_incorrect",
            ErrorCode::PinLocked => "pin_locked",
            ErrorCode::TokenAbsent => "token_absent",
            ErrorCode::KeyNotFound => "key_not_found",
            ErrorCode::Device => "device",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::NotLoggedIn => "not_logged_in",
            ErrorCode::LoginFailed => "login_failed",
            ErrorCode::Other(_) => "other",
        }
    }
}

/// A request to the helper.
#[derive(Clone, PartialEq, Eq)]
pub enum HelperRequest {
    /// Initialize the module and log in with this PIN.
    Login {
        /// The token PIN.
        pin: Zeroizing<Vec<u8>>,
        /// The tokens ([`token_id`]) the PIN is bound to; empty on the first login, which
        /// binds it to every token present then.
        tokens: Vec<String>,
    },
    /// List the keys of the tokens present now.
    List,
    /// Sign `data` with the key whose public blob is `key_blob`.
    Sign {
        /// Plain public key blob (not a certificate).
        key_blob: Vec<u8>,
        /// Bytes to sign.
        data: Vec<u8>,
        /// SSH agent sign flags (`SSH_AGENT_RSA_SHA2_*`).
        flags: u32,
    },
}

impl std::fmt::Debug for HelperRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Never print the PIN, only that one was given.
            HelperRequest::Login { pin, tokens } => write!(
                f,
                "Login {{ pin: <{} bytes>, tokens: {tokens:?} }}",
                pin.len()
            ),
            HelperRequest::List => write!(f, "List"),
            HelperRequest::Sign {
                key_blob,
                data,
                flags,
            } => write!(
                f,
                "Sign {{ key_blob: <{} bytes>, data: <{} bytes>, flags: {flags} }}",
                key_blob.len(),
                data.len()
            ),
        }
    }
}

/// One key a token offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenKey {
    /// SSH public key blob.
    pub blob: Vec<u8>,
    /// Token label and key label, for the identity comment.
    pub label: String,
    /// The token holding the key ([`token_id`]): a module's PIN is bound to the tokens
    /// it first logged in to.
    pub token: String,
}

/// A token's identity for PIN binding: its serial number and label.
pub fn token_id(serial: &str, label: &str) -> String {
    format!("{}/{}", serial.trim(), label.trim())
}

/// A reply from the helper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelperReply {
    /// The keys of the tokens present.
    Keys(Vec<TokenKey>),
    /// An SSH signature blob.
    Signature(Vec<u8>),
    /// A failure.
    Error {
        /// Its class.
        code: ErrorCode,
        /// Human-readable detail (never secret).
        message: String,
    },
}

const T_LOGIN: u8 = 1;
const T_LIST: u8 = 2;
const T_SIGN: u8 = 3;
const T_KEYS: u8 = 100;
const T_SIGNATURE: u8 = 101;
const T_ERROR: u8 = 102;

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(WireError::Truncated(what));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.take(1, what)?[0])
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self, what: &'static str) -> Result<&'a [u8], WireError> {
        let n = self.u32(what)? as usize;
        self.take(n, what)
    }
    fn finish(&self) -> Result<(), WireError> {
        match self.0.len() {
            0 => Ok(()),
            n => Err(WireError::Trailing(n)),
        }
    }
}

fn put_string(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

/// Appends a whole frame (length word included) with `id`, `kind` and `payload` to `out`.
fn frame(out: &mut Vec<u8>, id: u32, kind: u8, payload: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&id.to_be_bytes());
    out.push(kind);
    payload(out);
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// Checks a frame's length word; returns the body length to read next.
pub fn body_len(header: [u8; 4]) -> Result<usize, WireError> {
    let n = u32::from_be_bytes(header) as usize;
    if !(5..=MAX_FRAME).contains(&n) {
        return Err(WireError::Length(n));
    }
    Ok(n)
}

/// Splits a frame body into its request id, type byte and payload.
fn split(body: &[u8]) -> Result<(u32, u8, Reader<'_>), WireError> {
    let mut r = Reader(body);
    let id = r.u32("request id")?;
    let kind = r.u8("message type")?;
    Ok((id, kind, r))
}

impl HelperRequest {
    /// Appends this request as a frame (length word included). The frame holds the PIN of
    /// a `Login`: pass a buffer that is wiped afterwards.
    pub fn encode(&self, id: u32, out: &mut Vec<u8>) {
        match self {
            HelperRequest::Login { pin, tokens } => frame(out, id, T_LOGIN, |o| {
                put_string(o, pin);
                o.extend_from_slice(&(tokens.len() as u32).to_be_bytes());
                for t in tokens {
                    put_string(o, t.as_bytes());
                }
            }),
            HelperRequest::List => frame(out, id, T_LIST, |_| {}),
            HelperRequest::Sign {
                key_blob,
                data,
                flags,
            } => frame(out, id, T_SIGN, |o| {
                put_string(o, key_blob);
                put_string(o, data);
                o.extend_from_slice(&flags.to_be_bytes());
            }),
        }
    }

    /// Decodes a frame body (after the length word).
    pub fn decode(body: &[u8]) -> Result<(u32, HelperRequest), WireError> {
        let (id, kind, mut r) = split(body)?;
        let req = match kind {
            T_LOGIN => {
                let pin = Zeroizing::new(r.string("pin")?.to_vec());
                let n = r.u32("token count")?;
                if n as usize > MAX_KEYS {
                    return Err(WireError::TooMany(n));
                }
                let mut tokens = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let t = std::str::from_utf8(r.string("token")?).map_err(|_| WireError::Utf8)?;
                    tokens.push(t.to_owned());
                }
                HelperRequest::Login { pin, tokens }
            }
            T_LIST => HelperRequest::List,
            T_SIGN => HelperRequest::Sign {
                key_blob: r.string("key blob")?.to_vec(),
                data: r.string("data")?.to_vec(),
                flags: r.u32("flags")?,
            },
            other => return Err(WireError::UnknownType(other)),
        };
        r.finish()?;
        Ok((id, req))
    }
}

impl HelperReply {
    /// Appends this reply as a frame (length word included).
    pub fn encode(&self, id: u32, out: &mut Vec<u8>) {
        match self {
            HelperReply::Keys(keys) => frame(out, id, T_KEYS, |o| {
                o.extend_from_slice(&(keys.len() as u32).to_be_bytes());
                for k in keys {
                    put_string(o, &k.blob);
                    put_string(o, k.label.as_bytes());
                    put_string(o, k.token.as_bytes());
                }
            }),
            HelperReply::Signature(sig) => frame(out, id, T_SIGNATURE, |o| put_string(o, sig)),
            HelperReply::Error { code, message } => frame(out, id, T_ERROR, |o| {
                o.push(code.to_byte());
                put_string(o, message.as_bytes());
            }),
        }
    }

    /// Decodes a frame body (after the length word).
    pub fn decode(body: &[u8]) -> Result<(u32, HelperReply), WireError> {
        let (id, kind, mut r) = split(body)?;
        let reply = match kind {
            T_KEYS => {
                let n = r.u32("key count")?;
                if n as usize > MAX_KEYS {
                    return Err(WireError::TooMany(n));
                }
                let mut keys = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let blob = r.string("key blob")?.to_vec();
                    let label = std::str::from_utf8(r.string("label")?)
                        .map_err(|_| WireError::Utf8)?
                        .to_owned();
                    let token = std::str::from_utf8(r.string("token")?)
                        .map_err(|_| WireError::Utf8)?
                        .to_owned();
                    keys.push(TokenKey { blob, label, token });
                }
                HelperReply::Keys(keys)
            }
            T_SIGNATURE => HelperReply::Signature(r.string("signature")?.to_vec()),
            T_ERROR => {
                let code = ErrorCode::from_byte(r.u8("error code")?);
                let message = String::from_utf8_lossy(r.string("message")?).into_owned();
                HelperReply::Error { code, message }
            }
            other => return Err(WireError::UnknownType(other)),
        };
        r.finish()?;
        Ok((id, reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn body(frame: &[u8]) -> &[u8] {
        let n = body_len(frame[..4].try_into().unwrap()).unwrap();
        assert_eq!(n, frame.len() - 4);
        &frame[4..]
    }

    fn request() -> impl Strategy<Value = HelperRequest> {
        prop_oneof![
            (
                proptest::collection::vec(any::<u8>(), 0..64),
                proptest::collection::vec(".{0,20}", 0..3)
            )
                .prop_map(|(p, tokens)| HelperRequest::Login {
                    pin: Zeroizing::new(p),
                    tokens
                }),
            Just(HelperRequest::List),
            (
                proptest::collection::vec(any::<u8>(), 0..300),
                proptest::collection::vec(any::<u8>(), 0..300),
                any::<u32>()
            )
                .prop_map(|(key_blob, data, flags)| HelperRequest::Sign {
                    key_blob,
                    data,
                    flags
                }),
        ]
    }

    fn reply() -> impl Strategy<Value = HelperReply> {
        prop_oneof![
            proptest::collection::vec(
                (
                    proptest::collection::vec(any::<u8>(), 0..100),
                    ".{0,20}",
                    ".{0,20}"
                )
                    .prop_map(|(blob, label, token)| TokenKey {
                        blob,
                        label,
                        token
                    }),
                0..8
            )
            .prop_map(HelperReply::Keys),
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(HelperReply::Signature),
            (1u8..=8, ".{0,40}").prop_map(|(c, message)| HelperReply::Error {
                code: ErrorCode::from_byte(c),
                message
            }),
        ]
    }

    proptest! {
        #[test]
        fn requests_round_trip(id in any::<u32>(), req in request()) {
            let mut out = Vec::new();
            req.encode(id, &mut out);
            prop_assert_eq!(HelperRequest::decode(body(&out)).unwrap(), (id, req));
        }

        #[test]
        fn replies_round_trip(id in any::<u32>(), rep in reply()) {
            let mut out = Vec::new();
            rep.encode(id, &mut out);
            prop_assert_eq!(HelperReply::decode(body(&out)).unwrap(), (id, rep));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = HelperRequest::decode(&bytes);
            let _ = HelperReply::decode(&bytes);
        }

        #[test]
        fn truncated_frames_are_errors(req in request(), cut in 1usize..64) {
            let mut out = Vec::new();
            req.encode(7, &mut out);
            let b = body(&out);
            let cut = cut.min(b.len());
            prop_assert!(HelperRequest::decode(&b[..b.len() - cut]).is_err());
        }
    }

    #[test]
    fn rejects_bad_lengths_types_and_trailing_bytes() {
        assert!(body_len([0, 0, 0, 4]).is_err());
        assert!(body_len(((MAX_FRAME + 1) as u32).to_be_bytes()).is_err());
        assert_eq!(
            HelperRequest::decode(&[0, 0, 0, 1, 99]),
            Err(WireError::UnknownType(99))
        );
        assert_eq!(
            HelperRequest::decode(&[0, 0, 0, 1, T_LIST, 0]),
            Err(WireError::Trailing(1))
        );
        let mut too_many = vec![0, 0, 0, 1, T_KEYS];
        too_many.extend_from_slice(&((MAX_KEYS + 1) as u32).to_be_bytes());
        assert!(matches!(
            HelperReply::decode(&too_many),
            Err(WireError::TooMany(_))
        ));
    }

    #[test]
    fn login_debug_hides_the_pin() {
        let req = HelperRequest::Login {
            pin: Zeroizing::new(b"123456".to_vec()),
            tokens: vec!["serial/label".into()],
        };
        assert!(!format!("{req:?}").contains("123456"));
    }
}
