//! The binary `openssh-key-v1` container (OpenSSH `PROTOCOL.key`), before decryption.
//!
//! ```text
//! byte[15] "openssh-key-v1\0"
//! string   ciphername            "none", "aes256-ctr", ...
//! string   kdfname               "none" or "bcrypt"
//! string   kdfoptions            bcrypt: string salt, uint32 rounds; none: empty
//! uint32   number of keys        always 1 in files ssh-keygen writes
//! string   public key blob
//! string   private section       encrypted unless the cipher is "none"
//! byte[]   authentication tag    only for AEAD ciphers (aes*-gcm@openssh.com)
//! ```

use zeroize::Zeroizing;

use super::cipher::Cipher;
use super::error::bounded_name;
use super::KeyFileError;

const MAGIC: &[u8] = b"openssh-key-v1\0";

/// How the passphrase is turned into the cipher's key and IV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kdf {
    /// Unencrypted files.
    None,
    /// OpenBSD's `bcrypt_pbkdf`, the only KDF OpenSSH writes.
    Bcrypt { salt: Vec<u8>, rounds: u32 },
}

/// A parsed container whose private section is still as stored (possibly encrypted).
pub(crate) struct Container {
    pub(crate) cipher: Cipher,
    pub(crate) kdf: Kdf,
    pub(crate) public_blob: Vec<u8>,
    /// Zeroized because for unencrypted files it is the private key in the clear.
    pub(crate) private_section: Zeroizing<Vec<u8>>,
    /// The AEAD tag that follows the private section (empty for non-AEAD ciphers).
    pub(crate) tag: Vec<u8>,
}

/// Reads SSH wire fields from untrusted bytes, naming the field in truncation errors.
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], KeyFileError> {
        if len > self.rest.len() {
            return Err(KeyFileError::Truncated(what));
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, KeyFileError> {
        let (head, tail) = self
            .rest
            .split_first_chunk::<4>()
            .ok_or(KeyFileError::Truncated(what))?;
        self.rest = tail;
        Ok(u32::from_be_bytes(*head))
    }

    fn string(&mut self, what: &'static str) -> Result<&'a [u8], KeyFileError> {
        let len = usize::try_from(self.u32(what)?).map_err(|_| KeyFileError::Truncated(what))?;
        self.take(len, what)
    }
}

impl Container {
    /// Parses the decoded body of a key file. Nothing is decrypted here.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Container, KeyFileError> {
        let rest = bytes.strip_prefix(MAGIC).ok_or(KeyFileError::Magic)?;
        let mut r = Fields { rest };
        let cipher_name = r.string("cipher name")?;
        let cipher = Cipher::from_name(cipher_name)
            .ok_or_else(|| KeyFileError::UnsupportedCipher(bounded_name(cipher_name)))?;
        let kdf_name = r.string("KDF name")?;
        let kdf_options = r.string("KDF options")?;
        let kdf = parse_kdf(kdf_name, kdf_options)?;
        // OpenSSH refuses a KDF without encryption and encryption without a KDF.
        if (cipher == Cipher::None) != (kdf == Kdf::None) {
            return Err(KeyFileError::CipherKdfMismatch);
        }
        let count = r.u32("number of keys")?;
        if count != 1 {
            return Err(KeyFileError::KeyCount(count));
        }
        let public_blob = r.string("public key")?.to_vec();
        let section = r.string("private section")?;
        let block = cipher.block_len();
        if section.is_empty() || section.len() % block != 0 {
            return Err(KeyFileError::SectionLength { block });
        }
        let private_section = Zeroizing::new(section.to_vec());
        let tag = r.take(cipher.tag_len(), "authentication tag")?.to_vec();
        if !r.rest.is_empty() {
            return Err(KeyFileError::TrailingBytes("the private section"));
        }
        Ok(Container {
            cipher,
            kdf,
            public_blob,
            private_section,
            tag,
        })
    }
}

fn parse_kdf(name: &[u8], options: &[u8]) -> Result<Kdf, KeyFileError> {
    match name {
        b"none" if options.is_empty() => Ok(Kdf::None),
        b"none" => Err(KeyFileError::CipherKdfMismatch),
        b"bcrypt" => {
            let mut r = Fields { rest: options };
            let salt = r.string("bcrypt salt")?;
            let rounds = r.u32("bcrypt rounds")?;
            if !r.rest.is_empty() {
                return Err(KeyFileError::TrailingBytes("the bcrypt KDF options"));
            }
            if salt.is_empty() {
                return Err(KeyFileError::KdfOptions("empty salt"));
            }
            if rounds == 0 {
                return Err(KeyFileError::KdfOptions("zero rounds"));
            }
            Ok(Kdf::Bcrypt {
                salt: salt.to_vec(),
                rounds,
            })
        }
        other => Err(KeyFileError::UnsupportedKdf(bounded_name(other))),
    }
}
