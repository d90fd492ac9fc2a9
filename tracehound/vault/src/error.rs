//! The vault's error type.

use std::path::PathBuf;

/// Why a vault operation failed. Messages name files and key ids, never key material,
/// payload bytes or personal metadata.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The key was destroyed (erased) or was never issued by this vault: whatever it
    /// sealed can no longer be decrypted.
    #[error("key {key_id} is not in the vault (erased)")]
    Erased {
        /// The key id asked for (hex).
        key_id: String,
    },
    /// Authentication failed: the ciphertext, its nonce or its associated data were
    /// altered, or the wrong key was used.
    #[error("ciphertext does not authenticate under key {key_id}")]
    Tampered {
        /// The key id used (hex).
        key_id: String,
    },
    /// The vault holds its configured maximum number of keys.
    #[error("the vault is full ({max} keys)")]
    Full {
        /// The configured maximum.
        max: usize,
    },
    /// The vault directory's permissions let other users read it.
    #[error("{}: vault directory must not be accessible to group or others (mode {mode:o})", path.display())]
    Permissions {
        /// The directory.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// A key file is malformed.
    #[error("{}: malformed key file: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// A value is unusable (an empty or oversized signature, ...).
    #[error("invalid input: {0}")]
    Invalid(&'static str),
    /// The random number generator or the cipher failed.
    #[error("crypto failure: {0}")]
    Crypto(&'static str),
    /// A filesystem operation failed.
    #[error("{}: {what}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The step that failed.
        what: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl VaultError {
    pub(crate) fn io(path: &std::path::Path, what: &'static str, source: std::io::Error) -> Self {
        VaultError::Io {
            path: path.to_owned(),
            what,
            source,
        }
    }
}
