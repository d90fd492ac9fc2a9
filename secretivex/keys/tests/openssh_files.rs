//! Keys written by the real `ssh-keygen`: loading, fingerprints, signing, verification.

mod common;

use std::sync::Arc;

use common::{keygen, keygen_fingerprint, keyset, run};
use secretivex_keys::{
    fingerprint_of_blob, is_encrypted_openssh_file, key_type_of_blob, verify_signature,
    KeyAlgorithm, KeyError, KeyPair,
};
use secretivex_proto::sign_flags::{RSA_SHA2_256, RSA_SHA2_512};

/// Signature algorithm name at the start of a signature blob.
fn sig_alg(sig: &[u8]) -> String {
    key_type_of_blob(sig).unwrap()
}

#[test]
fn loads_every_type_with_matching_blob_fingerprint_and_comment() {
    for key in &keyset().keys {
        let (pair, comment) = KeyPair::from_openssh_file(&key.private_text(), None).unwrap();
        assert_eq!(pair.algorithm(), key.algorithm, "{key:?}");
        assert_eq!(comment, key.comment);
        assert!(!pair.is_certificate());
        assert_eq!(pair.public_blob(), key.public_blob().as_slice(), "{key:?}");
        let expected = keygen_fingerprint(&key.pub_path());
        assert_eq!(pair.fingerprint(), expected, "{key:?}");
        assert_eq!(fingerprint_of_blob(pair.public_blob()).unwrap(), expected);
        assert_eq!(
            key_type_of_blob(pair.public_blob()).unwrap(),
            key.algorithm.key_type()
        );
        assert!(!is_encrypted_openssh_file(&key.private_text()).unwrap());
    }
}

#[test]
fn signs_and_verifies_every_type() {
    let data = b"session id and userauth request";
    for key in &keyset().keys {
        let (pair, _) = KeyPair::from_openssh_file(&key.private_text(), None).unwrap();
        let flag_cases: &[(u32, &str)] = match key.algorithm {
            KeyAlgorithm::Rsa { .. } => &[
                (RSA_SHA2_256, "rsa-sha2-256"),
                (RSA_SHA2_512, "rsa-sha2-512"),
                // OpenSSH's agent picks SHA-256 when both are set.
                (RSA_SHA2_256 | RSA_SHA2_512, "rsa-sha2-256"),
                // Neither flag: legacy SHA-1 `ssh-rsa` (`ssh-add -T` of OpenSSH 9.x).
                (0, "ssh-rsa"),
            ],
            other => &[(0, other.key_type()), (RSA_SHA2_512, other.key_type())],
        };
        for &(flags, alg) in flag_cases {
            let sig = pair.sign(data, flags).unwrap();
            assert_eq!(sig_alg(&sig), alg, "{key:?} flags {flags}");
            verify_signature(pair.public_blob(), data, &sig).unwrap();
            // A different message must not verify.
            assert!(matches!(
                verify_signature(pair.public_blob(), b"other data", &sig),
                Err(KeyError::BadSignature)
            ));
            // Nor a flipped bit in the signature's last byte.
            let mut bad = sig.clone();
            *bad.last_mut().unwrap() ^= 1;
            assert!(verify_signature(pair.public_blob(), data, &bad).is_err());
        }
    }
}

#[test]
fn signature_by_one_key_does_not_verify_under_another() {
    let keys = &keyset().keys;
    let (a, _) = KeyPair::from_openssh_file(&keys[0].private_text(), None).unwrap();
    let other = common::keygen(
        keyset().dir.path(),
        "other_ed25519",
        "ed25519",
        None,
        "",
        KeyAlgorithm::Ed25519,
    );
    let (b, _) = KeyPair::from_openssh_file(&other.private_text(), None).unwrap();
    let sig = a.sign(b"m", 0).unwrap();
    assert!(matches!(
        verify_signature(b.public_blob(), b"m", &sig),
        Err(KeyError::BadSignature)
    ));
    // An ECDSA signature presented for an Ed25519 key is a type mismatch.
    let (ec, _) = KeyPair::from_openssh_file(&keys[1].private_text(), None).unwrap();
    let ec_sig = ec.sign(b"m", 0).unwrap();
    assert!(matches!(
        verify_signature(a.public_blob(), b"m", &ec_sig),
        Err(KeyError::SignatureAlgorithmMismatch)
    ));
}

