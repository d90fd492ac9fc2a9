//! The private section once decrypted: check integers, the key, its comment, padding.
//!
//! ```text
//! uint32  checkint1
//! uint32  checkint2      equal to checkint1; after decryption a mismatch means a wrong passphrase
//! ...     private key    OpenSSH `sshkey_private_serialize`, as `ssh-add` sends it
//! string  comment
//! byte[]  padding        1, 2, 3, ... up to the cipher's block size
//! ```

use secretivex_proto::PrivateKeyWire;

use super::KeyFileError;
use crate::KeyError;

/// Parses a decrypted private section and checks it against the file's public key blob.
///
/// `encrypted` says whether the section was decrypted with a passphrase: only then do
/// differing check integers mean a wrong passphrase rather than a damaged file.
pub(crate) fn parse_section(
    section: &[u8],
    encrypted: bool,
    public_blob: &[u8],
) -> Result<(PrivateKeyWire, String), KeyError> {
    let (check1, rest) = section
        .split_first_chunk::<4>()
        .ok_or(KeyFileError::Truncated("check integers"))?;
    let (check2, rest) = rest
        .split_first_chunk::<4>()
        .ok_or(KeyFileError::Truncated("check integers"))?;
    if check1 != check2 {
        return Err(if encrypted {
            KeyError::WrongPassphrase
        } else {
            KeyFileError::CheckIntMismatch.into()
        });
    }
    let (key, rest) = PrivateKeyWire::decode_prefix(rest).map_err(KeyFileError::PrivateKey)?;
    let (comment, padding) = split_string(rest).ok_or(KeyFileError::Truncated("comment"))?;
    check_padding(padding)?;
    if key.public_blob() != public_blob {
        return Err(KeyFileError::PublicKeyMismatch.into());
    }
    // Comments are free text for people; a stray non-UTF-8 byte should not make a key
    // unloadable.
    Ok((key, String::from_utf8_lossy(comment).into_owned()))
}

/// Splits an SSH `string` off the front of `bytes`.
fn split_string(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    (len <= rest.len()).then(|| rest.split_at(len))
}

/// The padding must be 1, 2, 3, ... (wrapping at 256).
///
/// Its length is not bounded by the block size: OpenSSH does not bound it either, so a
/// file padded more generously by another tool still loads. The section length itself is
/// checked to be whole blocks before decryption.
fn check_padding(padding: &[u8]) -> Result<(), KeyFileError> {
    let expected = (1..=u8::MAX).chain(std::iter::once(0)).cycle();
    if padding.iter().zip(expected).all(|(&got, want)| got == want) {
        Ok(())
    } else {
        Err(KeyFileError::Padding)
    }
}
