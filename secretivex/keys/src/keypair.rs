//! [`KeyPair`]: a private key (optionally with its certificate) parsed once, ready to sign.

use std::fmt;
use std::sync::Arc;

use secretivex_proto::{CertPrivate, PrivateKeyWire};
use zeroize::Zeroizing;

use crate::blob::{
    ecdsa_blob, ed25519_blob, is_cert_type, rsa_blob, sha256_fingerprint, PublicKeyParts,
};
use crate::keyfile::{OpensshKeyFile, PrivateKeyFile};
use crate::parse_certificate;
use crate::signer::Signer;
use crate::sshbuf::Reader;
use crate::{KeyAlgorithm, KeyError};

/// A private key held in `aws-lc-rs` key objects, with its public blob and fingerprint.
///
/// Built once (from an agent add-identity request or an OpenSSH key file); [`sign`](Self::sign)
/// takes `&self` and may run on many threads at once. `KeyPair` is `Send + Sync`.
///
/// # Memory
///
/// No secret is kept in Rust-owned memory after construction: intermediates (seeds, scalars,
/// RSA CRT exponents) are held in [`zeroize::Zeroizing`] buffers and wiped when construction
/// returns. The private key lives inside AWS-LC objects allocated by AWS-LC (`EVP_PKEY`, and
/// for RSA also an `RSA` object for legacy `ssh-rsa` signatures); when the `KeyPair` is
/// dropped they are freed with `EVP_PKEY_free` / `RSA_free`, and AWS-LC's
/// `OPENSSL_free` zeroes every allocation before releasing it (documented in AWS-LC's
/// `openssl/mem.h`, implemented in `crypto/mem.c`), as long as no custom allocator hooks are
/// installed — this crate installs none. Copies in CPU registers or on the stack made by the
/// libraries are outside this guarantee.
pub struct KeyPair {
    /// Shared so that [`KeyPair::with_certificate`] reuses the parsed key.
    signer: Arc<Signer>,
    /// What the agent lists: the certificate blob for certificates.
    public_blob: Vec<u8>,
    /// The plain public key blob (same as `public_blob` for plain keys).
    key_blob: Vec<u8>,
    certificate: bool,
    fingerprint: String,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("algorithm", &self.algorithm())
            .field("certificate", &self.certificate)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    fn new(signer: Signer, public_blob: Vec<u8>, key_blob: Vec<u8>, certificate: bool) -> Self {
        let fingerprint = sha256_fingerprint(&key_blob);
        KeyPair {
            signer: Arc::new(signer),
            public_blob,
            key_blob,
            certificate,
            fingerprint,
        }
    }

    /// Builds a key from the fields of an agent add-identity request.
    ///
    /// Every key is checked for consistency by `aws-lc-rs` (Ed25519 seed against public key,
    /// ECDSA scalar against point, RSA `n = p·q` and the exponents). For certificates the
    /// certificate's public key must be the public half of the private key, or
    /// [`KeyError::CertificateMismatch`] is returned. RSA moduli outside 2048–8192 bits give
    /// [`KeyError::UnsupportedRsaKeySize`].
    pub fn from_wire(key: &PrivateKeyWire) -> Result<KeyPair, KeyError> {
        match key {
            PrivateKeyWire::Ed25519 { public, keypair } => {
                let seed = ed25519_seed(public, keypair)?;
                let signer = Signer::ed25519(seed, public)?;
                let blob = ed25519_blob(public)?;
                Ok(KeyPair::new(signer, blob.clone(), blob, false))
            }
            PrivateKeyWire::Ecdsa {
                curve,
                public_point,
                scalar,
            } => {
                let signer = Signer::ecdsa(*curve, scalar, public_point)?;
                let blob = ecdsa_blob(*curve, public_point)?;
                Ok(KeyPair::new(signer, blob.clone(), blob, false))
            }
            PrivateKeyWire::Rsa {
                n,
                e,
                d,
                iqmp,
                p,
                q,
            } => {
                let signer = Signer::rsa(n, e, d, p, q, iqmp)?;
                let blob = rsa_blob(e, n)?;
                Ok(KeyPair::new(signer, blob.clone(), blob, false))
            }
            PrivateKeyWire::Certificate { cert_blob, private } => {
                let info = parse_certificate(cert_blob)?;
                let parts = PublicKeyParts::parse(&info.key_blob)?;
                let signer = cert_signer(parts, private)?;
                Ok(KeyPair::new(signer, cert_blob.clone(), info.key_blob, true))
            }
        }
    }

    /// Loads an OpenSSH private key file (`-----BEGIN OPENSSH PRIVATE KEY-----`), parsed and
    /// decrypted by [`PrivateKeyFile::parse`], then checked by [`from_wire`](Self::from_wire).
    ///
    /// Encrypted files need `passphrase`: without one the error is
    /// [`KeyError::PassphraseRequired`], with a wrong one [`KeyError::WrongPassphrase`].
    /// Returns the key and the comment stored in the file.
    pub fn from_openssh_file(
        text: &str,
        passphrase: Option<&[u8]>,
    ) -> Result<(KeyPair, String), KeyError> {
        let file = PrivateKeyFile::parse(text, passphrase)?;
        Ok((KeyPair::from_wire(&file.key)?, file.comment))
    }

