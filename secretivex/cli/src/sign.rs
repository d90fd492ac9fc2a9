//! `secretivex sign`: an `ssh-keygen -Y sign` compatible detached signature made by an agent.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use secretivex_keys::sshsig::{self, HashAlg};
use secretivex_proto::sign_flags;

use crate::client::AgentClient;
use crate::keyinfo::{list_keys, KeyInfo};
use crate::Outcome;

/// The hash `ssh-keygen -Y sign` uses by default.
const HASH: HashAlg = HashAlg::Sha512;

/// Signs `file` in `namespace` with the agent key `fingerprint` and writes `FILE.sig`.
pub fn run(socket: &Path, fingerprint: &str, namespace: &str, file: &Path) -> Result<Outcome> {
    if namespace.is_empty() {
        bail!("the namespace must not be empty");
    }
    let message_hash = hash_file(file)?;
    let mut client = AgentClient::connect(socket, None)?;
    let keys = list_keys(&mut client)?;
    let key = pick_key(&keys, fingerprint)?;

    let to_sign = sshsig::signed_data(namespace, HASH, &message_hash)?;
    // RSA must sign with SHA-2: OpenSSH refuses SHA-1 (`ssh-rsa`) signatures in SSHSIG.
    let flags = if key.base_type() == "ssh-rsa" {
        sign_flags::RSA_SHA2_512
    } else {
        0
    };
    let signature = client
        .sign(&key.blob, &to_sign, flags)
        .with_context(|| format!("signing with {}", key.fingerprint))?;
    check_signature(key, &to_sign, &signature)?;

    let armored = sshsig::armor(&sshsig::encode_blob(
        &key.blob, namespace, HASH, &signature,
    )?);
    let out = sig_path(file);
    std::fs::write(&out, armored).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("Write signature to {}", out.display());
    Ok(Outcome::Ok)
}

/// `FILE.sig`.
pub fn sig_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_os_string();
    s.push(".sig");
    PathBuf::from(s)
}

fn hash_file(file: &Path) -> Result<Vec<u8>> {
    let mut f = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let mut ctx = HASH.hasher();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", file.display()))?;
        let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
            break;
        };
        ctx.update(chunk);
    }
    Ok(ctx.finish().as_ref().to_vec())
}

/// The listed key with this fingerprint, preferring the plain key over its certificates
/// (a plain key verifies against an ordinary allowed_signers entry).
fn pick_key<'a>(keys: &'a [KeyInfo], fingerprint: &str) -> Result<&'a KeyInfo> {
    let wanted = if fingerprint.starts_with("SHA256:") {
        fingerprint.to_string()
    } else {
        format!("SHA256:{fingerprint}")
    };
    let matching: Vec<&KeyInfo> = keys.iter().filter(|k| k.fingerprint == wanted).collect();
    match matching
        .iter()
        .find(|k| !k.certificate)
        .or(matching.first())
    {
        Some(k) => Ok(k),
        None => bail!("the agent has no key with fingerprint {wanted}"),
    }
}

/// Checks the agent's answer before writing it: right algorithm, valid over the data.
fn check_signature(key: &KeyInfo, data: &[u8], signature: &[u8]) -> Result<()> {
    let alg = secretivex_keys::key_type_of_blob(signature).context("signature blob")?;
    if alg == "ssh-rsa" {
        bail!("the agent signed with SHA-1 (ssh-rsa), which SSH signatures do not accept");
    }
    secretivex_keys::verify_signature(&key.blob, data, signature)
        .context("the agent's signature does not verify")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyinfo::testkeys::ed25519_blob;
    use secretivex_proto::Identity;

    #[test]
    fn pick_key_prefers_plain_and_accepts_bare_fingerprints() {
        let info = KeyInfo::of(&Identity {
            key_blob: ed25519_blob(9),
            comment: "k".into(),
        });
        let mut cert = info.clone();
        cert.certificate = true;
        let keys = vec![cert, info.clone()];
        let bare = info.fingerprint.trim_start_matches("SHA256:").to_string();
        assert!(!pick_key(&keys, &info.fingerprint).unwrap().certificate);
        assert!(!pick_key(&keys, &bare).unwrap().certificate);
        assert!(pick_key(&keys, "SHA256:nope").is_err());
    }
}
