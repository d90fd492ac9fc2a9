//! The crate's error type.

use thiserror::Error;

use crate::KeyFileError;

/// Everything that can go wrong while parsing, checking, signing or verifying.
///
/// Messages name the problem, never the data: no variant carries key bytes, passphrases,
/// scalars or signature bytes, so an error can be logged or sent to a user as is.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key, blob or file is structurally invalid (truncated, bad length, trailing bytes, ...).
    #[error("malformed key data: {0}")]
    Malformed(&'static str),

    /// The key type is one this crate does not handle (DSA, security keys, ...).
    #[error("unsupported key type `{0}`")]
    UnsupportedKeyType(String),

    /// RSA keys must have a modulus of 2048 to 8192 bits.
    #[error("RSA key of {bits} bits is not supported (2048 to 8192 bits are)")]
    UnsupportedRsaKeySize {
        /// The modulus length found.
        bits: usize,
    },

    /// The key file is encrypted and no passphrase was given.
    #[error("the key file is encrypted: a passphrase is required")]
    PassphraseRequired,

    /// Decryption failed: the passphrase is wrong (or the encrypted file is damaged).
    #[error("incorrect passphrase (or damaged encrypted key file)")]
    WrongPassphrase,

    /// The private and public parts of a key do not belong together, or the crypto library
    /// refused the key (for example an RSA key whose factors do not multiply to the modulus).
    #[error("inconsistent private key: {0}")]
    InconsistentKey(&'static str),

    /// A certificate's public key is not the public half of the private key it came with.
    #[error("the certificate's public key does not match the private key")]
    CertificateMismatch,

    /// The OpenSSH private key file is malformed or uses an unsupported cipher or KDF.
    ///
    /// [`KeyFileError`] describes the format problem, never key contents.
    #[error("cannot parse OpenSSH key file: {0}")]
    Parse(#[source] KeyFileError),

    /// The crypto library refused to set up a key file cipher (not expected in practice;
    /// a wrong passphrase is [`KeyError::WrongPassphrase`]).
    #[error("decrypting the key file failed")]
    DecryptionFailed,

    /// The requested signature algorithm cannot be produced for this key.
    ///
    /// No key type this crate loads returns it from [`KeyPair::sign`](crate::KeyPair::sign)
    /// today (RSA signs `rsa-sha2-256`, `rsa-sha2-512` and legacy `ssh-rsa`); it is kept
    /// for algorithms a future key type cannot make.
    #[error("signature algorithm `{0}` is not supported for this key")]
    UnsupportedSignatureAlgorithm(&'static str),

    /// The crypto library failed to produce a signature.
    #[error("signing failed")]
    SigningFailed,

    /// A signature blob names an algorithm that does not fit the key, or an unknown one.
    #[error("signature algorithm does not match the key")]
    SignatureAlgorithmMismatch,

    /// The signature is well formed but does not verify.
    #[error("signature verification failed")]
    BadSignature,
}
