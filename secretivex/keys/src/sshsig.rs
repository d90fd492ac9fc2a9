//! SSHSIG: the detached signature format of `ssh-keygen -Y sign` (OpenSSH `PROTOCOL.sshsig`).
//!
//! A signature covers `"SSHSIG" ‖ string namespace ‖ string reserved ‖ string hash_algorithm ‖
//! string H(message)`; the result is wrapped in a blob carrying the public key and armored as
//! `-----BEGIN SSH SIGNATURE-----`. Files written by [`sign_armored`] verify with
//! `ssh-keygen -Y verify` / `-Y check-novalidate`, and [`verify_armored`] accepts the files
//! `ssh-keygen -Y sign` writes.

use aws_lc_rs::digest;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use secretivex_proto::sign_flags;

use crate::sshbuf::{put_string, Reader};
use crate::{verify_signature, KeyAlgorithm, KeyError, KeyPair};

/// The 6-byte magic preamble.
pub const MAGIC: &[u8; 6] = b"SSHSIG";
/// The blob format version this module writes and reads.
pub const VERSION: u32 = 1;
/// First line of an armored signature.
pub const BEGIN: &str = "-----BEGIN SSH SIGNATURE-----";
/// Last line of an armored signature.
pub const END: &str = "-----END SSH SIGNATURE-----";
/// Line width of the armored base64, as `ssh-keygen` writes it.
const ARMOR_WIDTH: usize = 70;

/// The message hash algorithms SSHSIG defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashAlg {
    /// `sha256`.
    Sha256,
    /// `sha512`, what `ssh-keygen -Y sign` uses by default.
    #[default]
    Sha512,
}

impl HashAlg {
    /// The name written in the signature.
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha512 => "sha512",
        }
    }

    fn from_name(name: &[u8]) -> Result<Self, KeyError> {
        match name {
            b"sha256" => Ok(HashAlg::Sha256),
            b"sha512" => Ok(HashAlg::Sha512),
            _ => Err(KeyError::Malformed("unknown SSHSIG hash algorithm")),
        }
    }

    fn digest_algorithm(self) -> &'static digest::Algorithm {
        match self {
            HashAlg::Sha256 => &digest::SHA256,
            HashAlg::Sha512 => &digest::SHA512,
        }
    }

    /// A streaming hasher for large messages; pass its result to [`sign_digest`].
    pub fn hasher(self) -> digest::Context {
        digest::Context::new(self.digest_algorithm())
    }

    /// Hashes a whole message.
    pub fn hash(self, message: &[u8]) -> Vec<u8> {
        digest::digest(self.digest_algorithm(), message)
            .as_ref()
            .to_vec()
    }
}

/// The bytes the key signs for `message_hash` (already hashed with `hash`).
pub fn signed_data(
    namespace: &str,
    hash: HashAlg,
    message_hash: &[u8],
) -> Result<Vec<u8>, KeyError> {
    if namespace.is_empty() {
        return Err(KeyError::Malformed("SSHSIG namespace must not be empty"));
    }
    let mut out = Vec::with_capacity(32 + namespace.len() + message_hash.len());
    out.extend_from_slice(MAGIC);
    put_string(&mut out, namespace.as_bytes())?;
    put_string(&mut out, b"")?;
    put_string(&mut out, hash.name().as_bytes())?;
    put_string(&mut out, message_hash)?;
    Ok(out)
}

/// Signs an already-hashed message and returns the SSHSIG blob (not armored).
///
/// RSA keys sign with `rsa-sha2-512`, as `ssh-keygen` does. The blob carries
/// [`KeyPair::public_blob`], i.e. the certificate for certificate keys.
pub fn sign_digest(
    key: &KeyPair,
    namespace: &str,
    hash: HashAlg,
    message_hash: &[u8],
) -> Result<Vec<u8>, KeyError> {
    if message_hash.len() != hash.digest_algorithm().output_len() {
        return Err(KeyError::Malformed("SSHSIG hash has the wrong length"));
    }
    let to_sign = signed_data(namespace, hash, message_hash)?;
    let flags = match key.algorithm() {
        KeyAlgorithm::Rsa { .. } => sign_flags::RSA_SHA2_512,
        _ => 0,
    };
    let signature = key.sign(&to_sign, flags)?;
    encode_blob(key.public_blob(), namespace, hash, &signature)
}

