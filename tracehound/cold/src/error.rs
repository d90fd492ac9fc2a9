//! The crate's error type.

/// Why a cold-storage operation failed.
///
/// Messages name keys, signatures, sizes and reasons; they never carry payload bytes or
/// credentials.
#[derive(Debug, thiserror::Error)]
pub enum ColdError {
    /// The signature is not `"{category}:{64 lowercase hex}"`, so it names no object.
    #[error("invalid evidence signature: {reason}")]
    InvalidSignature {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No object is stored for this signature.
    #[error("no cold object for {signature}")]
    NotFound {
        /// The signature asked for.
        signature: String,
    },
    /// The stored object exists but fails verification: not a THCS envelope, truncated,
    /// its hash does not match its bytes, it does not decompress, or the decompressed
    /// payload does not hash to the signature. Never returned as evidence.
    #[error("cold object for {signature} is corrupt: {reason}")]
    Corrupt {
        /// The signature whose object failed.
        signature: String,
        /// Which check failed.
        reason: String,
    },
    /// The evidence handed to `put` is inconsistent (its bytes do not hash to its
    /// signature, or compressed bytes do not decompress): it is not written.
    #[error("evidence {signature} cannot be stored: {reason}")]
    InvalidEvidence {
        /// The evidence's signature.
        signature: String,
        /// Why.
        reason: String,
    },
    /// The store's configuration is unusable (missing bucket, plain HTTP not allowed...).
    #[error("cold storage configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// The object store failed (network, permissions, disk).
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// The object is encrypted under a key the vault no longer holds: the evidence was
    /// erased (crypto-shredding). Never returned as evidence.
    #[error("evidence {signature} was erased")]
    Erased {
        /// The signature asked for.
        signature: String,
    },
    /// The key vault failed to seal or open an object (not an erasure, not tampering).
    #[error("key vault, for {signature}: {reason}")]
    Sealer {
        /// The evidence's signature.
        signature: String,
        /// What failed.
        reason: String,
    },
    /// A blocking task (envelope sealing) could not complete.
    #[error("background task failed: {reason}")]
    Task {
        /// The join error's description.
        reason: String,
    },
}

impl ColdError {
    /// Whether retrying the same operation may succeed (store and task failures), as
    /// opposed to errors that will repeat (bad signature, bad evidence, configuration).
    pub fn is_transient(&self) -> bool {
        match self {
            ColdError::Store(e) => !matches!(
                e,
                object_store::Error::InvalidPath { .. }
                    | object_store::Error::NotSupported { .. }
                    | object_store::Error::NotImplemented { .. }
                    | object_store::Error::UnknownConfigurationKey { .. }
            ),
            ColdError::Task { .. } => true,
            _ => false,
        }
    }
}
