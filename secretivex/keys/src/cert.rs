//! OpenSSH certificates (`PROTOCOL.certkeys`), parsed here rather than with `ssh-key`.
//!
//! `ssh-key` 0.6 refuses timestamps above `i64::MAX`, which rejects every certificate
//! `ssh-keygen -s` issues without `-V` (valid-before is `u64::MAX`, "forever"). The layout
//! is simple, so it is read directly with the bounds-checked [`Reader`].

use secretivex_proto::EcdsaCurve;

use crate::blob::{ecdsa_blob, ed25519_blob, rsa_blob};
use crate::sshbuf::Reader;
use crate::KeyError;

/// The fields of an OpenSSH certificate (`PROTOCOL.certkeys`) that callers act on.
///
/// Parsing does not check the CA signature or the validity period; callers that trust a
/// certificate must do that themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The plain public key blob of the certified key (e.g. an `ssh-ed25519` blob).
    pub key_blob: Vec<u8>,
    /// The CA's public key blob.
    pub signature_key: Vec<u8>,
    /// Key identifier chosen by the CA (`ssh-keygen -I`).
    pub key_id: String,
    /// Valid principals (user or host names); empty means "any" to OpenSSH.
    pub principals: Vec<String>,
    /// Start of validity, seconds since the Unix epoch.
    pub valid_after: u64,
    /// End of validity, seconds since the Unix epoch (`u64::MAX` = forever).
    pub valid_before: u64,
    /// 1 = user certificate, 2 = host certificate.
    pub cert_type: u32,
}

fn utf8(bytes: &[u8], what: &'static str) -> Result<String, KeyError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| KeyError::Malformed(what))
}

/// Parses an OpenSSH certificate blob (`*-cert-v01@openssh.com`).
///
/// The structure is checked (every field present, no trailing bytes, known key type,
/// certificate type 1 or 2); the CA signature is not verified.
pub fn parse_certificate(blob: &[u8]) -> Result<CertificateInfo, KeyError> {
    let mut r = Reader::new(blob);
    let cert_type_name = r.string()?;
    let _nonce = r.string()?;
    let key_blob = match cert_type_name {
        b"ssh-ed25519-cert-v01@openssh.com" => {
            let pk = r.string()?;
            if pk.len() != 32 {
                return Err(KeyError::Malformed("Ed25519 public key length"));
            }
            ed25519_blob(pk)?
        }
        b"ecdsa-sha2-nistp256-cert-v01@openssh.com"
        | b"ecdsa-sha2-nistp384-cert-v01@openssh.com"
        | b"ecdsa-sha2-nistp521-cert-v01@openssh.com" => {
            let curve = match cert_type_name {
                b"ecdsa-sha2-nistp256-cert-v01@openssh.com" => EcdsaCurve::NistP256,
                b"ecdsa-sha2-nistp384-cert-v01@openssh.com" => EcdsaCurve::NistP384,
                _ => EcdsaCurve::NistP521,
            };
            let ident = r.string()?;
            if ident != crate::signer::curve_info(curve).ident.as_bytes() {
                return Err(KeyError::Malformed("ECDSA curve does not match key type"));
            }
            ecdsa_blob(curve, r.string()?)?
        }
        b"ssh-rsa-cert-v01@openssh.com" => {
            let e = r.positive_mpint()?;
            let n = r.positive_mpint()?;
            rsa_blob(e, n)?
        }
        other => {
            return Err(KeyError::UnsupportedKeyType(
                String::from_utf8_lossy(other.get(..64).unwrap_or(other)).into_owned(),
            ))
        }
    };
    // Re-validate the certified key the same way plain blobs are.
    crate::blob::PublicKeyParts::parse(&key_blob)?;
    let _serial = read_u64(&mut r)?;
    let cert_type = r.u32()?;
    if !(1..=2).contains(&cert_type) {
        return Err(KeyError::Malformed("unknown certificate type"));
    }
    let key_id = utf8(r.string()?, "certificate key id is not UTF-8")?;
    let mut principals = Vec::new();
    let mut packed = Reader::new(r.string()?);
    while !packed.is_empty() {
        principals.push(utf8(packed.string()?, "principal is not UTF-8")?);
    }
    let valid_after = read_u64(&mut r)?;
    let valid_before = read_u64(&mut r)?;
    let _critical_options = r.string()?;
    let _extensions = r.string()?;
    let _reserved = r.string()?;
    let signature_key = r.string()?.to_vec();
    let _signature = r.string()?;
    r.finish()?;
    Ok(CertificateInfo {
        key_blob,
        signature_key,
        key_id,
        principals,
        valid_after,
        valid_before,
        cert_type,
    })
}

fn read_u64(r: &mut Reader<'_>) -> Result<u64, KeyError> {
    let high = u64::from(r.u32()?);
    let low = u64::from(r.u32()?);
    Ok((high << 32) | low)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sshbuf::put_string;

    fn cert(principals: &[&str], valid_before: u64, trailing: bool) -> Vec<u8> {
        let mut b = Vec::new();
        put_string(&mut b, b"ssh-ed25519-cert-v01@openssh.com").unwrap();
        put_string(&mut b, &[1u8; 32]).unwrap(); // nonce
        put_string(&mut b, &[2u8; 32]).unwrap(); // pk
        b.extend_from_slice(&7u64.to_be_bytes()); // serial
        b.extend_from_slice(&2u32.to_be_bytes()); // host cert
        put_string(&mut b, b"key-id").unwrap();
        let mut packed = Vec::new();
        for p in principals {
            put_string(&mut packed, p.as_bytes()).unwrap();
        }
        put_string(&mut b, &packed).unwrap();
        b.extend_from_slice(&5u64.to_be_bytes());
        b.extend_from_slice(&valid_before.to_be_bytes());
        put_string(&mut b, b"").unwrap();
        put_string(&mut b, b"").unwrap();
        put_string(&mut b, b"").unwrap();
        put_string(&mut b, &ed25519_blob(&[3u8; 32]).unwrap()).unwrap();
        put_string(&mut b, b"sig").unwrap();
        if trailing {
            b.push(0);
        }
        b
    }

    #[test]
    fn parses_fields_including_forever_validity() {
        let info = parse_certificate(&cert(&["a", "b"], u64::MAX, false)).unwrap();
        assert_eq!(info.key_blob, ed25519_blob(&[2u8; 32]).unwrap());
        assert_eq!(info.signature_key, ed25519_blob(&[3u8; 32]).unwrap());
        assert_eq!(info.key_id, "key-id");
        assert_eq!(info.principals, ["a", "b"]);
        assert_eq!((info.valid_after, info.valid_before), (5, u64::MAX));
        assert_eq!(info.cert_type, 2);
    }

    #[test]
    fn rejects_trailing_bytes_and_truncation() {
        assert!(parse_certificate(&cert(&[], 9, true)).is_err());
        let full = cert(&["x"], 9, false);
        for len in 0..full.len() {
            assert!(parse_certificate(&full[..len]).is_err(), "prefix {len}");
        }
    }
}
