//! The ciphers and KDF of encrypted key files, run through `aws-lc-rs` and `bcrypt-pbkdf`.
//!
//! OpenSSH derives `key ‖ iv` in one `bcrypt_pbkdf` call, then decrypts the private
//! section with the key and IV taken from that output. For the GCM ciphers the IV is the
//! 12-byte nonce, there is no additional authenticated data, and the 16-byte tag follows
//! the private section in the file.

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{self, DecryptingKey, DecryptionContext, UnboundCipherKey};
use aws_lc_rs::iv::FixedLength;
use zeroize::Zeroizing;

use super::container::Kdf;
use super::KeyFileError;
use crate::KeyError;

/// A key file cipher, by its OpenSSH name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cipher {
    None,
    Aes128Ctr,
    Aes192Ctr,
    Aes256Ctr,
    Aes128Cbc,
    Aes192Cbc,
    Aes256Cbc,
    Aes128Gcm,
    Aes256Gcm,
    /// Recognised (so the container's layout is known) but not decrypted.
    Chacha20Poly1305,
}

const AES_BLOCK: usize = 16;
/// OpenSSH pads unencrypted private sections to 8 bytes.
const NONE_BLOCK: usize = 8;
const AEAD_TAG: usize = 16;
const GCM_NONCE: usize = 12;
const AES_IV: usize = 16;

impl Cipher {
    pub(crate) fn from_name(name: &[u8]) -> Option<Cipher> {
        Some(match name {
            b"none" => Cipher::None,
            b"aes128-ctr" => Cipher::Aes128Ctr,
            b"aes192-ctr" => Cipher::Aes192Ctr,
            b"aes256-ctr" => Cipher::Aes256Ctr,
            b"aes128-cbc" => Cipher::Aes128Cbc,
            b"aes192-cbc" => Cipher::Aes192Cbc,
            b"aes256-cbc" => Cipher::Aes256Cbc,
            b"aes128-gcm@openssh.com" => Cipher::Aes128Gcm,
            b"aes256-gcm@openssh.com" => Cipher::Aes256Gcm,
            b"chacha20-poly1305@openssh.com" => Cipher::Chacha20Poly1305,
            _ => return None,
        })
    }

    /// The OpenSSH name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Cipher::None => "none",
            Cipher::Aes128Ctr => "aes128-ctr",
            Cipher::Aes192Ctr => "aes192-ctr",
            Cipher::Aes256Ctr => "aes256-ctr",
            Cipher::Aes128Cbc => "aes128-cbc",
            Cipher::Aes192Cbc => "aes192-cbc",
            Cipher::Aes256Cbc => "aes256-cbc",
            Cipher::Aes128Gcm => "aes128-gcm@openssh.com",
            Cipher::Aes256Gcm => "aes256-gcm@openssh.com",
            Cipher::Chacha20Poly1305 => "chacha20-poly1305@openssh.com",
        }
    }

    /// The length the private section must be a multiple of.
    pub(crate) fn block_len(self) -> usize {
        match self {
            Cipher::None | Cipher::Chacha20Poly1305 => NONE_BLOCK,
            _ => AES_BLOCK,
        }
    }

    /// Length of the authentication tag stored after the private section.
    pub(crate) fn tag_len(self) -> usize {
        match self {
            Cipher::Aes128Gcm | Cipher::Aes256Gcm | Cipher::Chacha20Poly1305 => AEAD_TAG,
            _ => 0,
        }
    }

    fn key_len(self) -> usize {
        match self {
            Cipher::None => 0,
            Cipher::Aes128Ctr | Cipher::Aes128Cbc | Cipher::Aes128Gcm => 16,
            Cipher::Aes192Ctr | Cipher::Aes192Cbc => 24,
            Cipher::Aes256Ctr | Cipher::Aes256Cbc | Cipher::Aes256Gcm => 32,
            Cipher::Chacha20Poly1305 => 64,
        }
    }

    fn iv_len(self) -> usize {
        match self {
            Cipher::None | Cipher::Chacha20Poly1305 => 0,
            Cipher::Aes128Gcm | Cipher::Aes256Gcm => GCM_NONCE,
            _ => AES_IV,
        }
    }
}

