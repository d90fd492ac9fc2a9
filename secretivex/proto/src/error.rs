//! Typed decoding errors.
//!
//! Error values never carry secret material: at most a key type name or a
//! constraint extension name (both public, and truncated so that a hostile
//! peer cannot make log lines arbitrarily long).

use thiserror::Error;

/// Longest name (key type, extension) kept inside an error, in characters.
const MAX_NAME_IN_ERROR: usize = 64;

/// Why a frame header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FrameError {
    /// A zero-length frame has no message type byte.
    #[error("empty frame")]
    Empty,
    /// The declared body length exceeds [`crate::MAX_FRAME_LEN`].
    #[error("frame of {0} bytes exceeds the 256 KiB limit")]
    TooLong(u32),
}

/// Why a message body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtoError {
    /// The body has no message type byte.
    #[error("empty message")]
    Empty,
    /// A fixed-size field (byte, u32) runs past the end of its buffer.
    #[error("truncated message: {what} needs {needed} bytes, {remaining} remain")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the buffer.
        remaining: usize,
    },
    /// A length prefix declares more bytes than the buffer holds.
    #[error("length {declared} of {what} exceeds the {remaining} bytes that remain")]
    LengthExceedsInput {
        /// The field being read.
        what: &'static str,
        /// The declared length.
        declared: u32,
        /// Bytes left in the buffer.
        remaining: usize,
    },
    /// Bytes are left over after a complete message or field.
    #[error("{count} unexpected trailing bytes after {what}")]
    TrailingBytes {
        /// What was complete when the extra bytes were found.
        what: &'static str,
        /// How many bytes were left over.
        count: usize,
    },
    /// A text field holds a NUL byte (OpenSSH reads these as C strings).
    #[error("{0} contains a NUL byte")]
    NulInString(&'static str),
    /// A text field is not UTF-8.
    #[error("{0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    /// An `mpint` has its sign bit set.
    #[error("{0} is a negative mpint")]
    NegativeMpint(&'static str),
    /// An `mpint` is longer than OpenSSH accepts (16384 bits).
    #[error("{0} is too large an mpint")]
    MpintTooLarge(&'static str),
    /// A private key of a type this agent does not load (sk-*, DSA, ML-DSA, unknown).
    #[error("unsupported key type {0:?}")]
    UnsupportedKeyType(String),
    /// The certificate blob's own key type differs from the declared one.
    #[error("certificate blob is of type {actual:?}, message declares {declared:?}")]
    CertTypeMismatch {
        /// The type name that precedes the certificate.
        declared: String,
        /// The type name inside the certificate blob.
        actual: String,
    },
    /// The certificate blob does not start with a readable key type name.
    #[error("malformed certificate blob")]
    MalformedCertificate,
    /// An ECDSA curve identifier does not match the key type.
    #[error("curve {curve:?} does not match key type {key_type:?}")]
    CurveMismatch {
        /// The key type name.
        key_type: String,
        /// The curve identifier found.
        curve: String,
    },
    /// A fixed-size key field has the wrong length.
    #[error("{what} must be {expected} bytes, got {actual}")]
    BadFieldLength {
        /// The field.
        what: &'static str,
        /// Required length.
        expected: usize,
        /// Length found.
        actual: usize,
    },
    /// An ECDSA public point is not in SEC1 uncompressed form.
    #[error("ECDSA public point is not an uncompressed SEC1 point")]
    BadEcPoint,
    /// An ECDSA private scalar is longer than the curve order.
    #[error("ECDSA private scalar is longer than the curve order")]
    BadEcScalar,
    /// A constraint this agent does not implement; the whole add must be refused
    /// (RFC 9987 §5.2.7).
    #[error("unknown constraint {id}{}", name.as_ref().map(|n| format!(" ({n:?})")).unwrap_or_default())]
    UnknownConstraint {
        /// The constraint type byte.
        id: u8,
        /// For extension constraints (255), the extension name.
        name: Option<String>,
    },
    /// The same constraint appears twice in one request.
    #[error("duplicate {0} constraint")]
    DuplicateConstraint(&'static str),
    /// More than [`crate::constraint::MAX_DEST_CONSTRAINTS`] destination constraints.
    #[error("too many destination constraints")]
    TooManyDestinationConstraints,
    /// A destination-constraint user name is longer than
    /// [`crate::constraint::MAX_DEST_USER_LEN`] bytes.
    #[error("destination constraint user name too long")]
    UsernameTooLong,
    /// A reserved (extension) field that must be empty is not.
    #[error("reserved field in {0} is not empty")]
    ReservedNotEmpty(&'static str),
    /// A destination constraint breaks OpenSSH's consistency rules.
    #[error("invalid destination constraint: {0}")]
    InvalidDestinationConstraint(&'static str),
    /// A reply message number that is not an agent reply.
    #[error("unknown reply message {0}")]
    UnknownResponse(u8),
    /// A request message number given to a decoder that needs a specific one.
    #[error("unexpected message number {0}")]
    UnexpectedMessage(u8),
    /// Data to be signed is not a well-formed publickey `USERAUTH_REQUEST`.
    #[error("not a publickey userauth request: {0}")]
    InvalidUserauth(&'static str),
}

impl ProtoError {
    /// Builds [`ProtoError::UnsupportedKeyType`] from wire bytes, bounded in length.
    pub(crate) fn unsupported_key_type(name: &[u8]) -> Self {
        ProtoError::UnsupportedKeyType(bounded_name(name))
    }

    /// Builds [`ProtoError::UnknownConstraint`] for an extension constraint.
    pub(crate) fn unknown_constraint_extension(name: &[u8]) -> Self {
        ProtoError::UnknownConstraint {
            id: crate::constraint::CONSTRAIN_EXTENSION,
            name: Some(bounded_name(name)),
        }
    }
}

/// A printable, length-bounded rendering of a public name taken off the wire.
pub(crate) fn bounded_name(name: &[u8]) -> String {
    String::from_utf8_lossy(name)
        .chars()
        .take(MAX_NAME_IN_ERROR)
        .collect()
}
