//! Token key material in SSH form: public blobs from PKCS#11 attributes, and the SSH
//! signature encodings of what `C_Sign` returns (RSA PKCS#1 v1.5 over a DigestInfo,
//! ECDSA raw r‖s → two mpints, EdDSA as is).

use aws_lc_rs::digest;

/// SSH agent flag: `rsa-sha2-256`.
const RSA_SHA2_256: u32 = 0x02;
/// SSH agent flag: `rsa-sha2-512`.
const RSA_SHA2_512: u32 = 0x04;

/// DER OIDs of the curves SSH names (`CKA_EC_PARAMS`).
const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// PKCS#11 3.0 also allows the curve name as a DER PrintableString.
const NAME_ED25519: &[u8] = b"\x13\x0cedwards25519";

/// DigestInfo prefixes (RFC 8017 §9.2 note 1).
const DI_SHA1: &[u8] = &[
    0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
];
const DI_SHA256: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
const DI_SHA512: &[u8] = &[
    0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05,
    0x00, 0x04, 0x40,
];

/// A key kind the helper can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA (any size the token has).
    Rsa,
    /// ECDSA on NIST P-256.
    P256,
    /// ECDSA on NIST P-384.
    P384,
    /// ECDSA on NIST P-521.
    P521,
    /// Ed25519.
    Ed25519,
}

impl KeyKind {
    /// The kind named by `CKA_EC_PARAMS` (EC and EC-Edwards keys).
    pub fn from_ec_params(params: &[u8]) -> Option<KeyKind> {
        match params {
            OID_P256 => Some(KeyKind::P256),
            OID_P384 => Some(KeyKind::P384),
            OID_P521 => Some(KeyKind::P521),
            OID_ED25519 | NAME_ED25519 => Some(KeyKind::Ed25519),
            _ => None,
        }
    }

    fn ecdsa_names(self) -> Option<(&'static str, &'static str, usize)> {
        match self {
            KeyKind::P256 => Some(("ecdsa-sha2-nistp256", "nistp256", 65)),
            KeyKind::P384 => Some(("ecdsa-sha2-nistp384", "nistp384", 97)),
            KeyKind::P521 => Some(("ecdsa-sha2-nistp521", "nistp521", 133)),
            _ => None,
        }
    }
}

fn put_string(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

/// An SSH mpint of a non-negative big-endian magnitude.
fn put_mpint(out: &mut Vec<u8>, magnitude: &[u8]) {
    let start = magnitude
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(magnitude.len());
    let m = &magnitude[start..];
    let pad = m.first().is_some_and(|&b| b & 0x80 != 0);
    out.extend_from_slice(&((m.len() + usize::from(pad)) as u32).to_be_bytes());
    if pad {
        out.push(0);
    }
    out.extend_from_slice(m);
}

/// Length of a `kind` public point (uncompressed for the NIST curves).
fn point_len(kind: KeyKind) -> Option<usize> {
    match kind {
        KeyKind::Ed25519 => Some(32),
        other => other.ecdsa_names().map(|(_, _, n)| n),
    }
}

/// Strips the DER OCTET STRING around `CKA_EC_POINT` (PKCS#11 asks for it; some modules
/// return the bare point). Either form is accepted only at the curve's point length, so
/// a bare point is never mistaken for a wrapped one or the reverse; else `None`.
pub fn unwrap_ec_point(kind: KeyKind, raw: &[u8]) -> Option<&[u8]> {
    let want = point_len(kind)?;
    let inner = match raw {
        [0x04, len, rest @ ..] if (*len as usize) < 0x80 => Some((*len as usize, rest)),
        [0x04, 0x81, len, rest @ ..] => Some((*len as usize, rest)),
        _ => None,
    };
    match inner {
        Some((n, rest)) if n == want && rest.len() == n => Some(rest),
        _ if raw.len() == want => Some(raw),
        _ => None,
    }
}

/// The SSH public blob of an RSA key.
pub fn rsa_blob(modulus: &[u8], exponent: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(modulus.len() + 32);
    put_string(&mut out, b"ssh-rsa");
    put_mpint(&mut out, exponent);
    put_mpint(&mut out, modulus);
    out
}

/// The SSH public blob of an EC or Ed25519 key from its (unwrapped) point; `None` when the
/// point does not fit the curve.
pub fn ec_blob(kind: KeyKind, point: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    if kind == KeyKind::Ed25519 {
        if point.len() != 32 {
            return None;
        }
        put_string(&mut out, b"ssh-ed25519");
        put_string(&mut out, point);
        return Some(out);
    }
    let (name, curve, len) = kind.ecdsa_names()?;
    if point.len() != len || point.first() != Some(&0x04) {
        return None;
    }
    put_string(&mut out, name.as_bytes());
    put_string(&mut out, curve.as_bytes());
    put_string(&mut out, point);
    Some(out)
}

/// What to hand `C_Sign` for a key of `kind`: the mechanism's input, and the SSH
/// algorithm name the signature will carry. RSA follows the agent flags (SHA-512 over
/// SHA-256, legacy SHA-1 `ssh-rsa` with neither); other kinds ignore them.
pub fn sign_input(kind: KeyKind, data: &[u8], flags: u32) -> (Vec<u8>, &'static str) {
    let digest_info = |prefix: &[u8], alg: &'static digest::Algorithm| {
        let mut v = prefix.to_vec();
        v.extend_from_slice(digest::digest(alg, data).as_ref());
        v
    };
    match kind {
        // SHA-512 wins when both flags are set, as in OpenSSH.
        KeyKind::Rsa if flags & RSA_SHA2_512 != 0 => {
            (digest_info(DI_SHA512, &digest::SHA512), "rsa-sha2-512")
        }
        KeyKind::Rsa if flags & RSA_SHA2_256 != 0 => {
            (digest_info(DI_SHA256, &digest::SHA256), "rsa-sha2-256")
        }
        KeyKind::Rsa => (
            digest_info(DI_SHA1, &digest::SHA1_FOR_LEGACY_USE_ONLY),
            "ssh-rsa",
        ),
        KeyKind::P256 => (
            digest::digest(&digest::SHA256, data).as_ref().to_vec(),
            "ecdsa-sha2-nistp256",
        ),
        KeyKind::P384 => (
            digest::digest(&digest::SHA384, data).as_ref().to_vec(),
            "ecdsa-sha2-nistp384",
        ),
        KeyKind::P521 => (
            digest::digest(&digest::SHA512, data).as_ref().to_vec(),
            "ecdsa-sha2-nistp521",
        ),
        KeyKind::Ed25519 => (data.to_vec(), "ssh-ed25519"),
    }
}

