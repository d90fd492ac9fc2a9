//! Private keys as `ssh-add` sends them (OpenSSH `sshkey_private_serialize`).
//!
//! Layout after the key type name:
//!
//! | type | fields |
//! |---|---|
//! | `ssh-ed25519` | string pk (32), string sk (64: seed ‖ pk) |
//! | `ecdsa-sha2-nistpN` | string curve (`nistpN`), string Q (SEC1 uncompressed), mpint d |
//! | `ssh-rsa` | mpint n, e, d, iqmp, p, q |
//! | `*-cert-v01@openssh.com` | string certificate, then the private part only: ed25519 → pk, sk; ecdsa → d; rsa → d, iqmp, p, q |
//!
//! Security-key (`sk-*`), DSA and ML-DSA keys are refused with
//! [`ProtoError::UnsupportedKeyType`]. Only the format is checked here; whether
//! the numbers form a valid key is the key crate's job.

use zeroize::Zeroizing;

use crate::error::ProtoError;
use crate::reader::Reader;
use crate::writer::{append_exact, Sink};
use crate::{CertPrivate, EcdsaCurve, PrivateKeyWire};

/// `ssh-ed25519`.
pub const ED25519: &str = "ssh-ed25519";
/// `ssh-rsa`.
pub const RSA: &str = "ssh-rsa";
/// `ssh-ed25519-cert-v01@openssh.com`.
pub const ED25519_CERT: &str = "ssh-ed25519-cert-v01@openssh.com";
/// `ssh-rsa-cert-v01@openssh.com`.
pub const RSA_CERT: &str = "ssh-rsa-cert-v01@openssh.com";

/// Length of an Ed25519 public key.
pub const ED25519_PUBLIC_LEN: usize = 32;
/// Length of OpenSSH's Ed25519 private key (seed ‖ public).
pub const ED25519_KEYPAIR_LEN: usize = 64;

impl EcdsaCurve {
    /// Every supported curve.
    pub const ALL: [EcdsaCurve; 3] = [
        EcdsaCurve::NistP256,
        EcdsaCurve::NistP384,
        EcdsaCurve::NistP521,
    ];

    /// The SSH curve identifier, e.g. `nistp256`.
    pub fn identifier(self) -> &'static str {
        match self {
            EcdsaCurve::NistP256 => "nistp256",
            EcdsaCurve::NistP384 => "nistp384",
            EcdsaCurve::NistP521 => "nistp521",
        }
    }

    /// The key type name, e.g. `ecdsa-sha2-nistp256`.
    pub fn key_type(self) -> &'static str {
        match self {
            EcdsaCurve::NistP256 => "ecdsa-sha2-nistp256",
            EcdsaCurve::NistP384 => "ecdsa-sha2-nistp384",
            EcdsaCurve::NistP521 => "ecdsa-sha2-nistp521",
        }
    }

    /// The certificate type name, e.g. `ecdsa-sha2-nistp256-cert-v01@openssh.com`.
    pub fn cert_type(self) -> &'static str {
        match self {
            EcdsaCurve::NistP256 => "ecdsa-sha2-nistp256-cert-v01@openssh.com",
            EcdsaCurve::NistP384 => "ecdsa-sha2-nistp384-cert-v01@openssh.com",
            EcdsaCurve::NistP521 => "ecdsa-sha2-nistp521-cert-v01@openssh.com",
        }
    }

    /// Length in bytes of a field element / private scalar (32, 48, 66).
    pub fn scalar_len(self) -> usize {
        match self {
            EcdsaCurve::NistP256 => 32,
            EcdsaCurve::NistP384 => 48,
            EcdsaCurve::NistP521 => 66,
        }
    }

    /// Length of an uncompressed SEC1 point: `0x04 ‖ x ‖ y`.
    pub fn point_len(self) -> usize {
        self.scalar_len().saturating_mul(2).saturating_add(1)
    }

    /// Looks a curve up by its identifier (`nistp256`, ...).
    pub fn from_identifier(id: &[u8]) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.identifier().as_bytes() == id)
    }

    fn from_key_type(name: &[u8]) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.key_type().as_bytes() == name)
    }

    fn from_cert_type(name: &[u8]) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.cert_type().as_bytes() == name)
    }
}

/// Reads the key type name at the start of a public key or certificate blob.
///
/// Returns `None` when the blob does not start with a well-formed UTF-8 string.
pub fn blob_type_name(blob: &[u8]) -> Option<&str> {
    Reader::new(blob).cstring("key type").ok()
}

impl PrivateKeyWire {
    /// The key type name this key is sent under, e.g. `ssh-ed25519` or
    /// `ssh-rsa-cert-v01@openssh.com`. For a certificate it is read from the
    /// blob, so it is `None` when the blob is malformed.
    pub fn type_name(&self) -> Option<&str> {
        match self {
            PrivateKeyWire::Ed25519 { .. } => Some(ED25519),
            PrivateKeyWire::Ecdsa { curve, .. } => Some(curve.key_type()),
            PrivateKeyWire::Rsa { .. } => Some(RSA),
            PrivateKeyWire::Certificate { cert_blob, .. } => blob_type_name(cert_blob),
        }
    }