    /// Returns a new `KeyPair` that presents `cert_blob` (an OpenSSH certificate for this key)
    /// and shares this key's parsed private key.
    ///
    /// Fails with [`KeyError::CertificateMismatch`] unless the certificate certifies this
    /// key. Useful for loading `id_x` together with `id_x-cert.pub`, as `ssh-add` does.
    pub fn with_certificate(&self, cert_blob: &[u8]) -> Result<KeyPair, KeyError> {
        let info = parse_certificate(cert_blob)?;
        if info.key_blob != self.key_blob {
            return Err(KeyError::CertificateMismatch);
        }
        Ok(KeyPair {
            signer: Arc::clone(&self.signer),
            public_blob: cert_blob.to_vec(),
            key_blob: info.key_blob,
            certificate: true,
            fingerprint: self.fingerprint.clone(),
        })
    }

    /// The blob to list in identities answers: the certificate blob for certificate keys,
    /// the public key blob otherwise.
    pub fn public_blob(&self) -> &[u8] {
        &self.public_blob
    }

    /// The plain public key blob (the certified key for certificates).
    pub fn key_blob(&self) -> &[u8] {
        &self.key_blob
    }

    /// The key's algorithm (for certificates, of the certified key).
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.signer.algorithm()
    }

    /// Whether [`public_blob`](Self::public_blob) is an OpenSSH certificate.
    pub fn is_certificate(&self) -> bool {
        self.certificate
    }

    /// `SHA256:<base64 without padding>` of the plain public key, as `ssh-keygen -l` and
    /// `ssh-add -l` print it (for certificates, of the certified key).
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// Signs `data` and returns the SSH signature blob: `string algorithm, string signature`.
    ///
    /// * Ed25519: `ssh-ed25519`, 64-byte signature (RFC 8709).
    /// * ECDSA: `ecdsa-sha2-nistpN`, signature `string(mpint r, mpint s)` with SHA-256/384/512
    ///   for P-256/384/521 (RFC 5656).
    /// * RSA (RFC 8332): `flags` [`RSA_SHA2_256`](secretivex_proto::sign_flags::RSA_SHA2_256)
    ///   gives `rsa-sha2-256`, [`RSA_SHA2_512`](secretivex_proto::sign_flags::RSA_SHA2_512)
    ///   `rsa-sha2-512`; with both set SHA-256 wins, as in OpenSSH's agent. With neither
    ///   (flags `0`), the legacy `ssh-rsa`: RSASSA-PKCS1-v1_5 with SHA-1, as OpenSSH's agent
    ///   makes it. RSA certificates sign with the same plain names. Flags are ignored for
    ///   other key types.
    pub fn sign(&self, data: &[u8], flags: u32) -> Result<Vec<u8>, KeyError> {
        self.signer.sign(data, flags)
    }
}

/// Checks OpenSSH's 64-byte `seed ‖ public` form against `public` and returns the seed.
fn ed25519_seed<'a>(
    public: &[u8; 32],
    keypair: &'a Zeroizing<Vec<u8>>,
) -> Result<&'a [u8], KeyError> {
    if keypair.len() != 64 {
        return Err(KeyError::Malformed("Ed25519 private key length"));
    }
    let (seed, tail) = keypair.split_at(32);
    if tail != public.as_slice() {
        return Err(KeyError::InconsistentKey(
            "Ed25519 private key does not embed its public key",
        ));
    }
    Ok(seed)
}

/// Builds the signer for a certificate from the certified public key and the private part;
/// any disagreement between them is reported as [`KeyError::CertificateMismatch`].
fn cert_signer(parts: PublicKeyParts<'_>, private: &CertPrivate) -> Result<Signer, KeyError> {
    let mismatch = |err: KeyError| match err {
        KeyError::InconsistentKey(_) => KeyError::CertificateMismatch,
        other => other,
    };
    match (parts, private) {
        (PublicKeyParts::Ed25519(cert_pk), CertPrivate::Ed25519 { public, keypair }) => {
            if cert_pk != public.as_slice() {
                return Err(KeyError::CertificateMismatch);
            }
            let seed = ed25519_seed(public, keypair).map_err(mismatch)?;
            Signer::ed25519(seed, cert_pk).map_err(mismatch)
        }
        (PublicKeyParts::Ecdsa { curve, point }, CertPrivate::Ecdsa { scalar }) => {
            Signer::ecdsa(curve, scalar, point).map_err(mismatch)
        }
        (PublicKeyParts::Rsa { e, n }, CertPrivate::Rsa { d, iqmp, p, q }) => {
            Signer::rsa(n, e, d, p, q, iqmp).map_err(mismatch)
        }
        _ => Err(KeyError::CertificateMismatch),
    }
}

/// Whether an OpenSSH private key file is passphrase-protected (parses the container only;
/// no KDF runs).
pub fn is_encrypted_openssh_file(text: &str) -> Result<bool, KeyError> {
    Ok(OpensshKeyFile::parse(text)?.is_encrypted())
}

/// Whether a blob's type name marks it as a certificate (cheap; does not parse the rest).
pub fn is_certificate_blob(blob: &[u8]) -> bool {
    Reader::new(blob).string().is_ok_and(is_cert_type)
}
