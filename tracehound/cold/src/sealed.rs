//! Encrypted cold objects: the `THCE` envelope, sealed under a per-evidence data key that
//! an [`EvidenceSealer`] (a key vault) holds, so destroying the key erases every copy of
//! the object at once (crypto-shredding).
//!
//! Layout, all integers big-endian, header 72 bytes:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | magic `54 48 43 45` (`THCE`) |
//! | 4 | 2 | version = 1 |
//! | 6 | 2 | algorithm = 1 (AES-256-GCM, 96-bit random nonce, 128-bit tag) |
//! | 8 | 16 | key id (the vault's) |
//! | 24 | 8 | uncompressed (canonical payload) size |
//! | 32 | 8 | compressed (gzip) size |
//! | 40 | 32 | SHA-256 of the canonical payload (the signature's hash, raw) |
//! | 72 | 12 | nonce |
//! | 84 | N+16 | AES-256-GCM(gzip bytes), N = compressed size, then the tag |
//!
//! The associated data is the 72-byte header followed by the signature's UTF-8 bytes, so
//! the key id, the sizes, the hash and the object's name (category included) are all
//! authenticated: an object copied under another signature, or with any byte changed,
//! fails to open. Opening then inflates with the declared size as the limit and checks
//! that the payload hashes to the signature, as for v1 objects. The v1 `THCS` envelope
//! stays readable; a store with a sealer writes `THCE` only.

use sha2::{Digest, Sha256};
use tracehound_core::codec::GzipCodec;
use zeroize::Zeroizing;

use crate::envelope::{ColdEvidence, SealedEvidence};
use crate::layout::parse_signature;
use crate::ColdError;

/// Magic of the encrypted envelope.
pub const MAGIC: &[u8; 4] = b"THCE";
/// Envelope version.
const VERSION: u16 = 1;
/// AES-256-GCM with a 96-bit random nonce and a 128-bit tag.
const ALG_AES_256_GCM: u16 = 1;
/// Header bytes (also the associated data's prefix).
pub const HEADER_LEN: usize = 72;
/// Nonce and tag bytes the sealer adds around the ciphertext.
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Why a sealer could not encrypt or decrypt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealerError {
    /// The key is gone (destroyed by an erasure) or the signature is being erased.
    #[error("the evidence's key was erased")]
    Erased,
    /// The ciphertext or its associated data did not authenticate.
    #[error("ciphertext does not authenticate")]
    Tampered,
    /// Anything else (I/O on the key store, a full vault...).
    #[error("{0}")]
    Failed(String),
}

/// Checked by the evacuator just before each write (with or without a sealer): a
/// signature it refuses is not written (erasure tombstones), and its key, if any, is
/// discarded. Must be cheap and must not block.
pub trait WriteFilter: Send + Sync + std::fmt::Debug {
    /// Whether `signature` must not be written now.
    fn refuses(&self, signature: &str) -> bool;
}

/// Holds the data keys of encrypted cold objects (implemented over a key vault).
/// Calls may block on file I/O: the store calls them from blocking contexts when writing
/// (the evacuator seals on the blocking pool) and inline when reading one object.
pub trait EvidenceSealer: Send + Sync + std::fmt::Debug {
    /// The key id to seal `signature`'s evidence under (created on first use).
    fn key_for(&self, signature: &str) -> Result<[u8; 16], SealerError>;
    /// `nonce ‖ ciphertext ‖ tag` of `plaintext` under `key_id`, authenticating `aad`.
    fn encrypt(
        &self,
        key_id: &[u8; 16],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, SealerError>;
    /// The plaintext of `sealed` (as made by [`encrypt`](Self::encrypt)).
    fn decrypt(&self, key_id: &[u8; 16], aad: &[u8], sealed: &[u8])
        -> Result<Vec<u8>, SealerError>;
    /// The object stored for `signature` was deleted: destroy its key too, so deletions
    /// for retention or budgets leave no key (nor the personal metadata kept with it)
    /// behind. Called on the blocking pool. The default keeps nothing to discard.
    fn discard(&self, signature: &str) -> Result<(), SealerError> {
        let _ = signature;
        Ok(())
    }
}

/// Whether `object` is an encrypted (`THCE`) envelope.
pub fn is_encrypted(object: &[u8]) -> bool {
    object.get(..4) == Some(&MAGIC[..])
}

/// The key id an encrypted object was sealed under, if it is one.
pub fn key_id_of(object: &[u8]) -> Option<[u8; 16]> {
    if !is_encrypted(object) {
        return None;
    }
    object.get(8..24)?.try_into().ok()
}

fn header(key_id: &[u8; 16], payload_len: u64, gzip_len: u64, hash: &[u8; 32]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(MAGIC);
    h[4..6].copy_from_slice(&VERSION.to_be_bytes());
    h[6..8].copy_from_slice(&ALG_AES_256_GCM.to_be_bytes());
    h[8..24].copy_from_slice(key_id);
    h[24..32].copy_from_slice(&payload_len.to_be_bytes());
    h[32..40].copy_from_slice(&gzip_len.to_be_bytes());
    h[40..72].copy_from_slice(hash);
    h
}

fn aad(header: &[u8], signature: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len() + signature.len());
    out.extend_from_slice(header);
    out.extend_from_slice(signature.as_bytes());
    out
}

