//! Signed checkpoints in the transparency-log "signed note" style (C2SP `tlog-checkpoint`
//! and `signed-note`), signed with Ed25519 through aws-lc-rs.
//!
//! ```text
//! <origin>\n
//! <tree size, decimal>\n
//! <root hash, standard base64>\n
//! \n
//! — <key name> <base64(key id (4 bytes) ‖ Ed25519 signature (64 bytes))>\n
//! ```
//!
//! The signature covers the note text: the three body lines including their newlines.
//! The key id is the first 4 bytes of `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)`, and a
//! verifier key is written `<name>+<key id hex>+<base64(0x01 ‖ public key)>`, as in Go's
//! `golang.org/x/mod/sumdb/note`, so checkpoints can be checked with existing tooling.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// Longest note accepted for verification.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;
/// Most signature lines looked at.
const MAX_SIGNATURES: usize = 100;
/// Signature-type byte of Ed25519 in signed notes.
const ALG_ED25519: u8 = 0x01;
/// The prefix of every signature line (an em dash and a space).
const SIG_PREFIX: &str = "\u{2014} ";

/// Why a checkpoint, key or note was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The origin or key name is empty or contains a forbidden character.
    #[error("invalid name: {0}")]
    BadName(&'static str),
    /// The note is not a well-formed signed note or checkpoint.
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    /// A verifier key string could not be parsed.
    #[error("malformed verifier key: {0}")]
    BadVerifierKey(&'static str),
    /// A private key could not be loaded or generated.
    #[error("unusable signing key")]
    BadSigningKey,
    /// No signature line carries this verifier's name and key id.
    #[error("no signature by key {0}")]
    NoSignature(String),
    /// The signature by this verifier's key does not verify.
    #[error("signature by key {0} does not verify")]
    BadSignature(String),
}

/// A checkpoint: the log's origin, a tree size and the root hash at that size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Unique name of the log (for example `tracehound.example/audit`).
    pub origin: String,
    /// Number of entries the root covers.
    pub size: u64,
    /// RFC 6962 tree head of the first `size` entries.
    pub root: Hash,
}

impl Checkpoint {
    /// The note text (the signed body): origin, size and base64 root, one per line.
    pub fn body(&self) -> Result<String, CheckpointError> {
        check_origin(&self.origin)?;
        Ok(format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        ))
    }

    /// Parses a note text (body) into a checkpoint. Extension lines after the root are
    /// allowed and ignored, as the checkpoint format permits.
    pub fn parse_body(text: &str) -> Result<Checkpoint, CheckpointError> {
        let body = text.strip_suffix('\n').ok_or(CheckpointError::Malformed(
            "note text must end with a newline",
        ))?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        check_origin(origin)?;
        let size = lines
            .next()
            .ok_or(CheckpointError::Malformed("missing tree size"))?;
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(CheckpointError::Malformed(
                "tree size is not a decimal number",
            ));
        }
        let size: u64 = size
            .parse()
            .map_err(|_| CheckpointError::Malformed("tree size out of range"))?;
        let root = lines
            .next()
            .ok_or(CheckpointError::Malformed("missing root hash"))?;
        let root: Hash = STANDARD
            .decode(root)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(CheckpointError::Malformed(
                "root hash is not 32 bytes of base64",
            ))?;
        if lines.any(str::is_empty) {
            return Err(CheckpointError::Malformed("empty extension line"));
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

fn check_origin(origin: &str) -> Result<(), CheckpointError> {
    if origin.is_empty() {
        return Err(CheckpointError::BadName("origin is empty"));
    }
    if origin.chars().any(char::is_control) {
        return Err(CheckpointError::BadName(
            "origin contains a control character",
        ));
    }
    Ok(())
}

fn check_key_name(name: &str) -> Result<(), CheckpointError> {
    if name.is_empty() {
        return Err(CheckpointError::BadName("key name is empty"));
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '+')
    {
        return Err(CheckpointError::BadName(
            "key name contains whitespace or '+'",
        ));
    }
    Ok(())
}

fn key_id(name: &str, public_key: &[u8]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(public_key);
    let digest: [u8; 32] = h.finalize().into();
    let mut id = [0u8; 4];
    id.copy_from_slice(&digest[..4]);
    id
}

/// Signs checkpoints with an Ed25519 key. The private key never leaves this value and is
/// never printed (its `Debug` shows only the name and key id).
pub struct CheckpointSigner {
    name: String,
    key: Ed25519KeyPair,
    key_id: [u8; 4],
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("name", &self.name)
            .field("key_id", &hex::encode(self.key_id))
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    /// A fresh Ed25519 private key as PKCS#8 DER, for the caller to store (mode 0600).
    pub fn generate_pkcs8() -> Result<Vec<u8>, CheckpointError> {
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map(|doc| doc.as_ref().to_vec())
            .map_err(|_| CheckpointError::BadSigningKey)
    }

    /// A signer named `name` (no whitespace, no `+`) with a PKCS#8 DER private key.
    pub fn from_pkcs8(name: &str, pkcs8: &[u8]) -> Result<CheckpointSigner, CheckpointError> {
        check_key_name(name)?;
        let key = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| CheckpointError::BadSigningKey)?;
        let key_id = key_id(name, key.public_key().as_ref());
        Ok(CheckpointSigner {
            name: name.to_owned(),
            key,
            key_id,
        })
    }

    /// A signer from a raw 32-byte Ed25519 seed (the form Go's `note` private keys carry
    /// after their `0x01` type byte).
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<CheckpointSigner, CheckpointError> {
        check_key_name(name)?;
        let key = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|_| CheckpointError::BadSigningKey)?;
        let key_id = key_id(name, key.public_key().as_ref());
        Ok(CheckpointSigner {
            name: name.to_owned(),
            key,
            key_id,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The matching verifier.
    pub fn verifier(&self) -> CheckpointVerifier {
        let mut public_key = [0u8; 32];
        let pk = self.key.public_key().as_ref();
        if pk.len() == 32 {
            public_key.copy_from_slice(pk);
        }
        CheckpointVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            public_key,
        }
    }

    /// Signs `checkpoint` and returns the complete signed note.
    pub fn sign(&self, checkpoint: &Checkpoint) -> Result<String, CheckpointError> {
        self.sign_note(&checkpoint.body()?)
    }

    /// Signs any note text (non-empty lines, each ending in a newline) and returns the
    /// signed note.
    pub fn sign_note(&self, body: &str) -> Result<String, CheckpointError> {
        if !body.ends_with('\n') || body.contains("\n\n") || body.starts_with('\n') {
            return Err(CheckpointError::Malformed(
                "note text must be non-empty lines ending in newlines",
            ));
        }
        if body.chars().any(|c| c != '\n' && c.is_control()) {
            return Err(CheckpointError::Malformed("control character in note text"));
        }
        let sig = self.key.sign(body.as_bytes());
        let mut blob = Vec::with_capacity(4 + 64);
        blob.extend_from_slice(&self.key_id);
        blob.extend_from_slice(sig.as_ref());
        Ok(format!(
            "{body}\n{SIG_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(blob)
        ))
    }
}

/// Verifies signed checkpoints against one Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointVerifier {
    name: String,
    key_id: [u8; 4],
    public_key: [u8; 32],
}

