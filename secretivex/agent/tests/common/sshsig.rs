//! `ssh-keygen -Y sign` through an agent and `ssh-keygen -Y verify`.

use std::path::{Path, PathBuf};

use super::agent::Agent;
use super::cmd::{run, tool, CmdOutput};
use super::keys::{with_suffix, KeyFiles};

/// Signs `file` with `ssh-keygen -Y sign -f KEY.pub -n NAMESPACE`, which asks the agent at
/// `SSH_AUTH_SOCK` to sign. Writes `file.sig` on success.
///
/// ssh-keygen prefers a private key file next to the `.pub` when there is one, so the private
/// key is moved aside for the call: the signature can only come from the agent.
pub fn sign_via_agent(agent: &Agent, key: &KeyFiles, namespace: &str, file: &Path) -> CmdOutput {
    let sig = sig_path(file);
    let _ = std::fs::remove_file(&sig);
    let aside = with_suffix(&key.private, ".aside");
    let hidden = std::fs::rename(&key.private, &aside).is_ok();
    let out = run(agent
        .cmd("ssh-keygen")
        .args(["-Y", "sign", "-n", namespace, "-f"])
        .arg(&key.public)
        .arg(file));
    if hidden {
        std::fs::rename(&aside, &key.private).expect("restore private key");
    }
    out
}

/// `file.sig`.
pub fn sig_path(file: &Path) -> PathBuf {
    with_suffix(file, ".sig")
}

/// Verifies `sig` over `file` with `ssh-keygen -Y verify` and an allowed_signers file that
/// names `key` for `identity` (written next to the signature).
pub fn verify(
    key: &KeyFiles,
    identity: &str,
    namespace: &str,
    file: &Path,
    sig: &Path,
) -> CmdOutput {
    let allowed = with_suffix(sig, ".allowed_signers");
    std::fs::write(&allowed, format!("{identity} {}\n", key.public_line()))
        .expect("write allowed_signers");
    let data = std::fs::File::open(file).expect("open signed file");
    run(tool("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(&allowed)
        .args(["-I", identity, "-n", namespace, "-s"])
        .arg(sig)
        .stdin(data))
}
