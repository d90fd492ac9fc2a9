//! SSHSIG interoperability with the real `ssh-keygen -Y`, both directions, every key type.
//!
//! Our signatures are checked by OpenSSH's own parser and verifier, which catches any
//! mistake in the SSH signature encoding (for instance ECDSA `mpint` sign padding, hit by
//! about half of all signatures, which is why each ECDSA key signs several messages).

mod common;

use std::path::Path;
use std::process::Command;

use common::{keyset, output_with_stdin, run};
use secretivex_keys::{sshsig, KeyAlgorithm, KeyPair};

const NAMESPACE: &str = "file";

/// Runs `ssh-keygen -Y check-novalidate` on `sig_path` with `message` on stdin.
fn check_novalidate(sig_path: &Path, message: &[u8]) -> bool {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-Y", "check-novalidate", "-n", NAMESPACE, "-s"])
        .arg(sig_path);
    output_with_stdin(&mut cmd, message).status.success()
}

#[test]
fn ssh_keygen_accepts_our_sshsig_for_every_key_type() {
    let dir = tempfile::tempdir().unwrap();
    let mut accepted = 0usize;
    for key in &keyset().keys {
        let (pair, _) = KeyPair::from_openssh_file(&key.private_text(), None).unwrap();
        let rounds = match key.algorithm {
            KeyAlgorithm::Rsa { .. } | KeyAlgorithm::Ed25519 => 2,
            _ => 8,
        };
        for round in 0..rounds {
            let message = format!("message {round} for {}", key.comment);
            let armored = sshsig::sign_armored(&pair, NAMESPACE, message.as_bytes()).unwrap();
            let sig_path = dir.path().join("msg.sig");
            std::fs::write(&sig_path, &armored).unwrap();
            assert!(
                check_novalidate(&sig_path, message.as_bytes()),
                "ssh-keygen rejected our {:?} signature (round {round})",
                key.algorithm
            );
            accepted += 1;
            // And it must reject the signature for a different message.
            assert!(!check_novalidate(&sig_path, b"tampered"));
            // Our own verifier agrees.
            assert_eq!(
                sshsig::verify_armored(&armored, NAMESPACE, message.as_bytes()).unwrap(),
                pair.public_blob()
            );
            assert!(sshsig::verify_armored(&armored, "other-ns", message.as_bytes()).is_err());
        }
    }
    assert_eq!(accepted, 2 + 8 * 3 + 2 * 2);
}

#[test]
fn ssh_keygen_verify_with_allowed_signers() {
    let dir = tempfile::tempdir().unwrap();
    for key in &keyset().keys {
        let (pair, _) = KeyPair::from_openssh_file(&key.private_text(), None).unwrap();
        let pub_line = std::fs::read_to_string(key.pub_path()).unwrap();
        let allowed = dir.path().join("allowed_signers");
        std::fs::write(&allowed, format!("alice@example.com {pub_line}")).unwrap();
        let message = b"release tarball digest";
        let sig_path = dir.path().join("rel.sig");
        std::fs::write(
            &sig_path,
            sshsig::sign_armored(&pair, NAMESPACE, message).unwrap(),
        )
        .unwrap();
        let mut cmd = Command::new("ssh-keygen");
        cmd.args(["-Y", "verify", "-f"])
            .arg(&allowed)
            .args(["-I", "alice@example.com", "-n", NAMESPACE, "-s"])
            .arg(&sig_path);
        let out = output_with_stdin(&mut cmd, message);
        assert!(
            out.status.success(),
            "{:?}: {}",
            key.algorithm,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("Good"));
    }
}

#[test]
fn we_verify_sshsig_written_by_ssh_keygen() {
    let dir = tempfile::tempdir().unwrap();
    for key in &keyset().keys {
        let msg_path = dir.path().join(format!("data-{}", key.comment));
        let message = format!("payload signed by ssh-keygen with {}", key.comment);
        std::fs::write(&msg_path, &message).unwrap();
        // ssh-keygen -Y sign writes MSG.sig next to the message.
        run(Command::new("ssh-keygen")
            .args(["-q", "-Y", "sign", "-n", NAMESPACE, "-f"])
            .arg(&key.path)
            .arg(&msg_path));
        let armored = std::fs::read_to_string(common::with_suffix(&msg_path, ".sig")).unwrap();
        let signer = sshsig::verify_armored(&armored, NAMESPACE, message.as_bytes())
            .unwrap_or_else(|e| panic!("{:?}: {e}", key.algorithm));
        assert_eq!(signer, key.public_blob());
        assert!(sshsig::verify_armored(&armored, NAMESPACE, b"not the payload").is_err());
    }
}