    /// The public key blob (RFC 4253 §6.6 encoding) the agent lists for this key
    /// and that clients name in sign and remove requests. For a certificate it
    /// is the certificate blob itself.
    pub fn public_blob(&self) -> Vec<u8> {
        let mut out = Vec::new();
        append_exact(&mut out, |s| self.write_public_blob(s));
        out
    }

    fn write_public_blob(&self, s: &mut dyn Sink) {
        match self {
            PrivateKeyWire::Ed25519 { public, .. } => {
                s.put_string(ED25519.as_bytes());
                s.put_string(public);
            }
            PrivateKeyWire::Ecdsa {
                curve,
                public_point,
                ..
            } => {
                s.put_string(curve.key_type().as_bytes());
                s.put_string(curve.identifier().as_bytes());
                s.put_string(public_point);
            }
            PrivateKeyWire::Rsa { n, e, .. } => {
                s.put_string(RSA.as_bytes());
                s.put_mpint(e);
                s.put_mpint(n);
            }
            PrivateKeyWire::Certificate { cert_blob, .. } => s.put(cert_blob),
        }
    }

    /// Appends the wire encoding (type name and fields) to `out`.
    ///
    /// `out` receives secret key material: the caller should hold it in a
    /// `Zeroizing` buffer. The exact size is reserved first so `out` does not
    /// reallocate (and leave copies behind) while secrets are written.
    ///
    /// A certificate whose blob has no readable type name is written with an
    /// empty type name, which every agent refuses.
    pub fn encode(&self, out: &mut Vec<u8>) {
        append_exact(out, |s| self.write(s));
    }

    pub(crate) fn write(&self, s: &mut dyn Sink) {
        match self {
            PrivateKeyWire::Ed25519 { public, keypair } => {
                s.put_string(ED25519.as_bytes());
                s.put_string(public);
                s.put_string(keypair);
            }
            PrivateKeyWire::Ecdsa {
                curve,
                public_point,
                scalar,
            } => {
                s.put_string(curve.key_type().as_bytes());
                s.put_string(curve.identifier().as_bytes());
                s.put_string(public_point);
                s.put_mpint(scalar);
            }
            PrivateKeyWire::Rsa {
                n,
                e,
                d,
                iqmp,
                p,
                q,
            } => {
                s.put_string(RSA.as_bytes());
                for v in [n.as_slice(), e, d, iqmp, p, q] {
                    s.put_mpint(v);
                }
            }
            PrivateKeyWire::Certificate { cert_blob, private } => {
                s.put_string(blob_type_name(cert_blob).unwrap_or_default().as_bytes());
                s.put_string(cert_blob);
                match private {
                    CertPrivate::Ed25519 { public, keypair } => {
                        s.put_string(public);
                        s.put_string(keypair);
                    }
                    CertPrivate::Ecdsa { scalar } => s.put_mpint(scalar),
                    CertPrivate::Rsa { d, iqmp, p, q } => {
                        for v in [d, iqmp, p, q] {
                            s.put_mpint(v);
                        }
                    }
                }
            }
        }
    }

    /// Decodes a private key in OpenSSH's `sshkey_private_serialize` form (what `ssh-add`
    /// sends, without the message type) from the front of `bytes`, and returns it with the
    /// bytes that follow it.
    ///
    /// OpenSSH key files (`openssh-key-v1`) store the private key in this same form,
    /// followed by a comment and padding, which is why the rest is returned rather than
    /// refused as trailing bytes.
    pub fn decode_prefix(bytes: &[u8]) -> Result<(PrivateKeyWire, &[u8]), ProtoError> {
        let mut r = Reader::new(bytes);
        let key = Self::read(&mut r)?;
        Ok((key, r.rest()))
    }

