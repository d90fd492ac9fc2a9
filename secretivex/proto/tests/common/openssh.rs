//! Running OpenSSH's tools from tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;

/// Runs a command to completion and fails the test if it fails.
pub fn run(cmd: &mut Command) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Generates a key with `ssh-keygen` (no passphrase, comment `comment-<name>`).
pub fn keygen(dir: &Path, name: &str, kind: &[&str]) -> PathBuf {
    let path = dir.join(name);
    run(Command::new("ssh-keygen")
        .args(kind)
        .args(["-q", "-N", "", "-C", &format!("comment-{name}"), "-f"])
        .arg(&path));
    path
}

/// The base64 blob of an OpenSSH public key or certificate file.
pub fn pub_blob(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).expect("public key file");
    let b64 = text.split_whitespace().nth(1).expect("blob field");
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64")
}
