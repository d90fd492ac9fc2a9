//! [`KeyFileError`]: why an OpenSSH private key file was refused.

use secretivex_proto::ProtoError;
use thiserror::Error;

/// A structural problem in an OpenSSH private key file (`openssh-key-v1`).
///
/// Carried by [`KeyError::Parse`](crate::KeyError::Parse). A wrong or missing passphrase is
/// not a parse error: it is [`KeyError::WrongPassphrase`](crate::KeyError::WrongPassphrase)
/// or [`KeyError::PassphraseRequired`](crate::KeyError::PassphraseRequired). No variant
/// carries key bytes or the passphrase; the only text taken from the file is a cipher or
/// KDF name, shortened to [`MAX_NAME_IN_ERROR`] characters.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The text is not `-----BEGIN OPENSSH PRIVATE KEY-----`, base64, then the matching END line.
    #[error("not an OpenSSH private key file (missing or misplaced BEGIN/END lines)")]
    Armor,

    /// The text between the BEGIN and END lines is not valid base64.
    #[error("the key file's body is not valid base64")]
    Base64,

    /// The decoded body does not start with `openssh-key-v1\0`.
    #[error("the key file does not start with the openssh-key-v1 magic")]
    Magic,

    /// A field runs past the end of the data that holds it.
    #[error("truncated key file: {0}")]
    Truncated(&'static str),

    /// Bytes follow the last field of the file, or of the KDF options.
    #[error("unexpected trailing bytes after {0}")]
    TrailingBytes(&'static str),

    /// The file is encrypted with a cipher this crate does not implement.
    #[error("unsupported key file cipher `{0}`")]
    UnsupportedCipher(String),

    /// The file names a key derivation function other than `none` and `bcrypt`.
    #[error("unsupported key file KDF `{0}`")]
    UnsupportedKdf(String),

    /// An encrypted file without a KDF, or an unencrypted one with a KDF or KDF options.
    #[error("cipher and KDF do not fit together")]
    CipherKdfMismatch,

    /// The bcrypt KDF options are malformed (empty salt or zero rounds).
    #[error("invalid bcrypt KDF options: {0}")]
    KdfOptions(&'static str),

    /// OpenSSH key files hold exactly one key.
    #[error("the key file holds {0} keys; exactly one is supported")]
    KeyCount(u32),

    /// The private section is empty or not a whole number of cipher blocks.
    #[error("the private section is not a whole number of {block}-byte blocks")]
    SectionLength {
        /// The cipher's block size (8 for unencrypted files).
        block: usize,
    },

    /// The two check integers of an unencrypted file differ: the file is damaged.
    #[error("check integers differ in an unencrypted key file")]
    CheckIntMismatch,

    /// The private key inside the file is malformed or of an unsupported type.
    #[error("private key in the file: {0}")]
    PrivateKey(#[source] ProtoError),

    /// The padding after the comment is not the bytes 1, 2, 3, ...
    #[error("bad padding after the private key")]
    Padding,

    /// The public key stored in the clear is not the public half of the private key.
    #[error("the file's public key does not match its private key")]
    PublicKeyMismatch,
}

/// Longest cipher or KDF name copied into an error (longer names are cut).
pub const MAX_NAME_IN_ERROR: usize = 64;

/// A printable, bounded copy of a name read from the file, for error messages.
pub(crate) fn bounded_name(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(MAX_NAME_IN_ERROR)
        .collect()
}
