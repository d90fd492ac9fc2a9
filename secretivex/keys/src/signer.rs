//! The cached `aws-lc-rs` key objects and the SSH signature encodings.
//!
//! Each key is parsed into an `aws-lc-rs` key pair once; signing then costs one library call
//! plus the SSH framing. The objects are `Send + Sync` and signing takes `&self`, so one key
//! serves any number of threads at once.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPairComponents, PublicKeyComponents};
use aws_lc_rs::signature::{
    EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, RsaKeyPair, RsaSignatureEncoding,
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING,
    ECDSA_P521_SHA512_FIXED_SIGNING, RSA_PKCS1_SHA256, RSA_PKCS1_SHA512,
};
use secretivex_proto::sign_flags;
use secretivex_proto::EcdsaCurve;
use zeroize::Zeroizing;

use crate::legacy_rsa::{LegacyRsaKey, RsaComponents};
use crate::sshbuf::{bit_len, mpint_len, put_mpint, put_string, strip_leading_zeros};
use crate::{KeyAlgorithm, KeyError, RSA_MAX_BITS, RSA_MIN_BITS};

/// A private key ready to sign.
pub(crate) enum Signer {
    Ed25519(Ed25519KeyPair),
    Ecdsa {
        key: EcdsaKeyPair,
        curve: EcdsaCurve,
    },
    Rsa {
        key: RsaKeyPair,
        /// The same key as an AWS-LC `RSA` object, for legacy `ssh-rsa` (SHA-1) only.
        legacy: LegacyRsaKey,
        bits: usize,
    },
}

/// Per-curve constants.
pub(crate) struct CurveInfo {
    pub(crate) key_type: &'static str,
    pub(crate) ident: &'static str,
    /// Bytes of a field element / scalar.
    pub(crate) field_len: usize,
    pub(crate) signing: &'static EcdsaSigningAlgorithm,
}

pub(crate) fn curve_info(curve: EcdsaCurve) -> CurveInfo {
    match curve {
        EcdsaCurve::NistP256 => CurveInfo {
            key_type: "ecdsa-sha2-nistp256",
            ident: "nistp256",
            field_len: 32,
            signing: &ECDSA_P256_SHA256_FIXED_SIGNING,
        },
        EcdsaCurve::NistP384 => CurveInfo {
            key_type: "ecdsa-sha2-nistp384",
            ident: "nistp384",
            field_len: 48,
            signing: &ECDSA_P384_SHA384_FIXED_SIGNING,
        },
        EcdsaCurve::NistP521 => CurveInfo {
            key_type: "ecdsa-sha2-nistp521",
            ident: "nistp521",
            field_len: 66,
            signing: &ECDSA_P521_SHA512_FIXED_SIGNING,
        },
    }
}

/// Checks an RSA modulus size against what we sign with.
pub(crate) fn check_rsa_size(n: &[u8]) -> Result<usize, KeyError> {
    let bits = bit_len(n);
    if (RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
        Ok(bits)
    } else {
        Err(KeyError::UnsupportedRsaKeySize { bits })
    }
}

impl Signer {
    /// Ed25519 from the 32-byte seed; `aws-lc-rs` checks that it derives `public`.
    pub(crate) fn ed25519(seed: &[u8], public: &[u8]) -> Result<Self, KeyError> {
        if seed.len() != 32 || public.len() != 32 {
            return Err(KeyError::Malformed("Ed25519 key length"));
        }
        Ed25519KeyPair::from_seed_and_public_key(seed, public)
            .map(Signer::Ed25519)
            .map_err(|_| KeyError::InconsistentKey("Ed25519 seed does not match public key"))
    }

    /// ECDSA from the private scalar (any leading-zero form) and the SEC1 uncompressed point;
    /// `aws-lc-rs` checks that the scalar derives the point.
    pub(crate) fn ecdsa(curve: EcdsaCurve, scalar: &[u8], point: &[u8]) -> Result<Self, KeyError> {
        let info = curve_info(curve);
        let magnitude = strip_leading_zeros(scalar);
        // aws-lc-rs wants the scalar as a fixed-length big-endian integer.
        let offset = info
            .field_len
            .checked_sub(magnitude.len())
            .ok_or(KeyError::Malformed("ECDSA private scalar too long"))?;
        let mut fixed = Zeroizing::new(vec![0u8; info.field_len]);
        fixed
            .get_mut(offset..)
            .ok_or(KeyError::Malformed("ECDSA private scalar length"))?
            .copy_from_slice(magnitude);
        let key = EcdsaKeyPair::from_private_key_and_public_key(info.signing, &fixed, point)
            .map_err(|_| KeyError::InconsistentKey("ECDSA scalar does not match public point"))?;
        Ok(Signer::Ecdsa { key, curve })
    }

