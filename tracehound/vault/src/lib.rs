//! Tracehound's key vault: one AES-256-GCM data key per piece of evidence, kept in a
//! directory (0700) as one small file (0600) per key, next to the personal metadata
//! needed to find the key again (the evidence signature, the sources and scent ids that
//! produced it).
//!
//! Evidence sealed under a vault key is erased by destroying the key
//! ([`Vault::destroy`]: overwrite, fsync, unlink, fsync the directory) — crypto-shredding:
//! every copy of the ciphertext (cold storage objects, object versions, backups) becomes
//! unreadable at once, while hashes and audit records that never held the payload keep
//! verifying.
//!
//! * [`Vault`] — open (index rebuilt from the directory), find keys by signature, source
//!   or scent id, create or extend a key's metadata, encrypt, decrypt, destroy.
//! * [`KeyId`] — a random 128-bit key identifier, bound into ciphertexts as associated
//!   data by the callers' envelopes.
//! * [`VaultError`] — typed failures; [`VaultError::Erased`] when the key is gone.
//!
//! Key material lives in [`zeroize::Zeroizing`] buffers while in memory and is read
//! from its file for each operation, so the in-memory index holds metadata only.

mod error;
mod keyfile;
mod vault;

pub use error::VaultError;
pub use keyfile::{KeyId, KeyMeta, MAX_FIELD_LEN, MAX_SCENTS_PER_KEY, MAX_SOURCES_PER_KEY};
pub use vault::{Vault, VaultStats, NONCE_LEN, TAG_LEN};
