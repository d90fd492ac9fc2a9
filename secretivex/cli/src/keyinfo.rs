//! What the client can tell about a listed key from its public blob alone: type, size,
//! fingerprint. Works for any key an agent may list, including types SecretiveX does not sign
//! with (DSA, security keys), so the client can report on them.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use secretivex_proto::Identity;
use sha2::{Digest, Sha256};

use crate::client::AgentClient;

const CERT_SUFFIX: &str = "-cert-v01@openssh.com";

/// Asks the agent for its identities and describes each one.
pub fn list_keys(client: &mut AgentClient) -> anyhow::Result<Vec<KeyInfo>> {
    use anyhow::Context as _;
    let ids = client.identities().context("listing identities")?;
    Ok(ids.iter().map(KeyInfo::of).collect())
}

/// A listed key, described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The SSH type name from the blob, e.g. `ssh-ed25519-cert-v01@openssh.com`.
    pub key_type: String,
    /// Whether the blob is an OpenSSH certificate.
    pub certificate: bool,
    /// Key size in bits as `ssh-keygen -l` counts it, when the type is known.
    pub bits: Option<u32>,
    /// `SHA256:…` of the plain key (for certificates: of the certified key, as OpenSSH shows).
    pub fingerprint: String,
    /// The comment the agent lists.
    pub comment: String,
    /// The blob as listed by the agent.
    pub blob: Vec<u8>,
}

impl KeyInfo {
    /// Describes one identity. Never fails: unknown or malformed blobs get no size and a
    /// fingerprint of the raw blob.
    pub fn of(identity: &Identity) -> KeyInfo {
        let blob = &identity.key_blob;
        let key_type = read_string(blob)
            .map(|(name, _)| String::from_utf8_lossy(name).into_owned())
            .unwrap_or_else(|| "unknown".to_string());
        let certificate = key_type.ends_with(CERT_SUFFIX);
        let plain = if certificate {
            secretivex_keys::parse_certificate(blob)
                .ok()
                .map(|c| c.key_blob)
        } else {
            Some(blob.clone())
        };
        let fingerprint = secretivex_keys::fingerprint_of_blob(blob).unwrap_or_else(|_| {
            let digest = Sha256::digest(plain.as_deref().unwrap_or(blob));
            format!("SHA256:{}", STANDARD_NO_PAD.encode(digest))
        });
        KeyInfo {
            bits: plain.as_deref().and_then(plain_key_bits),
            key_type,
            certificate,
            fingerprint,
            comment: identity.comment.clone(),
            blob: blob.clone(),
        }
    }

    /// The plain key type (`ssh-rsa` for `ssh-rsa-cert-v01@openssh.com`).
    pub fn base_type(&self) -> &str {
        self.key_type
            .strip_suffix(CERT_SUFFIX)
            .unwrap_or(&self.key_type)
    }

    /// The short label `ssh-add -l` prints in parentheses: `ED25519`, `RSA-CERT`, ….
    pub fn label(&self) -> String {
        let base = match self.base_type() {
            "ssh-ed25519" => "ED25519",
            "ssh-rsa" => "RSA",
            "ssh-dss" => "DSA",
            "sk-ssh-ed25519@openssh.com" => "ED25519-SK",
            "sk-ecdsa-sha2-nistp256@openssh.com" => "ECDSA-SK",
            t if t.starts_with("ecdsa-sha2-") => "ECDSA",
            other => other,
        };
        if self.certificate {
            format!("{base}-CERT")
        } else {
            base.to_string()
        }
    }

    /// The blob in base64, as in `.pub` files.
    pub fn blob_base64(&self) -> String {
        STANDARD.encode(&self.blob)
    }
}

