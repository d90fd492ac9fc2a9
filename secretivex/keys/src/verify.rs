//! Verification of SSH signature blobs with `aws-lc-rs`.

use aws_lc_rs::rsa::PublicKeyComponents;
use aws_lc_rs::signature::{
    EcdsaVerificationAlgorithm, RsaParameters, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P384_SHA384_FIXED, ECDSA_P521_SHA512_FIXED, ED25519,
    RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY, RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
    RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
};
use secretivex_proto::EcdsaCurve;

use crate::blob::{plain_key_blob, PublicKeyParts};
use crate::signer::curve_info;
use crate::sshbuf::{bit_len, Reader};
use crate::KeyError;

/// Smallest RSA modulus accepted for verification: OpenSSH's own minimum
/// (`SSH_RSA_MINIMUM_MODULUS_SIZE`), so host keys OpenSSH accepts verify here too.
const RSA_VERIFY_MIN_BITS: usize = 1024;

/// Verifies an SSH signature blob (`string algorithm, string signature`) over `data` by the
/// key in `public_blob` (a plain public key blob, or a certificate blob whose certified key is
/// used; the certificate itself is not validated).
///
/// Supported: `ssh-ed25519`; `ecdsa-sha2-nistp256/384/521`; for RSA keys `rsa-sha2-256`,
/// `rsa-sha2-512` and legacy `ssh-rsa` (SHA-1), with moduli of 1024 to 8192 bits as OpenSSH
/// accepts. The signature algorithm must fit the key type and the blob must have no trailing
/// bytes. Never panics, whatever the input.
pub fn verify_signature(
    public_blob: &[u8],
    data: &[u8],
    signature_blob: &[u8],
) -> Result<(), KeyError> {
    let plain = plain_key_blob(public_blob)?;
    let key = PublicKeyParts::parse(&plain)?;
    let mut r = Reader::new(signature_blob);
    let alg = r.string()?;
    let sig = r.string()?;
    r.finish()?;
    match key {
        PublicKeyParts::Ed25519(pk) => {
            if alg != b"ssh-ed25519" {
                return Err(KeyError::SignatureAlgorithmMismatch);
            }
            UnparsedPublicKey::new(&ED25519, pk)
                .verify(data, sig)
                .map_err(|_| KeyError::BadSignature)
        }
        PublicKeyParts::Ecdsa { curve, point } => verify_ecdsa(curve, point, alg, sig, data),
        PublicKeyParts::Rsa { e, n } => verify_rsa(e, n, alg, sig, data),
    }
}

fn ecdsa_algorithm(curve: EcdsaCurve) -> &'static EcdsaVerificationAlgorithm {
    match curve {
        EcdsaCurve::NistP256 => &ECDSA_P256_SHA256_FIXED,
        EcdsaCurve::NistP384 => &ECDSA_P384_SHA384_FIXED,
        EcdsaCurve::NistP521 => &ECDSA_P521_SHA512_FIXED,
    }
}

fn verify_ecdsa(
    curve: EcdsaCurve,
    point: &[u8],
    alg: &[u8],
    sig: &[u8],
    data: &[u8],
) -> Result<(), KeyError> {
    let info = curve_info(curve);
    if alg != info.key_type.as_bytes() {
        return Err(KeyError::SignatureAlgorithmMismatch);
    }
    let mut inner = Reader::new(sig);
    let r = inner.positive_mpint()?;
    let s = inner.positive_mpint()?;
    inner.finish()?;
    // Re-encode as the fixed-width r ‖ s that aws-lc-rs verifies.
    let width = info.field_len;
    if r.len() > width || s.len() > width {
        return Err(KeyError::Malformed("ECDSA signature component too long"));
    }
    let mut fixed = Vec::with_capacity(width.saturating_mul(2));
    fixed.resize(width - r.len(), 0);
    fixed.extend_from_slice(r);
    fixed.resize(fixed.len() + (width - s.len()), 0);
    fixed.extend_from_slice(s);
    UnparsedPublicKey::new(ecdsa_algorithm(curve), point)
        .verify(data, &fixed)
        .map_err(|_| KeyError::BadSignature)
}

fn verify_rsa(e: &[u8], n: &[u8], alg: &[u8], sig: &[u8], data: &[u8]) -> Result<(), KeyError> {
    let params: &RsaParameters = match alg {
        b"rsa-sha2-256" => &RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
        b"rsa-sha2-512" => &RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
        b"ssh-rsa" => &RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
        _ => return Err(KeyError::SignatureAlgorithmMismatch),
    };
    let bits = bit_len(n);
    if !(RSA_VERIFY_MIN_BITS..=crate::RSA_MAX_BITS).contains(&bits) {
        return Err(KeyError::UnsupportedRsaKeySize { bits });
    }
    let modulus_len = n.len();
    // OpenSSH accepts signatures shorter than the modulus (leading zeros dropped by some
    // signers) and left-pads them; longer ones are invalid.
    let pad = modulus_len
        .checked_sub(sig.len())
        .ok_or(KeyError::Malformed("RSA signature longer than modulus"))?;
    let mut padded = vec![0u8; modulus_len];
    padded
        .get_mut(pad..)
        .ok_or(KeyError::Malformed("RSA signature length"))?
        .copy_from_slice(sig);
    PublicKeyComponents { n, e }
        .verify(params, data, &padded)
        .map_err(|_| KeyError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::ed25519_blob;

    #[test]
    fn garbage_is_rejected_without_panic() {
        let blob = ed25519_blob(&[1u8; 32]).unwrap();
        for sig in [
            &b""[..],
            b"\0\0\0\x0bssh-ed25519",
            b"\0\0\0\x0bssh-ed25519\0\0\0\x40",
            b"\xff\xff\xff\xff",
        ] {
            assert!(verify_signature(&blob, b"data", sig).is_err());
        }
        assert!(verify_signature(b"", b"", b"").is_err());
    }
}
