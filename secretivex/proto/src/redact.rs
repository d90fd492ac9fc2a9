//! `Debug` for the types that hold secrets, with the secrets replaced by their
//! length. A derived `Debug` would print private keys, PINs and passphrases
//! into any log line that formats a request with `{:?}`.

use std::fmt;

use crate::{CertPrivate, PrivateKeyWire, Request, SmartcardKey};

/// Shows a secret as `<N secret bytes>`.
struct Redacted(usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} secret bytes>", self.0)
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::RequestIdentities => f.write_str("RequestIdentities"),
            Request::Sign(s) => f.debug_tuple("Sign").field(s).finish(),
            Request::AddIdentity(a) => f.debug_tuple("AddIdentity").field(a).finish(),
            Request::RemoveIdentity { key_blob } => f
                .debug_struct("RemoveIdentity")
                .field("key_blob", key_blob)
                .finish(),
            Request::RemoveAllIdentities => f.write_str("RemoveAllIdentities"),
            Request::AddSmartcardKey(k) => f.debug_tuple("AddSmartcardKey").field(k).finish(),
            Request::RemoveSmartcardKey { id, pin } => f
                .debug_struct("RemoveSmartcardKey")
                .field("id", id)
                .field("pin", &Redacted(pin.len()))
                .finish(),
            Request::Lock { passphrase } => f
                .debug_struct("Lock")
                .field("passphrase", &Redacted(passphrase.len()))
                .finish(),
            Request::Unlock { passphrase } => f
                .debug_struct("Unlock")
                .field("passphrase", &Redacted(passphrase.len()))
                .finish(),
            Request::Extension(e) => f.debug_tuple("Extension").field(e).finish(),
            Request::Unknown { msg_type } => f
                .debug_struct("Unknown")
                .field("msg_type", msg_type)
                .finish(),
        }
    }
}

impl fmt::Debug for SmartcardKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmartcardKey")
            .field("id", &self.id)
            .field("pin", &Redacted(self.pin.len()))
            .field("constraints", &self.constraints)
            .finish()
    }
}

impl fmt::Debug for PrivateKeyWire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrivateKeyWire::Ed25519 { public, keypair } => f
                .debug_struct("Ed25519")
                .field("public", public)
                .field("keypair", &Redacted(keypair.len()))
                .finish(),
            PrivateKeyWire::Ecdsa {
                curve,
                public_point,
                scalar,
            } => f
                .debug_struct("Ecdsa")
                .field("curve", curve)
                .field("public_point", public_point)
                .field("scalar", &Redacted(scalar.len()))
                .finish(),
            PrivateKeyWire::Rsa {
                n,
                e,
                d,
                iqmp,
                p,
                q,
            } => f
                .debug_struct("Rsa")
                .field("n", n)
                .field("e", e)
                .field("d", &Redacted(d.len()))
                .field("iqmp", &Redacted(iqmp.len()))
                .field("p", &Redacted(p.len()))
                .field("q", &Redacted(q.len()))
                .finish(),
            PrivateKeyWire::Certificate { cert_blob, private } => f
                .debug_struct("Certificate")
                .field("cert_blob", cert_blob)
                .field("private", private)
                .finish(),
        }
    }
}

impl fmt::Debug for CertPrivate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertPrivate::Ed25519 { public, keypair } => f
                .debug_struct("Ed25519")
                .field("public", public)
                .field("keypair", &Redacted(keypair.len()))
                .finish(),
            CertPrivate::Ecdsa { scalar } => f
                .debug_struct("Ecdsa")
                .field("scalar", &Redacted(scalar.len()))
                .finish(),
            CertPrivate::Rsa { d, iqmp, p, q } => f
                .debug_struct("Rsa")
                .field("d", &Redacted(d.len()))
                .field("iqmp", &Redacted(iqmp.len()))
                .field("p", &Redacted(p.len()))
                .field("q", &Redacted(q.len()))
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use zeroize::Zeroizing;

    use super::*;

    #[test]
    fn secrets_are_not_printed() {
        let secret = vec![0xa5; 64];
        let printed = [
            format!(
                "{:?}",
                PrivateKeyWire::Ed25519 {
                    public: [7; 32],
                    keypair: Zeroizing::new(secret.clone()),
                }
            ),
            format!(
                "{:?}",
                Request::Lock {
                    passphrase: Zeroizing::new(secret.clone()),
                }
            ),
            format!(
                "{:?}",
                CertPrivate::Rsa {
                    d: Zeroizing::new(secret.clone()),
                    iqmp: Zeroizing::new(secret.clone()),
                    p: Zeroizing::new(secret.clone()),
                    q: Zeroizing::new(secret.clone()),
                }
            ),
            format!(
                "{:?}",
                SmartcardKey {
                    id: "tok".into(),
                    pin: Zeroizing::new(secret.clone()),
                    constraints: vec![],
                }
            ),
        ];
        for p in printed {
            // 0xa5 = 165 is how a derived Debug would show each byte.
            assert!(!p.contains("165"), "{p}");
            assert!(p.contains("<64 secret bytes>"), "{p}");
        }
    }
}
