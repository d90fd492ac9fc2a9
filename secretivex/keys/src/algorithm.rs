//! Key algorithms this crate signs with.

use std::fmt;

/// RSA modulus sizes accepted for private keys (and by `aws-lc-rs`).
pub const RSA_MIN_BITS: usize = 2048;
/// Largest RSA modulus accepted.
pub const RSA_MAX_BITS: usize = 8192;

/// The algorithm of a key held by a [`KeyPair`](crate::KeyPair) (certificates report the
/// algorithm of the key they certify).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// `ssh-ed25519` (RFC 8709).
    Ed25519,
    /// `ecdsa-sha2-nistp256`, signed with SHA-256 (RFC 5656).
    EcdsaP256,
    /// `ecdsa-sha2-nistp384`, signed with SHA-384.
    EcdsaP384,
    /// `ecdsa-sha2-nistp521`, signed with SHA-512.
    EcdsaP521,
    /// `ssh-rsa` key; signatures `rsa-sha2-256` / `rsa-sha2-512` (RFC 8332).
    Rsa {
        /// Modulus length in bits.
        bits: usize,
    },
}

impl KeyAlgorithm {
    /// The SSH name of the plain public key type, as in a public key blob.
    pub fn key_type(&self) -> &'static str {
        match self {
            KeyAlgorithm::Ed25519 => "ssh-ed25519",
            KeyAlgorithm::EcdsaP256 => "ecdsa-sha2-nistp256",
            KeyAlgorithm::EcdsaP384 => "ecdsa-sha2-nistp384",
            KeyAlgorithm::EcdsaP521 => "ecdsa-sha2-nistp521",
            KeyAlgorithm::Rsa { .. } => "ssh-rsa",
        }
    }

    /// The SSH name of the certificate type for this key algorithm.
    pub fn certificate_type(&self) -> &'static str {
        match self {
            KeyAlgorithm::Ed25519 => "ssh-ed25519-cert-v01@openssh.com",
            KeyAlgorithm::EcdsaP256 => "ecdsa-sha2-nistp256-cert-v01@openssh.com",
            KeyAlgorithm::EcdsaP384 => "ecdsa-sha2-nistp384-cert-v01@openssh.com",
            KeyAlgorithm::EcdsaP521 => "ecdsa-sha2-nistp521-cert-v01@openssh.com",
            KeyAlgorithm::Rsa { .. } => "ssh-rsa-cert-v01@openssh.com",
        }
    }

    /// Key size in bits as `ssh-keygen -l` prints it (256 for Ed25519, the curve size for
    /// ECDSA, the modulus size for RSA).
    pub fn bits(&self) -> usize {
        match self {
            KeyAlgorithm::Ed25519 | KeyAlgorithm::EcdsaP256 => 256,
            KeyAlgorithm::EcdsaP384 => 384,
            KeyAlgorithm::EcdsaP521 => 521,
            KeyAlgorithm::Rsa { bits } => *bits,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    /// Short names as `ssh-keygen -l` shows them: `ED25519`, `ECDSA`, `RSA` with the size.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            KeyAlgorithm::Ed25519 => "ED25519",
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 | KeyAlgorithm::EcdsaP521 => "ECDSA",
            KeyAlgorithm::Rsa { .. } => "RSA",
        };
        write!(f, "{name}-{}", self.bits())
    }
}
