//! Public key blobs: type names, fingerprints, taking keys apart and building them.

use std::borrow::Cow;

use aws_lc_rs::digest;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use secretivex_proto::EcdsaCurve;

use crate::signer::curve_info;
use crate::sshbuf::{put_mpint, put_string, Reader};
use crate::{parse_certificate, KeyError};

/// Suffix of every OpenSSH certificate key type.
const CERT_SUFFIX: &str = "-cert-v01@openssh.com";

/// The key type name at the start of a public key or certificate blob, e.g. `ssh-ed25519` or
/// `ssh-rsa-cert-v01@openssh.com`.
pub fn key_type_of_blob(blob: &[u8]) -> Result<String, KeyError> {
    let name = Reader::new(blob).string()?;
    std::str::from_utf8(name)
        .map(str::to_owned)
        .map_err(|_| KeyError::Malformed("key type is not UTF-8"))
}

/// Whether a key type name is an OpenSSH certificate type.
pub(crate) fn is_cert_type(name: &[u8]) -> bool {
    name.ends_with(CERT_SUFFIX.as_bytes())
}

/// The plain public key blob of `blob`: `blob` itself for plain keys, the certified key for
/// certificates.
pub(crate) fn plain_key_blob(blob: &[u8]) -> Result<Cow<'_, [u8]>, KeyError> {
    let name = Reader::new(blob).string()?;
    if is_cert_type(name) {
        Ok(Cow::Owned(parse_certificate(blob)?.key_blob))
    } else {
        Ok(Cow::Borrowed(blob))
    }
}

/// `SHA256:<base64 without padding>` of a blob, the form `ssh-keygen -l` prints.
pub(crate) fn sha256_fingerprint(plain_blob: &[u8]) -> String {
    let hash = digest::digest(&digest::SHA256, plain_blob);
    format!("SHA256:{}", STANDARD_NO_PAD.encode(hash.as_ref()))
}

/// SHA-256 fingerprint of a public key blob as `ssh-keygen -l` prints it
/// (`SHA256:<base64 without padding>`).
///
/// For a certificate blob this is the fingerprint of the certified key, matching what
/// `ssh-add -l` and `ssh-keygen -l` show for certificates.
pub fn fingerprint_of_blob(blob: &[u8]) -> Result<String, KeyError> {
    let plain = plain_key_blob(blob)?;
    // Reject blobs that are not a key we understand, so garbage gets no fingerprint.
    PublicKeyParts::parse(&plain)?;
    Ok(sha256_fingerprint(&plain))
}

/// A plain public key blob taken apart (borrowing from the blob).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PublicKeyParts<'a> {
    Ed25519(&'a [u8]),
    Ecdsa { curve: EcdsaCurve, point: &'a [u8] },
    Rsa { e: &'a [u8], n: &'a [u8] },
}

impl<'a> PublicKeyParts<'a> {
    /// Parses a plain (non-certificate) public key blob; trailing bytes are refused.
    pub(crate) fn parse(blob: &'a [u8]) -> Result<Self, KeyError> {
        let mut r = Reader::new(blob);
        let name = r.string()?;
        let parts = match name {
            b"ssh-ed25519" => {
                let pk = r.string()?;
                if pk.len() != 32 {
                    return Err(KeyError::Malformed("Ed25519 public key length"));
                }
                PublicKeyParts::Ed25519(pk)
            }
            b"ecdsa-sha2-nistp256" | b"ecdsa-sha2-nistp384" | b"ecdsa-sha2-nistp521" => {
                let curve = match name {
                    b"ecdsa-sha2-nistp256" => EcdsaCurve::NistP256,
                    b"ecdsa-sha2-nistp384" => EcdsaCurve::NistP384,
                    _ => EcdsaCurve::NistP521,
                };
                let info = curve_info(curve);
                if r.string()? != info.ident.as_bytes() {
                    return Err(KeyError::Malformed("ECDSA curve does not match key type"));
                }
                let point = r.string()?;
                let expected = info.field_len.saturating_mul(2).saturating_add(1);
                if point.len() != expected || point.first() != Some(&0x04) {
                    return Err(KeyError::Malformed("ECDSA point is not uncompressed SEC1"));
                }
                PublicKeyParts::Ecdsa { curve, point }
            }
            b"ssh-rsa" => {
                let e = r.positive_mpint()?;
                let n = r.positive_mpint()?;
                PublicKeyParts::Rsa { e, n }
            }
            other => {
                return Err(KeyError::UnsupportedKeyType(
                    String::from_utf8_lossy(other.get(..64).unwrap_or(other)).into_owned(),
                ))
            }
        };
        r.finish()?;
        Ok(parts)
    }
}

/// `string "ssh-ed25519", string public`.
pub(crate) fn ed25519_blob(public: &[u8]) -> Result<Vec<u8>, KeyError> {
    let mut out = Vec::with_capacity(51);
    put_string(&mut out, b"ssh-ed25519")?;
    put_string(&mut out, public)?;
    Ok(out)
}

/// `string key-type, string curve, string point`.
pub(crate) fn ecdsa_blob(curve: EcdsaCurve, point: &[u8]) -> Result<Vec<u8>, KeyError> {
    let info = curve_info(curve);
    let mut out = Vec::with_capacity(48 + point.len());
    put_string(&mut out, info.key_type.as_bytes())?;
    put_string(&mut out, info.ident.as_bytes())?;
    put_string(&mut out, point)?;
    Ok(out)
}

/// `string "ssh-rsa", mpint e, mpint n`.
pub(crate) fn rsa_blob(e: &[u8], n: &[u8]) -> Result<Vec<u8>, KeyError> {
    let mut out = Vec::with_capacity(32 + n.len());
    put_string(&mut out, b"ssh-rsa")?;
    put_mpint(&mut out, e)?;
    put_mpint(&mut out, n)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_blob_roundtrip_and_fingerprint_shape() {
        let blob = ed25519_blob(&[9u8; 32]).unwrap();
        assert_eq!(key_type_of_blob(&blob).unwrap(), "ssh-ed25519");
        assert_eq!(
            PublicKeyParts::parse(&blob).unwrap(),
            PublicKeyParts::Ed25519(&[9u8; 32])
        );
        let fp = fingerprint_of_blob(&blob).unwrap();
        assert!(fp.starts_with("SHA256:"));
        assert_eq!(fp.len(), "SHA256:".len() + 43);
    }

    #[test]
    fn rejects_bad_blobs() {
        let mut blob = ed25519_blob(&[9u8; 32]).unwrap();
        blob.push(0);
        assert!(PublicKeyParts::parse(&blob).is_err());
        assert!(PublicKeyParts::parse(&ed25519_blob(&[9u8; 31]).unwrap()).is_err());
        assert!(ecdsa_blob(EcdsaCurve::NistP256, &[4u8; 65])
            .and_then(|b| PublicKeyParts::parse(&b).map(|_| ()))
            .is_ok());
        assert!(ecdsa_blob(EcdsaCurve::NistP384, &[4u8; 65])
            .and_then(|b| PublicKeyParts::parse(&b).map(|_| ()))
            .is_err());
        assert!(matches!(
            fingerprint_of_blob(b"\0\0\0\x07ssh-dss"),
            Err(KeyError::UnsupportedKeyType(_))
        ));
        assert!(key_type_of_blob(&[0, 0, 1]).is_err());
        assert!(parse_certificate(&blob).is_err());
    }
}
