//! OpenSSH private key files (`-----BEGIN OPENSSH PRIVATE KEY-----`, format
//! `openssh-key-v1` of OpenSSH's `PROTOCOL.key`), parsed and decrypted here.
//!
//! The private key inside a file is stored exactly as `ssh-add` sends it to an agent, so
//! it is decoded by `secretivex_proto`'s add-identity decoder
//! ([`PrivateKeyWire::decode_prefix`]) and then goes through the same checks as keys
//! added over the socket. This notably accepts ECDSA scalars of any length up to the
//! curve size: OpenSSH writes them as minimal `mpint`s, so about one P-521 file in four
//! holds a scalar shorter than 66 bytes (any scalar below 2^519).
//!
//! Ciphers: `none`, `aes128-ctr`, `aes192-ctr`, `aes256-ctr` (ssh-keygen's default),
//! `aes128-cbc`, `aes192-cbc`, `aes256-cbc`, `aes128-gcm@openssh.com` and
//! `aes256-gcm@openssh.com`, all through `aws-lc-rs`; the KDF is `bcrypt` (the
//! `bcrypt-pbkdf` crate). `chacha20-poly1305@openssh.com` is recognised but refused with
//! [`KeyFileError::UnsupportedCipher`].
//!
//! Secrets: the decoded file, the decrypted section and the derived key and IV are held in
//! [`Zeroizing`] buffers; the decoded key's secret fields zeroize themselves.

mod armor;
mod cipher;
mod container;
mod error;
mod private;

use secretivex_proto::PrivateKeyWire;
use zeroize::Zeroizing;

use self::cipher::Cipher;
use self::container::{Container, Kdf};
pub use self::error::{KeyFileError, MAX_NAME_IN_ERROR};
use crate::KeyError;

/// An OpenSSH private key file, parsed but not decrypted.
///
/// ```no_run
/// # fn main() -> Result<(), secretivex_keys::KeyError> {
/// use secretivex_keys::OpensshKeyFile;
/// let text = std::fs::read_to_string("id_ecdsa").unwrap();
/// let file = OpensshKeyFile::parse(&text)?;
/// let passphrase: Option<&[u8]> = if file.is_encrypted() { Some(b"secret") } else { None };
/// let key = file.decrypt(passphrase)?;
/// println!("{} ({})", key.comment, file.cipher_name());
/// # Ok(()) }
/// ```
pub struct OpensshKeyFile {
    container: Container,
}

impl std::fmt::Debug for OpensshKeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpensshKeyFile")
            .field("cipher", &self.cipher_name())
            .field("kdf_rounds", &self.kdf_rounds())
            .finish_non_exhaustive()
    }
}

/// The key and comment of a decrypted OpenSSH private key file.
#[derive(Debug)]
pub struct PrivateKeyFile {
    /// The private key in agent wire form; its secret fields zeroize on drop.
    pub key: PrivateKeyWire,
    /// The comment stored in the file (often `user@host`); may be empty. Bytes that are
    /// not UTF-8 are replaced with U+FFFD.
    pub comment: String,
}

impl OpensshKeyFile {
    /// Parses the armored text of a key file: armor, base64, container header, cipher and
    /// KDF names, KDF options, key count (must be 1), public key, and the lengths of the
    /// private section and tag. Nothing is decrypted and no KDF runs.
    pub fn parse(text: &str) -> Result<OpensshKeyFile, KeyError> {
        let binary = armor::decode(text)?;
        Self::from_binary(&binary)
    }

    /// Parses the binary container (the base64-decoded body of a key file).
    pub fn from_binary(bytes: &[u8]) -> Result<OpensshKeyFile, KeyError> {
        Ok(OpensshKeyFile {
            container: Container::parse(bytes)?,
        })
    }

    /// Whether the private section is encrypted (a passphrase is needed).
    pub fn is_encrypted(&self) -> bool {
        self.container.cipher != Cipher::None
    }

    /// The cipher's OpenSSH name, `none` for unencrypted files.
    pub fn cipher_name(&self) -> &'static str {
        self.container.cipher.name()
    }

    /// The bcrypt KDF's rounds (`ssh-keygen -a`), `None` for unencrypted files. Decryption
    /// time grows linearly with it; a caller handling files from untrusted sources can
    /// refuse large values before calling [`decrypt`](Self::decrypt).
    pub fn kdf_rounds(&self) -> Option<u32> {
        match &self.container.kdf {
            Kdf::None => None,
            Kdf::Bcrypt { rounds, .. } => Some(*rounds),
        }
    }

    /// The public key blob stored in the clear.
    pub fn public_blob(&self) -> &[u8] {
        &self.container.public_blob
    }

    /// Decrypts (when needed) and decodes the private key.
    ///
    /// The passphrase is ignored for unencrypted files. For encrypted ones, `None` gives
    /// [`KeyError::PassphraseRequired`] and a wrong passphrase gives
    /// [`KeyError::WrongPassphrase`] (detected by the check integers, or the AEAD tag for
    /// GCM). The private key must encode the file's public key blob, or the result is
    /// [`KeyFileError::PublicKeyMismatch`]. Whether the numbers form a valid key is checked
    /// later, by [`KeyPair::from_wire`](crate::KeyPair::from_wire).
    pub fn decrypt(&self, passphrase: Option<&[u8]>) -> Result<PrivateKeyFile, KeyError> {
        let c = &self.container;
        let encrypted = self.is_encrypted();
        let mut section = Zeroizing::new(c.private_section.to_vec());
        if encrypted {
            let passphrase = passphrase.ok_or(KeyError::PassphraseRequired)?;
            cipher::decrypt(c.cipher, &c.kdf, passphrase, &mut section, &c.tag)?;
        }
        let (key, comment) = private::parse_section(&section, encrypted, &c.public_blob)?;
        Ok(PrivateKeyFile { key, comment })
    }
}

impl PrivateKeyFile {
    /// Parses and decrypts an armored key file in one step; see [`OpensshKeyFile::parse`]
    /// and [`OpensshKeyFile::decrypt`].
    pub fn parse(text: &str, passphrase: Option<&[u8]>) -> Result<PrivateKeyFile, KeyError> {
        OpensshKeyFile::parse(text)?.decrypt(passphrase)
    }
}

impl From<KeyFileError> for KeyError {
    fn from(err: KeyFileError) -> Self {
        KeyError::Parse(err)
    }
}