/// Size in bits of a plain public key blob, for the types OpenSSH lists.
fn plain_key_bits(blob: &[u8]) -> Option<u32> {
    let (name, rest) = read_string(blob)?;
    match name {
        b"ssh-ed25519" | b"sk-ssh-ed25519@openssh.com" => Some(256),
        b"ecdsa-sha2-nistp256" | b"sk-ecdsa-sha2-nistp256@openssh.com" => Some(256),
        b"ecdsa-sha2-nistp384" => Some(384),
        b"ecdsa-sha2-nistp521" => Some(521),
        b"ssh-rsa" => {
            let (_e, rest) = read_string(rest)?;
            let (n, _) = read_string(rest)?;
            mpint_bits(n)
        }
        b"ssh-dss" => {
            let (p, _) = read_string(rest)?;
            mpint_bits(p)
        }
        _ => None,
    }
}

/// Bit length of an SSH mpint magnitude (leading zero bytes ignored).
fn mpint_bits(n: &[u8]) -> Option<u32> {
    let first = n.iter().position(|&b| b != 0)?;
    let bytes = u32::try_from(n.len().checked_sub(first)?).ok()?;
    let top = n.get(first)?;
    bytes
        .checked_sub(1)?
        .checked_mul(8)?
        .checked_add(8 - top.leading_zeros())
}

/// Reads an SSH string; returns (contents, rest).
fn read_string(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = buf.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    if rest.len() < len {
        return None;
    }
    Some(rest.split_at(len))
}

/// Test helpers shared by the unit tests of several modules.
#[cfg(test)]
pub(crate) mod testkeys {
    pub fn string(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&u32::try_from(bytes.len()).unwrap().to_be_bytes());
        out.extend_from_slice(bytes);
    }

    /// A syntactically valid `ssh-rsa` blob with a modulus of `bits` bits.
    pub fn rsa_blob(bits: usize, seed: u8) -> Vec<u8> {
        let mut n = vec![seed | 1; bits / 8];
        n[0] = 0x80 | seed;
        let mut blob = Vec::new();
        string(&mut blob, b"ssh-rsa");
        string(&mut blob, &[1, 0, 1]);
        let mut mpint = vec![0u8];
        mpint.extend_from_slice(&n);
        string(&mut blob, &mpint);
        blob
    }

    pub fn ed25519_blob(seed: u8) -> Vec<u8> {
        let mut blob = Vec::new();
        string(&mut blob, b"ssh-ed25519");
        string(&mut blob, &[seed; 32]);
        blob
    }

    pub fn dsa_blob() -> Vec<u8> {
        let mut blob = Vec::new();
        string(&mut blob, b"ssh-dss");
        let mut p = vec![0u8];
        p.extend_from_slice(&[0xc5; 128]);
        for field in [&p[..], &[7; 20], &[5; 128], &[3; 128]] {
            string(&mut blob, field);
        }
        blob
    }
}

#[cfg(test)]
mod tests {
    use super::testkeys::*;
    use super::*;

    fn id(blob: Vec<u8>) -> Identity {
        Identity {
            key_blob: blob,
            comment: "c".into(),
        }
    }

    #[test]
    fn sizes_and_labels() {
        let rsa = KeyInfo::of(&id(rsa_blob(3072, 3)));
        assert_eq!((rsa.bits, rsa.label().as_str()), (Some(3072), "RSA"));
        let ed = KeyInfo::of(&id(ed25519_blob(1)));
        assert_eq!((ed.bits, ed.label().as_str()), (Some(256), "ED25519"));
        let dsa = KeyInfo::of(&id(dsa_blob()));
        assert_eq!((dsa.bits, dsa.label().as_str()), (Some(1024), "DSA"));
        assert!(dsa.fingerprint.starts_with("SHA256:"));
    }

    #[test]
    fn garbage_blob_is_described_not_fatal() {
        let info = KeyInfo::of(&id(vec![0xff, 0xff, 0xff, 0xff, 1]));
        assert_eq!(info.key_type, "unknown");
        assert_eq!(info.bits, None);
        assert!(info.fingerprint.starts_with("SHA256:"));
    }

    #[test]
    fn mpint_bit_length() {
        assert_eq!(mpint_bits(&[0, 0x80, 0]), Some(16));
        assert_eq!(mpint_bits(&[0x01]), Some(1));
        assert_eq!(mpint_bits(&[0, 0]), None);
    }
}
