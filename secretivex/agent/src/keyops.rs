//! The agent's narrow view of `secretivex-keys`: key parsing, session-bind verification,
//! host-certificate inspection, and which signature algorithms go with which key.

use std::time::{SystemTime, UNIX_EPOCH};

use secretivex_keys::KeyPair;
use secretivex_proto::{AddIdentity, CertPrivate, PrivateKeyWire, Request};
use zeroize::Zeroizing;

use crate::destination::{blob_key_type, CertInspector, HostCert};

/// Parses a key sent by `ssh-add`. The error text never contains key material.
pub fn key_from_wire(wire: &PrivateKeyWire) -> Result<KeyPair, String> {
    KeyPair::from_wire(wire).map_err(|e| e.to_string())
}

/// Encodes `wire` as an ADD_IDENTITY body (no comment, no constraints): the form in which
/// the key store seals private keys. The temporary copy of the key is zeroized on drop.
pub fn sealable_body(wire: &PrivateKeyWire) -> Zeroizing<Vec<u8>> {
    let request = Request::AddIdentity(AddIdentity {
        key: wire.clone(),
        comment: String::new(),
        constraints: Vec::new(),
    });
    let mut body = Zeroizing::new(Vec::new());
    request.encode_body(&mut body);
    body
}

/// Parses a key sealed by [`sealable_body`].
pub fn key_from_sealable_body(body: &[u8]) -> Option<KeyPair> {
    match Request::decode(body).ok()? {
        Request::AddIdentity(add) => KeyPair::from_wire(&add.key).ok(),
        _ => None,
    }
}

/// The wire form of `plain` presented with the certificate `cert_blob`.
pub fn certificate_wire(plain: &PrivateKeyWire, cert_blob: Vec<u8>) -> Option<PrivateKeyWire> {
    let private = match plain {
        PrivateKeyWire::Ed25519 { public, keypair } => CertPrivate::Ed25519 {
            public: *public,
            keypair: keypair.clone(),
        },
        PrivateKeyWire::Ecdsa { scalar, .. } => CertPrivate::Ecdsa {
            scalar: scalar.clone(),
        },
        PrivateKeyWire::Rsa { d, iqmp, p, q, .. } => CertPrivate::Rsa {
            d: d.clone(),
            iqmp: iqmp.clone(),
            p: p.clone(),
            q: q.clone(),
        },
        PrivateKeyWire::Certificate { .. } => return None,
    };
    Some(PrivateKeyWire::Certificate { cert_blob, private })
}

/// Verifies the host key's signature over the session identifier of a session bind.
pub fn verify_session_bind(host_key: &[u8], session_id: &[u8], signature: &[u8]) -> bool {
    secretivex_keys::verify_signature(host_key, session_id, signature).is_ok()
}

/// OpenSSH certificate type of host certificates.
const HOST_CERTIFICATE: u32 = 2;

/// Reads host certificates with `secretivex-keys`.
pub struct KeysCertInspector;

impl CertInspector for KeysCertInspector {
    fn host_cert(&self, blob: &[u8]) -> Option<HostCert> {
        let info = secretivex_keys::parse_certificate(blob).ok()?;
        Some(HostCert {
            signature_key: info.signature_key,
            is_host: info.cert_type == HOST_CERTIFICATE,
            principals: info.principals,
            valid_after: info.valid_after,
            valid_before: info.valid_before,
        })
    }

    fn now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

/// Does the public-key algorithm named in a userauth request belong to the key type of
/// `key_blob` (OpenSSH `sshkey_type_from_name(pkalg) == key->type`)? RSA keys may be
/// named by any of their signature algorithms.
pub fn algorithm_matches_key(algorithm: &str, key_blob: &[u8]) -> bool {
    let Some(key_type) = blob_key_type(key_blob) else {
        return false;
    };
    if algorithm == key_type {
        return true;
    }
    match key_type {
        "ssh-rsa" => matches!(algorithm, "rsa-sha2-256" | "rsa-sha2-512"),
        "ssh-rsa-cert-v01@openssh.com" => matches!(
            algorithm,
            "rsa-sha2-256-cert-v01@openssh.com" | "rsa-sha2-512-cert-v01@openssh.com"
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(t: &str) -> Vec<u8> {
        let mut b = (t.len() as u32).to_be_bytes().to_vec();
        b.extend_from_slice(t.as_bytes());
        b.extend_from_slice(&[0, 0, 0, 1, 9]);
        b
    }

    #[test]
    fn algorithms_match_key_types() {
        assert!(algorithm_matches_key("ssh-ed25519", &blob("ssh-ed25519")));
        assert!(algorithm_matches_key("rsa-sha2-512", &blob("ssh-rsa")));
        assert!(algorithm_matches_key("ssh-rsa", &blob("ssh-rsa")));
        assert!(algorithm_matches_key(
            "rsa-sha2-256-cert-v01@openssh.com",
            &blob("ssh-rsa-cert-v01@openssh.com")
        ));
        assert!(!algorithm_matches_key("ssh-ed25519", &blob("ssh-rsa")));
        assert!(!algorithm_matches_key(
            "rsa-sha2-256",
            &blob("ssh-rsa-cert-v01@openssh.com")
        ));
        assert!(!algorithm_matches_key(
            "ecdsa-sha2-nistp256",
            &blob("ecdsa-sha2-nistp384")
        ));
        assert!(!algorithm_matches_key("ssh-ed25519", &[1, 2]));
    }
}
