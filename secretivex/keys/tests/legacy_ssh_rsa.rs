//! Legacy `ssh-rsa` (RSASSA-PKCS1-v1_5 with SHA-1): what an RSA key signs with flags 0, as
//! `ssh-add -T` of OpenSSH 9.x asks. Checked against `verify_signature` and against the
//! real `openssl` with keys written by the real `ssh-keygen`.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::{certify, keygen, keyset, run, GeneratedKey};
use secretivex_keys::{verify_signature, KeyAlgorithm, KeyError, KeyPair};
use secretivex_proto::{CertPrivate, PrivateKeyWire};

const DATA: &[u8] = b"session id, then a publickey userauth request";

/// The RSA keys of the shared key set (2048 and 3072 bits).
fn rsa_keys() -> Vec<&'static GeneratedKey> {
    let keys: Vec<_> = keyset()
        .keys
        .iter()
        .filter(|k| matches!(k.algorithm, KeyAlgorithm::Rsa { .. }))
        .collect();
    let bits: Vec<usize> = keys.iter().map(|k| k.algorithm.bits()).collect();
    assert_eq!(bits, [2048, 3072]);
    keys
}

/// Splits an SSH signature blob `string alg, string sig` (test input: panics if malformed).
fn split_blob(blob: &[u8]) -> (String, Vec<u8>) {
    let take = |b: &[u8]| -> (Vec<u8>, usize) {
        let len = u32::from_be_bytes(b[..4].try_into().unwrap()) as usize;
        (b[4..4 + len].to_vec(), 4 + len)
    };
    let (alg, used) = take(blob);
    let (sig, used2) = take(&blob[used..]);
    assert_eq!(used + used2, blob.len(), "trailing bytes in signature blob");
    (String::from_utf8(alg).unwrap(), sig)
}

/// `openssl dgst DIGEST -verify PUB -signature SIG DATA`: whether openssl accepts it.
fn openssl_verifies(digest: &str, public_pem: &Path, sig: &Path, data: &Path) -> bool {
    let out = Command::new("openssl")
        .args(["dgst", digest, "-verify"])
        .arg(public_pem)
        .arg("-signature")
        .arg(sig)
        .arg(data)
        .stdin(Stdio::null())
        .output()
        .expect("spawn openssl");
    let ok = out.status.success();
    assert_eq!(
        ok,
        String::from_utf8_lossy(&out.stdout).contains("Verified OK"),
        "exit status and output of openssl disagree"
    );
    ok
}

/// Checks a flag-0 signature blob made by `key`'s private key with `openssl`: the public
/// key from `ssh-keygen -e -m PKCS8`, the private key from `ssh-keygen -p -m PEM`.
fn check_with_openssl(key: &GeneratedKey, blob: &[u8], dir: &Path) {
    let (alg, sig) = split_blob(blob);
    assert_eq!(alg, "ssh-rsa");
    assert_eq!(
        sig.len(),
        key.algorithm.bits() / 8,
        "signature is modulus-sized"
    );

    let public_pem = dir.join("public.pem");
    let out = run(Command::new("ssh-keygen")
        .args(["-e", "-m", "PKCS8", "-f"])
        .arg(key.pub_path()));
    std::fs::write(&public_pem, out.stdout).unwrap();
    let data_path = dir.join("data");
    std::fs::write(&data_path, DATA).unwrap();
    let sig_path = dir.join("sig");
    std::fs::write(&sig_path, &sig).unwrap();

    assert!(openssl_verifies(
        "-sha1",
        &public_pem,
        &sig_path,
        &data_path
    ));
    // The DigestInfo inside names SHA-1: the same bytes are not a SHA-256 signature...
    assert!(!openssl_verifies(
        "-sha256",
        &public_pem,
        &sig_path,
        &data_path
    ));
    // ...nor a signature over other data.
    let other = dir.join("other");
    std::fs::write(&other, b"other data").unwrap();
    assert!(!openssl_verifies("-sha1", &public_pem, &sig_path, &other));

    // PKCS#1 v1.5 is deterministic: openssl signing with the same key gives the same bytes.
    let pem = dir.join("key.pem");
    std::fs::copy(&key.path, &pem).unwrap();
    run(Command::new("ssh-keygen")
        .args(["-q", "-p", "-m", "PEM", "-N", "", "-P", "", "-f"])
        .arg(&pem));
    let out = run(Command::new("openssl")
        .args(["dgst", "-sha1", "-sign"])
        .arg(&pem)
        .arg(&data_path));
    assert_eq!(out.stdout, sig, "openssl made a different SHA-1 signature");
}