/// Derives the key and IV from the passphrase and decrypts `section` in place.
///
/// A failed AEAD tag means a wrong passphrase (or a damaged file) and is reported as
/// [`KeyError::WrongPassphrase`]; for the other ciphers the caller finds out from the check
/// integers. The derived key and IV live only in a zeroized buffer.
pub(crate) fn decrypt(
    cipher: Cipher,
    kdf: &Kdf,
    passphrase: &[u8],
    section: &mut [u8],
    tag: &[u8],
) -> Result<(), KeyError> {
    if cipher == Cipher::None {
        return Ok(());
    }
    if cipher == Cipher::Chacha20Poly1305 {
        return Err(KeyError::Parse(KeyFileError::UnsupportedCipher(
            cipher.name().to_owned(),
        )));
    }
    let Kdf::Bcrypt { salt, rounds } = kdf else {
        return Err(KeyError::Parse(KeyFileError::CipherKdfMismatch));
    };
    if passphrase.is_empty() {
        // bcrypt_pbkdf refuses an empty passphrase, and ssh-keygen never encrypts with one.
        return Err(KeyError::WrongPassphrase);
    }
    let key_len = cipher.key_len();
    let total = key_len
        .checked_add(cipher.iv_len())
        .ok_or(KeyError::DecryptionFailed)?;
    let mut key_iv = Zeroizing::new(vec![0u8; total]);
    bcrypt_pbkdf::bcrypt_pbkdf(passphrase, salt, *rounds, &mut key_iv)
        .map_err(|_| KeyError::Parse(KeyFileError::KdfOptions("refused by bcrypt_pbkdf")))?;
    let (key, iv) = key_iv.split_at(key_len);
    match cipher {
        Cipher::Aes128Gcm | Cipher::Aes256Gcm => open_gcm(cipher, key, iv, section, tag),
        Cipher::Aes128Ctr | Cipher::Aes192Ctr | Cipher::Aes256Ctr => {
            let key = unbound_aes(key)?;
            let key = DecryptingKey::ctr(key).map_err(|_| KeyError::DecryptionFailed)?;
            run_block_mode(&key, iv, section)
        }
        Cipher::Aes128Cbc | Cipher::Aes192Cbc | Cipher::Aes256Cbc => {
            let key = unbound_aes(key)?;
            let key = DecryptingKey::cbc(key).map_err(|_| KeyError::DecryptionFailed)?;
            run_block_mode(&key, iv, section)
        }
        Cipher::None | Cipher::Chacha20Poly1305 => Ok(()),
    }
}

fn unbound_aes(key: &[u8]) -> Result<UnboundCipherKey, KeyError> {
    let algorithm = match key.len() {
        16 => &cipher::AES_128,
        24 => &cipher::AES_192,
        _ => &cipher::AES_256,
    };
    UnboundCipherKey::new(algorithm, key).map_err(|_| KeyError::DecryptionFailed)
}

fn run_block_mode(key: &DecryptingKey, iv: &[u8], section: &mut [u8]) -> Result<(), KeyError> {
    // `FixedLength` zeroizes itself on drop; no other copy of the IV is made.
    let iv = FixedLength::<AES_IV>::try_from(iv).map_err(|_| KeyError::DecryptionFailed)?;
    let context = DecryptionContext::Iv128(iv);
    key.decrypt(section, context)
        .map_err(|_| KeyError::DecryptionFailed)?;
    Ok(())
}

fn open_gcm(
    cipher: Cipher,
    key: &[u8],
    iv: &[u8],
    section: &mut [u8],
    tag: &[u8],
) -> Result<(), KeyError> {
    let algorithm = if cipher == Cipher::Aes128Gcm {
        &aead::AES_128_GCM
    } else {
        &aead::AES_256_GCM
    };
    let key = UnboundKey::new(algorithm, key).map_err(|_| KeyError::DecryptionFailed)?;
    let nonce = Nonce::try_assume_unique_for_key(iv).map_err(|_| KeyError::DecryptionFailed)?;
    LessSafeKey::new(key)
        .open_in_place_separate_tag(nonce, Aad::empty(), tag, section)
        .map_err(|_| KeyError::WrongPassphrase)?;
    Ok(())
}
