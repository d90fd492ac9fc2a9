//! `KeyPair::from_wire` with add-identity fields read from real key files (by a minimal
//! reader in `common`, not the crate's key file parser), and OpenSSH certificates made by `ssh-keygen -s`.

mod common;

use common::{certify, keygen, keygen_fingerprint, keyset, output_with_stdin, GeneratedKey};
use secretivex_keys::{
    fingerprint_of_blob, key_type_of_blob, parse_certificate, sshsig, verify_signature,
    KeyAlgorithm, KeyError, KeyPair,
};
use secretivex_proto::sign_flags::RSA_SHA2_512;
use secretivex_proto::{CertPrivate, PrivateKeyWire};
use zeroize::Zeroizing;

/// The add-identity wire fields, read from the file independently of the crate's parser.
fn wire_of(key: &GeneratedKey) -> PrivateKeyWire {
    common::wire_of_unencrypted_file(&key.private_text())
}

/// The private part that follows a certificate in an add-identity request.
fn cert_private_of(wire: &PrivateKeyWire) -> CertPrivate {
    match wire.clone() {
        PrivateKeyWire::Ed25519 { public, keypair } => CertPrivate::Ed25519 { public, keypair },
        PrivateKeyWire::Ecdsa { scalar, .. } => CertPrivate::Ecdsa { scalar },
        PrivateKeyWire::Rsa { d, iqmp, p, q, .. } => CertPrivate::Rsa { d, iqmp, p, q },
        PrivateKeyWire::Certificate { .. } => unreachable!(),
    }
}

fn flags_for(alg: KeyAlgorithm) -> u32 {
    match alg {
        KeyAlgorithm::Rsa { .. } => RSA_SHA2_512,
        _ => 0,
    }
}

#[test]
fn from_wire_matches_the_key_file() {
    for key in &keyset().keys {
        let wire = wire_of(key);
        let pair = KeyPair::from_wire(&wire).unwrap();
        let (from_file, _) = KeyPair::from_openssh_file(&key.private_text(), None).unwrap();
        assert_eq!(pair.public_blob(), from_file.public_blob());
        assert_eq!(pair.public_blob(), key.public_blob().as_slice());
        assert_eq!(pair.algorithm(), key.algorithm);
        assert_eq!(pair.fingerprint(), keygen_fingerprint(&key.pub_path()));
        let sig = pair.sign(b"wire", flags_for(key.algorithm)).unwrap();
        // The file-loaded twin verifies the wire-loaded key's signature.
        verify_signature(from_file.public_blob(), b"wire", &sig).unwrap();
    }
}

#[test]
fn inconsistent_wire_keys_are_refused() {
    let keys = &keyset().keys;
    // Ed25519 whose 64-byte form embeds a different public key.
    let PrivateKeyWire::Ed25519 { public, keypair } = wire_of(&keys[0]) else {
        panic!()
    };
    let mut other_public = public;
    other_public[0] ^= 0x55;
    let err = KeyPair::from_wire(&PrivateKeyWire::Ed25519 {
        public: other_public,
        keypair: keypair.clone(),
    })
    .unwrap_err();
    assert!(matches!(err, KeyError::InconsistentKey(_)), "{err:?}");
    // Wrong length.
    let err = KeyPair::from_wire(&PrivateKeyWire::Ed25519 {
        public,
        keypair: Zeroizing::new(keypair[..40].to_vec()),
    })
    .unwrap_err();
    assert!(matches!(err, KeyError::Malformed(_)), "{err:?}");

    // ECDSA scalar of one key with the point of another.
    let PrivateKeyWire::Ecdsa { curve, scalar, .. } = wire_of(&keys[1]) else {
        panic!()
    };
    let other = keygen(
        keyset().dir.path(),
        "other_p256",
        "ecdsa",
        Some(256),
        "",
        KeyAlgorithm::EcdsaP256,
    );
    let PrivateKeyWire::Ecdsa { public_point, .. } = wire_of(&other) else {
        panic!()
    };
    let err = KeyPair::from_wire(&PrivateKeyWire::Ecdsa {
        curve,
        public_point,
        scalar,
    })
    .unwrap_err();
    assert!(matches!(err, KeyError::InconsistentKey(_)), "{err:?}");

    // RSA with p and q swapped (iqmp no longer matches) and with a corrupted d.
    let PrivateKeyWire::Rsa {
        n,
        e,
        d,
        iqmp,
        p,
        q,
    } = wire_of(&keys[4])
    else {
        panic!()
    };
    let swapped = PrivateKeyWire::Rsa {
        n: n.clone(),
        e: e.clone(),
        d: d.clone(),
        iqmp: iqmp.clone(),
        p: q.clone(),
        q: p.clone(),
    };
    assert!(matches!(
        KeyPair::from_wire(&swapped),
        Err(KeyError::InconsistentKey(_))
    ));
    let mut bad_d = d.to_vec();
    *bad_d.last_mut().unwrap() ^= 2;
    let corrupted = PrivateKeyWire::Rsa {
        n,
        e,
        d: Zeroizing::new(bad_d),
        iqmp,
        p,
        q,
    };
    assert!(matches!(
        KeyPair::from_wire(&corrupted),
        Err(KeyError::InconsistentKey(_))
    ));
}

