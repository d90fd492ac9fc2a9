//! The public key of an X.509 certificate stored on a token, for keys that have no public
//! key object (PIV cards and many others keep only the private key and its certificate).
//!
//! A minimal DER walk: `Certificate → tbsCertificate → subjectPublicKeyInfo`, then the
//! algorithm and key bits. Nothing else in the certificate is interpreted (the agent
//! offers the key, not the certificate's claims). Every length is checked; malformed
//! input gives `None`, never a panic.

use crate::sshenc::{self, KeyKind};

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;
const CONTEXT_0: u8 = 0xa0;

/// OID contents (without tag and length).
const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// One DER element: (tag, contents, rest of the input).
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    match element(input)? {
        (t, contents, rest) if t == tag => Some((contents, rest)),
        _ => None,
    }
}

/// The SSH public blob and key kind of the certificate's subject key.
pub fn public_key(cert_der: &[u8]) -> Option<(KeyKind, Vec<u8>)> {
    let (cert, _) = expect(cert_der, SEQUENCE)?;
    let (tbs, _) = expect(cert, SEQUENCE)?;
    let mut rest = tbs;
    if let Some((CONTEXT_0, _, after)) = element(rest) {
        rest = after; // version
    }
    // serialNumber, signature, issuer, validity, subject
    for _ in 0..5 {
        rest = element(rest)?.2;
    }
    let (spki, _) = expect(rest, SEQUENCE)?;
    let (alg, after_alg) = expect(spki, SEQUENCE)?;
    let (bits, _) = expect(after_alg, BIT_STRING)?;
    // Unused-bits byte first; keys are whole bytes.
    let key = match bits.split_first()? {
        (0, key) => key,
        _ => return None,
    };
    let (alg_oid, params) = expect(alg, OID)?;
    match alg_oid {
        RSA_ENCRYPTION => {
            let (seq, _) = expect(key, SEQUENCE)?;
            let (n, rest) = expect(seq, INTEGER)?;
            let (e, _) = expect(rest, INTEGER)?;
            Some((KeyKind::Rsa, sshenc::rsa_blob(n, e)))
        }
        EC_PUBLIC_KEY => {
            // The curve OID as a whole DER element, as in CKA_EC_PARAMS.
            let (_, _, after) = element(params)?;
            let curve = &params[..params.len() - after.len()];
            let kind = KeyKind::from_ec_params(curve)?;
            Some((kind, sshenc::ec_blob(kind, key)?))
        }
        ED25519 => Some((KeyKind::Ed25519, sshenc::ec_blob(KeyKind::Ed25519, key)?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        if contents.len() < 0x80 {
            v.push(contents.len() as u8);
        } else {
            v.push(0x82);
            v.extend_from_slice(&(contents.len() as u16).to_be_bytes());
        }
        v.extend_from_slice(contents);
        v
    }

    fn cert_with_spki(spki: &[u8]) -> Vec<u8> {
        let mut tbs = der(CONTEXT_0, &der(INTEGER, &[2]));
        tbs.extend(der(INTEGER, &[1])); // serial
        for _ in 0..4 {
            tbs.extend(der(SEQUENCE, &[])); // signature, issuer, validity, subject
        }
        tbs.extend_from_slice(spki);
        let mut cert = der(SEQUENCE, &tbs);
        cert.extend(der(SEQUENCE, &[])); // signatureAlgorithm
        cert.extend(der(BIT_STRING, &[0]));
        der(SEQUENCE, &cert)
    }

    #[test]
    fn ed25519_and_p256_subject_keys() {
        let mut bits = vec![0];
        bits.extend_from_slice(&[9; 32]);
        let mut spki = der(SEQUENCE, &der(OID, ED25519));
        spki.extend(der(BIT_STRING, &bits));
        let (kind, blob) = public_key(&cert_with_spki(&der(SEQUENCE, &spki))).unwrap();
        assert_eq!(kind, KeyKind::Ed25519);
        assert_eq!(blob, sshenc::ec_blob(KeyKind::Ed25519, &[9; 32]).unwrap());

        let mut alg = der(OID, EC_PUBLIC_KEY);
        alg.extend(der(OID, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]));
        let mut point = vec![0, 4];
        point.extend_from_slice(&[7; 64]);
        let mut spki = der(SEQUENCE, &alg);
        spki.extend(der(BIT_STRING, &point));
        let (kind, _) = public_key(&cert_with_spki(&der(SEQUENCE, &spki))).unwrap();
        assert_eq!(kind, KeyKind::P256);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = public_key(&bytes);
        }
    }
}