/// Seals evidence into a `THCE` envelope: `bytes` are the canonical payload, or its gzip
/// when `compressed` (checked to inflate to a payload that hashes to the signature).
pub fn seal_encrypted(
    codec: &GzipCodec,
    sealer: &dyn EvidenceSealer,
    signature: &str,
    bytes: &[u8],
    compressed: bool,
) -> Result<SealedEvidence, ColdError> {
    let invalid = |reason: String| ColdError::InvalidEvidence {
        signature: signature.to_owned(),
        reason,
    };
    let expected = parse_signature(signature)?.hash;
    // Plaintext copies made here are zeroized when dropped.
    let (gzip, payload_len, hash) = if compressed {
        let payload = Zeroizing::new(
            codec
                .decode(bytes)
                .map_err(|e| invalid(format!("stored gzip bytes: {e}")))?,
        );
        let hash: [u8; 32] = Sha256::digest(&*payload).into();
        (Zeroizing::new(bytes.to_vec()), payload.len() as u64, hash)
    } else {
        let hash: [u8; 32] = Sha256::digest(bytes).into();
        let gzip = codec.encode(bytes).map_err(|e| invalid(e.to_string()))?;
        (Zeroizing::new(gzip), bytes.len() as u64, hash)
    };
    if hex::encode(hash) != expected {
        return Err(invalid("payload does not hash to the signature".into()));
    }
    let key_id = sealer
        .key_for(signature)
        .map_err(|e| sealer_error(signature, e))?;
    let head = header(&key_id, payload_len, gzip.len() as u64, &hash);
    let body = sealer
        .encrypt(&key_id, &aad(&head, signature), &gzip)
        .map_err(|e| sealer_error(signature, e))?;
    let mut envelope = Vec::with_capacity(HEADER_LEN + body.len());
    envelope.extend_from_slice(&head);
    envelope.extend_from_slice(&body);
    Ok(SealedEvidence {
        signature: signature.to_owned(),
        envelope,
        payload_len,
    })
}

/// Opens and verifies a `THCE` object stored for `signature`. A destroyed key is
/// [`ColdError::Erased`]; every other failure is [`ColdError::Corrupt`].
pub fn open_encrypted(
    codec: &GzipCodec,
    sealer: Option<&dyn EvidenceSealer>,
    signature: &str,
    object: &[u8],
) -> Result<ColdEvidence, ColdError> {
    let corrupt = |reason: &str| ColdError::Corrupt {
        signature: signature.to_owned(),
        reason: reason.to_owned(),
    };
    let expected = parse_signature(signature)?.hash;
    let head = object
        .get(..HEADER_LEN)
        .ok_or_else(|| corrupt("truncated header"))?;
    let u16_at = |i: usize| u16::from_be_bytes([head[i], head[i + 1]]);
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&head[i..i + 8]);
        u64::from_be_bytes(b)
    };
    if !is_encrypted(head) || u16_at(4) != VERSION {
        return Err(corrupt("not a version 1 THCE envelope"));
    }
    if u16_at(6) != ALG_AES_256_GCM {
        return Err(corrupt("unknown encryption algorithm"));
    }
    let (payload_len, gzip_len) = (u64_at(24), u64_at(32));
    let want_len = (HEADER_LEN + NONCE_LEN + TAG_LEN) as u64;
    if want_len.checked_add(gzip_len) != Some(object.len() as u64) {
        return Err(corrupt("length does not match the header"));
    }
    if hex::encode(&head[40..72]) != expected {
        return Err(corrupt("header hash does not match the signature"));
    }
    let sealer = sealer.ok_or_else(|| ColdError::Config {
        reason: "an encrypted cold object needs the key vault ([erasure] vault_dir)".into(),
    })?;
    let mut key_id = [0u8; 16];
    key_id.copy_from_slice(&head[8..24]);
    // Decrypted bytes are zeroized on every error path (moved out only on success).
    let mut gzip = Zeroizing::new(
        sealer
            .decrypt(&key_id, &aad(head, signature), &object[HEADER_LEN..])
            .map_err(|e| sealer_error(signature, e))?,
    );
    if gzip.len() as u64 != gzip_len {
        return Err(corrupt("decrypted size does not match the header"));
    }
    let mut payload = Zeroizing::new(
        codec
            .decode_with_limit(&gzip, payload_len)
            .map_err(|e| corrupt(&e.to_string()))?,
    );
    if payload.len() as u64 != payload_len {
        return Err(corrupt("payload size does not match the header"));
    }
    if hex::encode(Sha256::digest(&*payload)) != expected {
        return Err(corrupt("payload does not hash to the signature"));
    }
    Ok(ColdEvidence {
        signature: signature.to_owned(),
        payload: std::mem::take(&mut *payload),
        compressed: std::mem::take(&mut *gzip),
        object_len: object.len() as u64,
    })
}

fn sealer_error(signature: &str, e: SealerError) -> ColdError {
    match e {
        SealerError::Erased => ColdError::Erased {
            signature: signature.to_owned(),
        },
        SealerError::Tampered => ColdError::Corrupt {
            signature: signature.to_owned(),
            reason: "ciphertext does not authenticate".into(),
        },
        SealerError::Failed(reason) => ColdError::Sealer {
            signature: signature.to_owned(),
            reason,
        },
    }
}