#[test]
fn certificates_load_sign_and_report_their_fields() {
    let set = keyset();
    let ca = keygen(
        set.dir.path(),
        "ca_key",
        "ed25519",
        None,
        "",
        KeyAlgorithm::Ed25519,
    );
    for (i, key) in set.keys.iter().enumerate() {
        let cert_blob = certify(&ca.path, key, &format!("id-{i}"), "alice,bob");
        let wire = wire_of(key);
        let pair = KeyPair::from_wire(&PrivateKeyWire::Certificate {
            cert_blob: cert_blob.clone(),
            private: cert_private_of(&wire),
        })
        .unwrap();
        assert!(pair.is_certificate());
        assert_eq!(pair.public_blob(), cert_blob.as_slice());
        assert_eq!(pair.key_blob(), key.public_blob().as_slice());
        assert_eq!(pair.algorithm(), key.algorithm);
        assert_eq!(
            key_type_of_blob(&cert_blob).unwrap(),
            key.algorithm.certificate_type()
        );
        // ssh-keygen -l on the certificate and on the key print the same fingerprint.
        let expected = keygen_fingerprint(&key.pub_path());
        assert_eq!(keygen_fingerprint(&key.cert_path()), expected);
        assert_eq!(pair.fingerprint(), expected);
        assert_eq!(fingerprint_of_blob(&cert_blob).unwrap(), expected);

        let info = parse_certificate(&cert_blob).unwrap();
        assert_eq!(info.key_blob, key.public_blob());
        assert_eq!(info.signature_key, ca.public_blob());
        assert_eq!(info.key_id, format!("id-{i}"));
        assert_eq!(info.principals, ["alice", "bob"]);
        assert_eq!(info.cert_type, 1);
        assert_eq!(info.valid_after, 0);
        assert_eq!(info.valid_before, u64::MAX);

        let sig = pair.sign(b"cert data", flags_for(key.algorithm)).unwrap();
        // RSA certificates still name the plain signature algorithm.
        let expected_alg = match key.algorithm {
            KeyAlgorithm::Rsa { .. } => "rsa-sha2-512",
            other => other.key_type(),
        };
        assert_eq!(key_type_of_blob(&sig).unwrap(), expected_alg);
        verify_signature(&cert_blob, b"cert data", &sig).unwrap();
        verify_signature(&key.public_blob(), b"cert data", &sig).unwrap();

        // Loading the plain key and attaching the certificate gives the same identity.
        let (plain, _) = KeyPair::from_openssh_file(&key.private_text(), None).unwrap();
        let attached = plain.with_certificate(&cert_blob).unwrap();
        assert_eq!(attached.public_blob(), pair.public_blob());
        assert_eq!(attached.fingerprint(), pair.fingerprint());
    }
}

#[test]
fn certificate_with_the_wrong_private_key_is_refused() {
    let set = keyset();
    let dir = tempfile::tempdir().unwrap();
    let ca = keygen(dir.path(), "ca", "ed25519", None, "", KeyAlgorithm::Ed25519);
    // Same type, different key: a second key of each type, certified, then paired with the
    // private key from the shared set.
    let mut refused = 0usize;
    for (i, key) in set.keys.iter().enumerate() {
        let (kind, bits) = match key.algorithm {
            KeyAlgorithm::Ed25519 => ("ed25519", None),
            KeyAlgorithm::EcdsaP256 => ("ecdsa", Some(256)),
            KeyAlgorithm::EcdsaP384 => ("ecdsa", Some(384)),
            KeyAlgorithm::EcdsaP521 => ("ecdsa", Some(521)),
            KeyAlgorithm::Rsa { bits } => ("rsa", Some(bits as u32)),
        };
        if matches!(key.algorithm, KeyAlgorithm::Rsa { bits: 3072 }) {
            continue; // 2048 covers RSA; spare the slow key generation.
        }
        let stranger = keygen(dir.path(), &format!("s{i}"), kind, bits, "", key.algorithm);
        let cert_blob = certify(&ca.path, &stranger, "stranger", "eve");
        let private = cert_private_of(&wire_of(key));
        let err = KeyPair::from_wire(&PrivateKeyWire::Certificate {
            cert_blob: cert_blob.clone(),
            private,
        })
        .unwrap_err();
        assert!(
            matches!(err, KeyError::CertificateMismatch),
            "{:?}: {err:?}",
            key.algorithm
        );
        let (plain, _) = KeyPair::from_openssh_file(&key.private_text(), None).unwrap();
        assert!(matches!(
            plain.with_certificate(&cert_blob),
            Err(KeyError::CertificateMismatch)
        ));
        refused += 1;
    }
    assert_eq!(refused, 5);

    // Different key types: an Ed25519 certificate with an ECDSA private part.
    let ed_cert = certify(&ca.path, &set.keys[0], "x", "y");
    let ecdsa_private = cert_private_of(&wire_of(&set.keys[1]));
    assert!(matches!(
        KeyPair::from_wire(&PrivateKeyWire::Certificate {
            cert_blob: ed_cert,
            private: ecdsa_private,
        }),
        Err(KeyError::CertificateMismatch)
    ));
}

#[test]
fn sshsig_with_a_certificate_key_verifies_with_ssh_keygen() {
    let set = keyset();
    let dir = tempfile::tempdir().unwrap();
    let ca = keygen(dir.path(), "ca", "ed25519", None, "", KeyAlgorithm::Ed25519);
    let key = &set.keys[1];
    let cert_blob = certify(&ca.path, key, "sig-cert", "alice");
    let (plain, _) = KeyPair::from_openssh_file(&key.private_text(), None).unwrap();
    let pair = plain.with_certificate(&cert_blob).unwrap();
    let message = b"signed with a certificate";
    let armored = sshsig::sign_armored(&pair, "file", message).unwrap();
    let sig_path = dir.path().join("m.sig");
    std::fs::write(&sig_path, armored).unwrap();
    let mut cmd = std::process::Command::new("ssh-keygen");
    cmd.args(["-Y", "check-novalidate", "-n", "file", "-s"])
        .arg(&sig_path);
    let out = output_with_stdin(&mut cmd, message);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