impl CheckpointVerifier {
    /// A verifier for the raw 32-byte Ed25519 public key `public_key` named `name`.
    pub fn new(name: &str, public_key: [u8; 32]) -> Result<CheckpointVerifier, CheckpointError> {
        check_key_name(name)?;
        Ok(CheckpointVerifier {
            name: name.to_owned(),
            key_id: key_id(name, &public_key),
            public_key,
        })
    }

    /// Parses a verifier key `<name>+<key id hex>+<base64(0x01 ‖ public key)>`; the key
    /// id must match the name and key.
    pub fn from_verifier_key(text: &str) -> Result<CheckpointVerifier, CheckpointError> {
        let text = text.trim();
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(CheckpointError::BadVerifierKey("expected name+id+key"));
        };
        check_key_name(name).map_err(|_| CheckpointError::BadVerifierKey("bad key name"))?;
        let key = STANDARD
            .decode(key_b64)
            .map_err(|_| CheckpointError::BadVerifierKey("key is not base64"))?;
        let (alg, public_key) = key
            .split_first()
            .ok_or(CheckpointError::BadVerifierKey("empty key"))?;
        if *alg != ALG_ED25519 {
            return Err(CheckpointError::BadVerifierKey("not an Ed25519 key"));
        }
        let public_key: [u8; 32] = public_key
            .try_into()
            .map_err(|_| CheckpointError::BadVerifierKey("Ed25519 key is not 32 bytes"))?;
        let verifier = CheckpointVerifier::new(name, public_key)?;
        if id_hex.len() != 8 || hex::encode(verifier.key_id) != id_hex {
            return Err(CheckpointError::BadVerifierKey(
                "key id does not match name and key",
            ));
        }
        Ok(verifier)
    }

    /// The verifier key string (see [`from_verifier_key`](Self::from_verifier_key)).
    pub fn to_verifier_key(&self) -> String {
        let mut key = Vec::with_capacity(33);
        key.push(ALG_ED25519);
        key.extend_from_slice(&self.public_key);
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_id),
            STANDARD.encode(key)
        )
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks a signed note: it must carry a valid signature by this key, and its text
    /// must be a checkpoint. Signatures by other keys are ignored. Never panics.
    pub fn verify(&self, note: &str) -> Result<Checkpoint, CheckpointError> {
        Checkpoint::parse_body(self.verify_note(note)?)
    }

    /// Checks any signed note for a valid signature by this key and returns its text.
    pub fn verify_note<'a>(&self, note: &'a str) -> Result<&'a str, CheckpointError> {
        if note.len() > MAX_NOTE_BYTES {
            return Err(CheckpointError::Malformed("note too large"));
        }
        let split = note
            .rfind("\n\n")
            .ok_or(CheckpointError::Malformed("no signature block"))?;
        // Both halves split at ASCII newlines, so the boundaries are char boundaries.
        let (text, sigs) = note.split_at(split + 1);
        let sigs = sigs.get(1..).unwrap_or_default();
        if text.chars().any(|c| c != '\n' && c.is_control()) {
            return Err(CheckpointError::Malformed("control character in note text"));
        }
        let sigs = sigs.strip_suffix('\n').ok_or(CheckpointError::Malformed(
            "signature block must end with a newline",
        ))?;
        for line in sigs.split('\n').take(MAX_SIGNATURES) {
            let rest = line
                .strip_prefix(SIG_PREFIX)
                .ok_or(CheckpointError::Malformed(
                    "signature line must start with an em dash",
                ))?;
            let (name, blob) = rest.split_once(' ').ok_or(CheckpointError::Malformed(
                "signature line needs a name and a signature",
            ))?;
            if name != self.name {
                continue;
            }
            let Ok(blob) = STANDARD.decode(blob) else {
                continue;
            };
            let Some((id, sig)) = blob.split_first_chunk::<4>() else {
                continue;
            };
            if *id != self.key_id {
                continue;
            }
            UnparsedPublicKey::new(&ED25519, self.public_key)
                .verify(text.as_bytes(), sig)
                .map_err(|_| CheckpointError::BadSignature(self.name.clone()))?;
            return Ok(text);
        }
        Err(CheckpointError::NoSignature(self.name.clone()))
    }
}