/// Assembles an SSHSIG blob from a public key (or certificate) blob and an SSH signature
/// blob made over [`signed_data`] — for signatures produced elsewhere, e.g. by an agent.
pub fn encode_blob(
    public_blob: &[u8],
    namespace: &str,
    hash: HashAlg,
    signature: &[u8],
) -> Result<Vec<u8>, KeyError> {
    let mut out = Vec::with_capacity(64 + public_blob.len() + signature.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    put_string(&mut out, public_blob)?;
    put_string(&mut out, namespace.as_bytes())?;
    put_string(&mut out, b"")?;
    put_string(&mut out, hash.name().as_bytes())?;
    put_string(&mut out, signature)?;
    Ok(out)
}

/// Signs `message` (hashed with SHA-512) and returns the SSHSIG blob.
pub fn sign(key: &KeyPair, namespace: &str, message: &[u8]) -> Result<Vec<u8>, KeyError> {
    sign_digest(
        key,
        namespace,
        HashAlg::Sha512,
        &HashAlg::Sha512.hash(message),
    )
}

/// Signs `message` and returns the armored text `ssh-keygen -Y sign` would write.
pub fn sign_armored(key: &KeyPair, namespace: &str, message: &[u8]) -> Result<String, KeyError> {
    Ok(armor(&sign(key, namespace, message)?))
}

/// Armors a blob: BEGIN line, base64 in 70-column lines, END line, trailing newline.
pub fn armor(blob: &[u8]) -> String {
    let b64 = STANDARD.encode(blob);
    let mut out = String::with_capacity(b64.len() + b64.len() / ARMOR_WIDTH + 64);
    out.push_str(BEGIN);
    out.push('\n');
    for line in b64.as_bytes().chunks(ARMOR_WIDTH) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(END);
    out.push('\n');
    out
}

/// Removes the armor and decodes the base64 inside.
pub fn dearmor(text: &str) -> Result<Vec<u8>, KeyError> {
    let text = text.trim();
    let body = text
        .strip_prefix(BEGIN)
        .and_then(|rest| rest.strip_suffix(END))
        .ok_or(KeyError::Malformed("not an armored SSH signature"))?;
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD
        .decode(b64.as_bytes())
        .map_err(|_| KeyError::Malformed("invalid base64 in SSH signature"))
}

/// Verifies an SSHSIG blob over `message` in `namespace`; returns the signer's public key
/// blob (which the caller must still check against its allowed signers).
pub fn verify(blob: &[u8], namespace: &str, message: &[u8]) -> Result<Vec<u8>, KeyError> {
    let rest = blob
        .strip_prefix(MAGIC.as_slice())
        .ok_or(KeyError::Malformed("missing SSHSIG magic"))?;
    let mut r = Reader::new(rest);
    if r.u32()? != VERSION {
        return Err(KeyError::Malformed("unsupported SSHSIG version"));
    }
    let public_blob = r.string()?;
    let sig_namespace = r.string()?;
    let _reserved = r.string()?;
    let hash = HashAlg::from_name(r.string()?)?;
    let signature = r.string()?;
    r.finish()?;
    if sig_namespace != namespace.as_bytes() {
        return Err(KeyError::Malformed("SSHSIG namespace mismatch"));
    }
    // OpenSSH refuses SHA-1 RSA signatures in SSHSIG.
    if Reader::new(signature).string()? == b"ssh-rsa" {
        return Err(KeyError::SignatureAlgorithmMismatch);
    }
    let to_verify = signed_data(namespace, hash, &hash.hash(message))?;
    verify_signature(public_blob, &to_verify, signature)?;
    Ok(public_blob.to_vec())
}

/// [`verify`] for armored text.
pub fn verify_armored(text: &str, namespace: &str, message: &[u8]) -> Result<Vec<u8>, KeyError> {
    verify(&dearmor(text)?, namespace, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn armor_roundtrip_and_wrapping() {
        let blob: Vec<u8> = (0..=255u8).collect();
        let text = armor(&blob);
        assert!(text.starts_with(BEGIN));
        assert!(text
            .lines()
            .all(|l| l.len() <= ARMOR_WIDTH || l.starts_with("-----")));
        assert_eq!(dearmor(&text).unwrap(), blob);
        assert!(dearmor("garbage").is_err());
    }

    #[test]
    fn signed_data_layout() {
        let hash = HashAlg::Sha256.hash(b"msg");
        let data = signed_data("file", HashAlg::Sha256, &hash).unwrap();
        let mut expected = b"SSHSIG\0\0\0\x04file\0\0\0\0\0\0\0\x06sha256\0\0\0\x20".to_vec();
        expected.extend_from_slice(&hash);
        assert_eq!(data, expected);
        assert!(signed_data("", HashAlg::Sha256, &hash).is_err());
    }
}