    /// RSA from OpenSSH's components; the CRT exponents are derived here and `aws-lc-rs`
    /// validates the whole set (`n = p·q`, `d·e ≡ 1`, exponents, `iqmp = q⁻¹ mod p`).
    /// Two AWS-LC key objects are built here, once per key: an `aws-lc-rs` key pair for
    /// `rsa-sha2-*`, and an AWS-LC `RSA` object (CRT form) for legacy `ssh-rsa`, which
    /// `aws-lc-rs` cannot sign (see [`crate::legacy_rsa`]).
    pub(crate) fn rsa(
        n: &[u8],
        e: &[u8],
        d: &[u8],
        p: &[u8],
        q: &[u8],
        iqmp: &[u8],
    ) -> Result<Self, KeyError> {
        let bits = check_rsa_size(n)?;
        let (dp, dq) = crate::rsa_crt::crt_exponents(d, p, q)?;
        let components = KeyPairComponents {
            public_key: PublicKeyComponents {
                n: strip_leading_zeros(n),
                e: strip_leading_zeros(e),
            },
            d,
            p,
            q,
            dP: dp.as_slice(),
            dQ: dq.as_slice(),
            qInv: iqmp,
        };
        let key = RsaKeyPair::from_components(&components)
            .map_err(|_| KeyError::InconsistentKey("RSA components are inconsistent"))?;
        let legacy = LegacyRsaKey::new(&RsaComponents {
            n,
            e,
            d,
            p,
            q,
            dp: dp.as_slice(),
            dq: dq.as_slice(),
            iqmp,
        })?;
        Ok(Signer::Rsa { key, legacy, bits })
    }

    pub(crate) fn algorithm(&self) -> KeyAlgorithm {
        match self {
            Signer::Ed25519(_) => KeyAlgorithm::Ed25519,
            Signer::Ecdsa { curve, .. } => match curve {
                EcdsaCurve::NistP256 => KeyAlgorithm::EcdsaP256,
                EcdsaCurve::NistP384 => KeyAlgorithm::EcdsaP384,
                EcdsaCurve::NistP521 => KeyAlgorithm::EcdsaP521,
            },
            Signer::Rsa { bits, .. } => KeyAlgorithm::Rsa { bits: *bits },
        }
    }

    /// Signs `data` and returns the SSH signature blob `string alg, string signature`.
    pub(crate) fn sign(&self, data: &[u8], flags: u32) -> Result<Vec<u8>, KeyError> {
        match self {
            Signer::Ed25519(key) => {
                let sig = key.try_sign(data).map_err(|_| KeyError::SigningFailed)?;
                let mut out = Vec::with_capacity(4 + 11 + 4 + 64);
                put_string(&mut out, b"ssh-ed25519")?;
                put_string(&mut out, sig.as_ref())?;
                Ok(out)
            }
            Signer::Ecdsa { key, curve } => {
                let info = curve_info(*curve);
                // The RNG argument is ignored by aws-lc-rs (it uses AWS-LC's own DRBG).
                let sig = key
                    .sign(&SystemRandom::new(), data)
                    .map_err(|_| KeyError::SigningFailed)?;
                let (r, s) = sig
                    .as_ref()
                    .split_at_checked(info.field_len)
                    .ok_or(KeyError::SigningFailed)?;
                let inner_len = mpint_len(r) + mpint_len(s);
                let mut out = Vec::with_capacity(8 + info.key_type.len() + inner_len);
                put_string(&mut out, info.key_type.as_bytes())?;
                let inner_len32 = u32::try_from(inner_len).map_err(|_| KeyError::SigningFailed)?;
                out.extend_from_slice(&inner_len32.to_be_bytes());
                put_mpint(&mut out, r)?;
                put_mpint(&mut out, s)?;
                Ok(out)
            }
            Signer::Rsa { key, legacy, .. } => {
                // OpenSSH's agent prefers SHA-256 when a client sets both flags.
                let sha2: Option<(&'static str, &'static RsaSignatureEncoding)> =
                    if flags & sign_flags::RSA_SHA2_256 != 0 {
                        Some(("rsa-sha2-256", &RSA_PKCS1_SHA256))
                    } else if flags & sign_flags::RSA_SHA2_512 != 0 {
                        Some(("rsa-sha2-512", &RSA_PKCS1_SHA512))
                    } else {
                        None
                    };
                let (name, sig) = match sha2 {
                    Some((name, encoding)) => {
                        let mut sig = vec![0u8; key.public_modulus_len()];
                        key.sign(encoding, &SystemRandom::new(), data, &mut sig)
                            .map_err(|_| KeyError::SigningFailed)?;
                        (name, sig)
                    }
                    // Legacy `ssh-rsa`: PKCS#1 v1.5 with SHA-1, which aws-lc-rs offers for
                    // verification only; made by the AWS-LC key cached next to it.
                    None => ("ssh-rsa", legacy.sign_sha1(data)?),
                };
                let mut out = Vec::with_capacity(8 + name.len() + sig.len());
                put_string(&mut out, name.as_bytes())?;
                put_string(&mut out, &sig)?;
                Ok(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn signer_is_send_and_sync() {
        assert_send_sync::<Signer>();
    }

    #[test]
    fn ed25519_rejects_wrong_public_key() {
        let seed = [7u8; 32];
        let good = Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
        let public = aws_lc_rs::signature::KeyPair::public_key(&good)
            .as_ref()
            .to_vec();
        assert!(Signer::ed25519(&seed, &public).is_ok());
        let mut wrong = public.clone();
        wrong[0] ^= 1;
        assert!(matches!(
            Signer::ed25519(&seed, &wrong),
            Err(KeyError::InconsistentKey(_))
        ));
        assert!(matches!(
            Signer::ed25519(&seed[..31], &public),
            Err(KeyError::Malformed(_))
        ));
    }

    #[test]
    fn rsa_size_limits() {
        let mut n = vec![0xffu8; 128];
        assert!(matches!(
            check_rsa_size(&n),
            Err(KeyError::UnsupportedRsaKeySize { bits: 1024 })
        ));
        n.resize(256, 0xff);
        assert_eq!(check_rsa_size(&n).unwrap(), 2048);
        n.resize(1025, 0xff);
        assert!(check_rsa_size(&n).is_err());
    }
}
