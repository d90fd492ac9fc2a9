//! Sealed copies of private keys (AES-256-GCM), so that locking the agent can drop every
//! parsed key pair and keep the keys only encrypted under the lock passphrase.
//!
//! While unlocked, each identity keeps its private key in wire form sealed under a random
//! per-agent key (not a secret from someone who can read the whole process, but it means
//! no second plaintext copy lies around). On lock, each sealed copy is re-sealed under a
//! key derived from the passphrase and the parsed key pairs are dropped (and zeroized);
//! on unlock, the copies are opened and parsed again.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, MAX_TAG_LEN, NONCE_LEN};

/// Bytes of the GCM tag appended to a sealed copy.
const TAG_LEN: usize = MAX_TAG_LEN;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

/// Length of a sealing key.
pub const KEY_LEN: usize = 32;

/// Errors of sealing and opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("no randomness available")]
    Random,
    #[error("sealing failed")]
    Seal,
    #[error("sealed data does not open with this key")]
    Open,
}

/// An AES-256-GCM key for sealing private keys.
pub struct SealingKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

/// A sealed byte string: random nonce and ciphertext with its tag.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    nonce: [u8; NONCE_LEN],
    ciphertext: Vec<u8>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealed({} bytes)", self.ciphertext.len())
    }
}

impl SealingKey {
    /// A fresh random key.
    pub fn random() -> Result<SealingKey, VaultError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        SystemRandom::new()
            .fill(&mut bytes[..])
            .map_err(|_| VaultError::Random)?;
        Self::from_bytes(&bytes)
    }

    /// A key from 32 bytes (e.g. derived from the lock passphrase).
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Result<SealingKey, VaultError> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| VaultError::Seal)?;
        Ok(SealingKey {
            key: LessSafeKey::new(unbound),
        })
    }

    /// Seals `plaintext`, bound to `context` (authenticated, not encrypted).
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<Sealed, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| VaultError::Random)?;
        // Room for the tag up front: a reallocation would free a plaintext copy unwiped.
        let mut buf = Vec::with_capacity(plaintext.len().saturating_add(TAG_LEN));
        buf.extend_from_slice(plaintext);
        let sealed = self.key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context),
            &mut buf,
        );
        if sealed.is_err() {
            zeroize::Zeroize::zeroize(&mut buf);
            return Err(VaultError::Seal);
        }
        Ok(Sealed {
            nonce,
            ciphertext: buf,
        })
    }

    /// Opens a sealed byte string made with this key and `context`.
    pub fn open(&self, sealed: &Sealed, context: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let mut buf = Zeroizing::new(sealed.ciphertext.clone());
        let len = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(sealed.nonce),
                Aad::from(context),
                &mut buf[..],
            )
            .map_err(|_| VaultError::Open)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip() {
        let key = SealingKey::random().unwrap();
        let sealed = key.seal(b"private key bytes", b"ctx").unwrap();
        assert_ne!(sealed.ciphertext[..17], b"private key bytes"[..]);
        assert_eq!(
            &key.open(&sealed, b"ctx").unwrap()[..],
            b"private key bytes"
        );
    }

    #[test]
    fn wrong_key_or_context_or_tampering_fails() {
        let key = SealingKey::random().unwrap();
        let other = SealingKey::random().unwrap();
        let sealed = key.seal(b"secret", b"ctx").unwrap();
        assert_eq!(other.open(&sealed, b"ctx").unwrap_err(), VaultError::Open);
        assert_eq!(key.open(&sealed, b"other").unwrap_err(), VaultError::Open);
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert_eq!(key.open(&tampered, b"ctx").unwrap_err(), VaultError::Open);
    }

    #[test]
    fn nonces_are_fresh() {
        let key = SealingKey::random().unwrap();
        let a = key.seal(b"same", b"").unwrap();
        let b = key.seal(b"same", b"").unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
    }
}