#[test]
fn encrypted_files_need_the_right_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    for (name, kind, bits, alg) in [
        ("enc_ed25519", "ed25519", None, KeyAlgorithm::Ed25519),
        ("enc_p256", "ecdsa", Some(256), KeyAlgorithm::EcdsaP256),
        (
            "enc_rsa",
            "rsa",
            Some(2048),
            KeyAlgorithm::Rsa { bits: 2048 },
        ),
    ] {
        let key = keygen(dir.path(), name, kind, bits, "correct horse", alg);
        let text = key.private_text();
        assert!(is_encrypted_openssh_file(&text).unwrap());
        assert!(matches!(
            KeyPair::from_openssh_file(&text, None),
            Err(KeyError::PassphraseRequired)
        ));
        let err = KeyPair::from_openssh_file(&text, Some(b"wrong")).unwrap_err();
        assert!(matches!(err, KeyError::WrongPassphrase), "{err:?}");
        // The message must not echo the passphrase.
        assert!(!err.to_string().contains("wrong"));
        let (pair, comment) = KeyPair::from_openssh_file(&text, Some(b"correct horse")).unwrap();
        assert_eq!(comment, key.comment);
        assert_eq!(pair.algorithm(), alg);
        assert_eq!(pair.fingerprint(), keygen_fingerprint(&key.pub_path()));
        let sig = pair.sign(b"d", RSA_SHA2_512).unwrap();
        verify_signature(pair.public_blob(), b"d", &sig).unwrap();
    }
}

#[test]
fn rsa_1024_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(
        dir.path(),
        "rsa1024",
        "rsa",
        Some(1024),
        "",
        KeyAlgorithm::Rsa { bits: 1024 },
    );
    let err = KeyPair::from_openssh_file(&key.private_text(), None).unwrap_err();
    assert!(
        matches!(err, KeyError::UnsupportedRsaKeySize { bits: 1024 }),
        "{err:?}"
    );
}

#[test]
fn garbage_files_are_parse_errors() {
    assert!(matches!(
        KeyPair::from_openssh_file("not a key", None),
        Err(KeyError::Parse(_))
    ));
    assert!(is_encrypted_openssh_file("-----BEGIN OPENSSH PRIVATE KEY-----\n").is_err());
}

#[test]
fn one_key_signs_from_many_threads_at_once() {
    let key = &keyset().keys[1];
    let (pair, _) = KeyPair::from_openssh_file(&key.private_text(), None).unwrap();
    let pair = Arc::new(pair);
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            let pair = Arc::clone(&pair);
            std::thread::spawn(move || {
                let mut ok = 0usize;
                for i in 0..50u8 {
                    let msg = [t, i];
                    let sig = pair.sign(&msg, 0).unwrap();
                    if verify_signature(pair.public_blob(), &msg, &sig).is_ok() {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    let total: usize = threads.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, 8 * 50);
}

#[test]
fn ssh_keygen_reads_back_our_public_blob() {
    // Write our blob as a .pub line and let ssh-keygen fingerprint it.
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    for key in &keyset().keys {
        let (pair, _) = KeyPair::from_openssh_file(&key.private_text(), None).unwrap();
        let line = format!(
            "{} {}\n",
            pair.algorithm().key_type(),
            base64::engine::general_purpose::STANDARD.encode(pair.public_blob())
        );
        let path = dir.path().join("ours.pub");
        std::fs::write(&path, line).unwrap();
        let out = run(std::process::Command::new("ssh-keygen")
            .arg("-lf")
            .arg(&path));
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(&pair.fingerprint()), "{text}");
        assert!(
            text.starts_with(&pair.algorithm().bits().to_string()),
            "{text}"
        );
    }
}

/// Builds `string alg, string sig`.
fn ssh_signature_blob(alg: &str, sig: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for field in [alg.as_bytes(), sig] {
        out.extend_from_slice(&(field.len() as u32).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

#[test]
fn rsa_signatures_made_by_openssl_verify_including_legacy_sha1() {
    let key = keyset()
        .keys
        .iter()
        .find(|k| matches!(k.algorithm, KeyAlgorithm::Rsa { .. }))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A PEM copy of the key for openssl: `ssh-keygen -p -m PEM` rewrites it in place.
    let pem = dir.path().join("key.pem");
    std::fs::copy(&key.path, &pem).unwrap();
    run(std::process::Command::new("ssh-keygen")
        .args(["-q", "-p", "-m", "PEM", "-N", "", "-P", "", "-f"])
        .arg(&pem));
    let data_path = dir.path().join("data");
    std::fs::write(&data_path, b"signed by openssl").unwrap();
    let public = key.public_blob();
    for (digest, alg) in [
        ("-sha1", "ssh-rsa"),
        ("-sha256", "rsa-sha2-256"),
        ("-sha512", "rsa-sha2-512"),
    ] {
        let out = run(std::process::Command::new("openssl")
            .args(["dgst", digest, "-sign"])
            .arg(&pem)
            .arg(&data_path));
        let blob = ssh_signature_blob(alg, &out.stdout);
        verify_signature(&public, b"signed by openssl", &blob)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert!(verify_signature(&public, b"other", &blob).is_err());
        // Naming the wrong hash must fail.
        let wrong = if alg == "rsa-sha2-512" {
            "rsa-sha2-256"
        } else {
            "rsa-sha2-512"
        };
        assert!(verify_signature(
            &public,
            b"signed by openssl",
            &ssh_signature_blob(wrong, &out.stdout)
        )
        .is_err());
    }
}