    /// Decodes a private key from the front of `r`, leaving the reader just past it.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, ProtoError> {
        let name = r.string("key type")?;
        if name == ED25519.as_bytes() {
            let (public, keypair) = read_ed25519_private(r)?;
            return Ok(PrivateKeyWire::Ed25519 { public, keypair });
        }
        if name == RSA.as_bytes() {
            let n = r.mpint("rsa n")?.to_vec();
            let e = r.mpint("rsa e")?.to_vec();
            let [d, iqmp, p, q] = read_rsa_private(r)?;
            return Ok(PrivateKeyWire::Rsa {
                n,
                e,
                d,
                iqmp,
                p,
                q,
            });
        }
        if let Some(curve) = EcdsaCurve::from_key_type(name) {
            let id = r.cstring_bytes("ecdsa curve")?;
            if EcdsaCurve::from_identifier(id) != Some(curve) {
                return Err(ProtoError::CurveMismatch {
                    key_type: curve.key_type().to_owned(),
                    curve: crate::error::bounded_name(id),
                });
            }
            let point = r.string("ecdsa public point")?;
            check_point(curve, point)?;
            let scalar = read_ec_scalar(r, curve)?;
            return Ok(PrivateKeyWire::Ecdsa {
                curve,
                public_point: point.to_vec(),
                scalar,
            });
        }
        let cert_kind = if name == ED25519_CERT.as_bytes() {
            CertKind::Ed25519
        } else if name == RSA_CERT.as_bytes() {
            CertKind::Rsa
        } else if let Some(curve) = EcdsaCurve::from_cert_type(name) {
            CertKind::Ecdsa(curve)
        } else {
            return Err(ProtoError::unsupported_key_type(name));
        };
        let cert_blob = r.string("certificate")?;
        let inner = Reader::new(cert_blob)
            .string("certificate type")
            .map_err(|_| ProtoError::MalformedCertificate)?;
        if inner != name {
            return Err(ProtoError::CertTypeMismatch {
                declared: crate::error::bounded_name(name),
                actual: crate::error::bounded_name(inner),
            });
        }
        let private = match cert_kind {
            CertKind::Ed25519 => {
                let (public, keypair) = read_ed25519_private(r)?;
                CertPrivate::Ed25519 { public, keypair }
            }
            CertKind::Ecdsa(curve) => CertPrivate::Ecdsa {
                scalar: read_ec_scalar(r, curve)?,
            },
            CertKind::Rsa => {
                let [d, iqmp, p, q] = read_rsa_private(r)?;
                CertPrivate::Rsa { d, iqmp, p, q }
            }
        };
        Ok(PrivateKeyWire::Certificate {
            cert_blob: cert_blob.to_vec(),
            private,
        })
    }
}

enum CertKind {
    Ed25519,
    Ecdsa(EcdsaCurve),
    Rsa,
}

fn read_ed25519_private(
    r: &mut Reader<'_>,
) -> Result<([u8; ED25519_PUBLIC_LEN], Zeroizing<Vec<u8>>), ProtoError> {
    let pk = r.string("ed25519 public key")?;
    let public: [u8; ED25519_PUBLIC_LEN] =
        pk.try_into().map_err(|_| ProtoError::BadFieldLength {
            what: "ed25519 public key",
            expected: ED25519_PUBLIC_LEN,
            actual: pk.len(),
        })?;
    let sk = r.string("ed25519 private key")?;
    if sk.len() != ED25519_KEYPAIR_LEN {
        return Err(ProtoError::BadFieldLength {
            what: "ed25519 private key",
            expected: ED25519_KEYPAIR_LEN,
            actual: sk.len(),
        });
    }
    Ok((public, Zeroizing::new(sk.to_vec())))
}

fn read_rsa_private(r: &mut Reader<'_>) -> Result<[Zeroizing<Vec<u8>>; 4], ProtoError> {
    let d = Zeroizing::new(r.mpint("rsa d")?.to_vec());
    let iqmp = Zeroizing::new(r.mpint("rsa iqmp")?.to_vec());
    let p = Zeroizing::new(r.mpint("rsa p")?.to_vec());
    let q = Zeroizing::new(r.mpint("rsa q")?.to_vec());
    Ok([d, iqmp, p, q])
}

fn read_ec_scalar(r: &mut Reader<'_>, curve: EcdsaCurve) -> Result<Zeroizing<Vec<u8>>, ProtoError> {
    let d = r.mpint("ecdsa private scalar")?;
    if d.len() > curve.scalar_len() {
        return Err(ProtoError::BadEcScalar);
    }
    Ok(Zeroizing::new(d.to_vec()))
}

fn check_point(curve: EcdsaCurve, point: &[u8]) -> Result<(), ProtoError> {
    if point.len() != curve.point_len() || point.first() != Some(&0x04) {
        return Err(ProtoError::BadEcPoint);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_prefix_returns_the_key_and_what_follows() {
        let key = PrivateKeyWire::Ecdsa {
            curve: EcdsaCurve::NistP521,
            public_point: {
                let mut p = vec![0x04];
                p.extend_from_slice(&[7u8; 132]);
                p
            },
            // A scalar shorter than the curve size, as OpenSSH writes minimal mpints.
            scalar: Zeroizing::new(vec![0x01, 0x02, 0x03]),
        };
        let mut bytes = Vec::new();
        key.encode(&mut bytes);
        let encoded_len = bytes.len();
        bytes.extend_from_slice(b"\0\0\0\x07comment\x01\x02");
        let (decoded, rest) = PrivateKeyWire::decode_prefix(&bytes).unwrap();
        assert_eq!(decoded, key);
        assert_eq!(rest, &bytes[encoded_len..]);

        // Nothing after the key: the rest is empty.
        let (_, rest) = PrivateKeyWire::decode_prefix(&bytes[..encoded_len]).unwrap();
        assert!(rest.is_empty());
        // A truncated key is an error, not a shorter key.
        assert!(PrivateKeyWire::decode_prefix(&bytes[..encoded_len - 1]).is_err());
        assert!(matches!(
            PrivateKeyWire::decode_prefix(b"\0\0\0\x07ssh-dss"),
            Err(ProtoError::UnsupportedKeyType(_))
        ));
    }
}