#[test]
fn flag_zero_signs_ssh_rsa_that_we_and_openssl_verify() {
    for key in rsa_keys() {
        let (pair, _) = KeyPair::from_openssh_file(&key.private_text(), None).unwrap();
        let blob = pair.sign(DATA, 0).unwrap();
        verify_signature(pair.public_blob(), DATA, &blob).unwrap();
        assert!(matches!(
            verify_signature(pair.public_blob(), b"other data", &blob),
            Err(KeyError::BadSignature)
        ));
        let mut flipped = blob.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(verify_signature(pair.public_blob(), DATA, &flipped).is_err());
        // The cached key signs the same way every time.
        assert_eq!(pair.sign(DATA, 0).unwrap(), blob);

        let dir = tempfile::tempdir().unwrap();
        check_with_openssl(key, &blob, dir.path());
    }
}

#[test]
fn rsa_certificates_sign_ssh_rsa_with_flag_zero() {
    let dir = tempfile::tempdir().unwrap();
    let ca = keygen(dir.path(), "ca", "ed25519", None, "", KeyAlgorithm::Ed25519);
    for (i, key) in rsa_keys().into_iter().enumerate() {
        let cert_blob = certify(&ca.path, key, &format!("rsa-{i}"), "alice");
        let PrivateKeyWire::Rsa { d, iqmp, p, q, .. } =
            secretivex_keys::PrivateKeyFile::parse(&key.private_text(), None)
                .unwrap()
                .key
        else {
            panic!("not an RSA key: {key:?}");
        };
        let cert = KeyPair::from_wire(&PrivateKeyWire::Certificate {
            cert_blob: cert_blob.clone(),
            private: CertPrivate::Rsa { d, iqmp, p, q },
        })
        .unwrap();
        assert!(cert.is_certificate());

        let blob = cert.sign(DATA, 0).unwrap();
        // Certificates sign with the plain algorithm name.
        assert_eq!(split_blob(&blob).0, "ssh-rsa");
        verify_signature(&cert_blob, DATA, &blob).unwrap();
        verify_signature(&key.public_blob(), DATA, &blob).unwrap();
        assert!(verify_signature(&cert_blob, b"other data", &blob).is_err());

        // Same key, same deterministic signature, whichever way the certificate came.
        let (plain, _) = KeyPair::from_openssh_file(&key.private_text(), None).unwrap();
        assert_eq!(plain.sign(DATA, 0).unwrap(), blob);
        let attached = plain.with_certificate(&cert_blob).unwrap();
        assert_eq!(attached.sign(DATA, 0).unwrap(), blob);

        let work = tempfile::tempdir().unwrap();
        check_with_openssl(key, &blob, work.path());
    }
}

#[test]
fn one_rsa_key_signs_ssh_rsa_from_many_threads_at_once() {
    let key = rsa_keys()[0];
    let (pair, _) = KeyPair::from_openssh_file(&key.private_text(), None).unwrap();
    let pair = Arc::new(pair);
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let pair = Arc::clone(&pair);
            std::thread::spawn(move || {
                let mut ok = 0usize;
                for i in 0..20u8 {
                    let msg = [t, i];
                    let blob = pair.sign(&msg, 0).unwrap();
                    if split_blob(&blob).0 == "ssh-rsa"
                        && verify_signature(pair.public_blob(), &msg, &blob).is_ok()
                    {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    let total: usize = threads.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, 4 * 20);
}
