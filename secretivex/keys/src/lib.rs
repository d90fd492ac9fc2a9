//! SecretiveX key material: OpenSSH key files and agent key blobs in, SSH signatures out.
//!
//! * OpenSSH private key files (`openssh-key-v1`, encrypted ones included) are parsed and
//!   decrypted by this crate ([`OpensshKeyFile`], [`PrivateKeyFile`]): the key inside a
//!   file is in the same form `ssh-add` sends, so it is decoded by `secretivex_proto` and
//!   checked by [`KeyPair::from_wire`] like any added key. Ciphers `none`, `aes{128,192,256}-ctr`,
//!   `aes{128,192,256}-cbc` and `aes{128,256}-gcm@openssh.com` run in `aws-lc-rs`, the bcrypt
//!   KDF in the `bcrypt-pbkdf` crate. (The `ssh-key` 0.6 crate used before refused P-521
//!   files whose scalar OpenSSH writes shorter than 66 bytes: about one in four.) Certificates and
//!   public blobs are parsed here too.
//! * Every private-key operation runs in AWS-LC (constant-time), through `aws-lc-rs`. A key
//!   is turned into AWS-LC key objects once, when it is added, and cached in a
//!   [`KeyPair`]; [`KeyPair::sign`] takes `&self` and is safe to call from many threads.
//! * Supported: Ed25519, ECDSA P-256/384/521, RSA 2048–8192 bits (`rsa-sha2-256`,
//!   `rsa-sha2-512`, and legacy SHA-1 `ssh-rsa` for clients that set no RSA flag, such as
//!   `ssh-add -T` of OpenSSH 9.x), and OpenSSH certificates (`*-cert-v01@openssh.com`) of
//!   each, whose public key must match the private key.
//! * `aws-lc-rs` does not sign `ssh-rsa`, so that one operation calls AWS-LC's C API through
//!   `aws-lc-sys` (the same AWS-LC build) in the private `legacy_rsa` module, the only place
//!   in this crate where `unsafe` is allowed. Its AWS-LC key is also built once, with its CRT
//!   parameters, when the key is added.
//! * [`verify_signature`] checks SSH signature blobs (session-bind host key signatures,
//!   signatures returned by an agent).
//! * [`sshsig`] builds `ssh-keygen -Y sign` compatible signatures (PROTOCOL.sshsig).
//!
//! Secrets: intermediates (decoded and decrypted key files, derived keys and IVs, seeds,
//! scalars) are held in [`zeroize::Zeroizing`] and wiped as soon as the `aws-lc-rs` objects
//! are built; see [`KeyPair`] for how the cached objects are cleared.
//! [`KeyError`] never carries secret bytes.
//!
//! ```no_run
//! # fn main() -> Result<(), secretivex_keys::KeyError> {
//! let text = std::fs::read_to_string("id_ed25519").unwrap();
//! let (key, comment) = secretivex_keys::KeyPair::from_openssh_file(&text, None)?;
//! let sig = key.sign(b"data", 0)?;
//! secretivex_keys::verify_signature(key.public_blob(), b"data", &sig)?;
//! println!("{} {comment}", key.fingerprint());
//! # Ok(()) }
//! ```

// `deny` rather than `forbid` so that the one FFI module below can opt out; everything
// else stays free of `unsafe`.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod algorithm;
mod blob;
mod cert;
mod error;
mod keyfile;
mod keypair;
// The AWS-LC FFI for legacy `ssh-rsa` signatures, which `aws-lc-rs` lacks. Every `unsafe`
// block in it carries a `// SAFETY:` argument.
#[allow(unsafe_code)]
mod legacy_rsa;
mod rsa_crt;
mod signer;
mod sshbuf;
pub mod sshsig;
mod verify;

pub use algorithm::{KeyAlgorithm, RSA_MAX_BITS, RSA_MIN_BITS};
pub use blob::{fingerprint_of_blob, key_type_of_blob};
pub use cert::{parse_certificate, CertificateInfo};
pub use error::KeyError;
pub use keyfile::{KeyFileError, OpensshKeyFile, PrivateKeyFile, MAX_NAME_IN_ERROR};
pub use keypair::{is_certificate_blob, is_encrypted_openssh_file, KeyPair};
pub use verify::verify_signature;

#[cfg(test)]
mod tests {
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn keypair_is_send_and_sync() {
        assert_send_sync::<crate::KeyPair>();
    }
}