/// The SSH signature blob of a raw `C_Sign` output. `None` when the output has a shape
/// the mechanism cannot produce (an odd-length ECDSA signature, say).
pub fn ssh_signature(kind: KeyKind, algorithm: &str, raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len() + 40);
    put_string(&mut out, algorithm.as_bytes());
    match kind {
        KeyKind::Rsa => put_string(&mut out, raw),
        KeyKind::Ed25519 => {
            if raw.len() != 64 {
                return None;
            }
            put_string(&mut out, raw);
        }
        KeyKind::P256 | KeyKind::P384 | KeyKind::P521 => {
            // r || s, each exactly the curve's field size (32, 48, 66 bytes).
            let point = point_len(kind)?;
            if raw.len() != point - 1 {
                return None;
            }
            let (r, s) = raw.split_at(raw.len() / 2);
            let mut inner = Vec::with_capacity(raw.len() + 10);
            put_mpint(&mut inner, r);
            put_mpint(&mut inner, s);
            put_string(&mut out, &inner);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpints_strip_zeros_and_pad_high_bits() {
        let mut v = Vec::new();
        put_mpint(&mut v, &[0, 0, 0x80, 1]);
        assert_eq!(v, [0, 0, 0, 3, 0, 0x80, 1]);
        v.clear();
        put_mpint(&mut v, &[0, 0]);
        assert_eq!(v, [0, 0, 0, 0]);
    }

    #[test]
    fn ec_points_are_unwrapped_only_when_wrapped() {
        let mut point = vec![0x04];
        point.extend_from_slice(&[7; 64]);
        let mut wrapped = vec![0x04, 65];
        wrapped.extend_from_slice(&point);
        assert_eq!(unwrap_ec_point(KeyKind::P256, &wrapped), Some(&point[..]));
        assert_eq!(unwrap_ec_point(KeyKind::P256, &point), Some(&point[..]));
        // Wrong length for the curve, wrapped or bare: refused.
        assert_eq!(unwrap_ec_point(KeyKind::P384, &wrapped), None);
        assert_eq!(unwrap_ec_point(KeyKind::P384, &point), None);
        assert_eq!(unwrap_ec_point(KeyKind::P256, &point[..64]), None);
        let ed = [9u8; 32];
        let mut ed_wrapped = vec![0x04, 32];
        ed_wrapped.extend_from_slice(&ed);
        assert_eq!(
            unwrap_ec_point(KeyKind::Ed25519, &ed_wrapped),
            Some(&ed[..])
        );
        assert_eq!(unwrap_ec_point(KeyKind::Ed25519, &ed), Some(&ed[..]));
        assert!(ec_blob(KeyKind::P256, &point).is_some());
        assert!(ec_blob(KeyKind::P384, &point).is_none());
    }

    #[test]
    fn ecdsa_signature_is_two_mpints() {
        let sig = ssh_signature(KeyKind::P256, "ecdsa-sha2-nistp256", &[0x80; 64]).unwrap();
        // string alg (4+19), string inner (4 + 2*(4+33))
        assert_eq!(sig.len(), 4 + 19 + 4 + 2 * 37);
        assert!(ssh_signature(KeyKind::P256, "x", &[1; 63]).is_none());
        // Exactly 2 * field size per curve; an even but wrong length is refused too.
        for (kind, n) in [
            (KeyKind::P256, 64),
            (KeyKind::P384, 96),
            (KeyKind::P521, 132),
        ] {
            assert!(ssh_signature(kind, "x", &vec![1; n]).is_some(), "{n}");
            assert!(ssh_signature(kind, "x", &vec![1; n - 2]).is_none(), "{n}");
            assert!(ssh_signature(kind, "x", &vec![1; n + 2]).is_none(), "{n}");
        }
    }
}
