//! From `ssh-key`'s parsed private keys to the agent wire form, so that key files and
//! add-identity requests go through the same checks in [`KeyPair::from_wire`](crate::KeyPair::from_wire).

use secretivex_proto::{EcdsaCurve, PrivateKeyWire};
use ssh_key::private::KeypairData;
use ssh_key::Mpint;
use zeroize::Zeroizing;

use crate::KeyError;

fn positive(m: &Mpint) -> Result<&[u8], KeyError> {
    m.as_positive_bytes()
        .ok_or(KeyError::Malformed("negative RSA component"))
}

fn secret(m: &Mpint) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    Ok(Zeroizing::new(positive(m)?.to_vec()))
}

/// The wire form of a decrypted `ssh-key` private key. Secrets are copied into
/// [`Zeroizing`] buffers.
pub fn wire_from_ssh_key(key: &ssh_key::PrivateKey) -> Result<PrivateKeyWire, KeyError> {
    match key.key_data() {
        KeypairData::Ed25519(kp) => {
            let public = kp.public.0;
            let seed = Zeroizing::new(kp.private.to_bytes());
            let mut keypair = Zeroizing::new(Vec::with_capacity(64));
            keypair.extend_from_slice(seed.as_slice());
            keypair.extend_from_slice(&public);
            Ok(PrivateKeyWire::Ed25519 { public, keypair })
        }
        KeypairData::Ecdsa(kp) => {
            let curve = match kp.curve() {
                ssh_key::EcdsaCurve::NistP256 => EcdsaCurve::NistP256,
                ssh_key::EcdsaCurve::NistP384 => EcdsaCurve::NistP384,
                ssh_key::EcdsaCurve::NistP521 => EcdsaCurve::NistP521,
            };
            Ok(PrivateKeyWire::Ecdsa {
                curve,
                public_point: kp.public_key_bytes().to_vec(),
                scalar: Zeroizing::new(kp.private_key_bytes().to_vec()),
            })
        }
        KeypairData::Rsa(kp) => Ok(PrivateKeyWire::Rsa {
            n: positive(&kp.public.n)?.to_vec(),
            e: positive(&kp.public.e)?.to_vec(),
            d: secret(&kp.private.d)?,
            iqmp: secret(&kp.private.iqmp)?,
            p: secret(&kp.private.p)?,
            q: secret(&kp.private.q)?,
        }),
        KeypairData::Encrypted(_) => Err(KeyError::PassphraseRequired),
        _ => Err(KeyError::UnsupportedKeyType(key.algorithm().to_string())),
    }
}
