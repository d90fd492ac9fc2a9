//! Signed checkpoints (signed-note format, Ed25519) and the CLI proof bundles.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use proptest::prelude::*;
use tracehound_core::audit::RecordKind;
use tracehound_ledger::{
    verify_consistency_bundle, verify_inclusion_bundle, BundleError, Checkpoint, CheckpointError,
    CheckpointSigner, CheckpointVerifier, FsyncPolicy, Ledger, LedgerConfig, NewRecord,
};

// golang.org/x/mod/sumdb/note's published example: key, private seed and signed note.
const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const GO_SKEY_B64: &str = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const GO_SIG: &str =
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=";

fn signer(name: &str) -> CheckpointSigner {
    CheckpointSigner::from_pkcs8(name, &CheckpointSigner::generate_pkcs8().unwrap()).unwrap()
}

#[test]
fn the_go_signed_note_example_verifies_and_is_reproduced_byte_for_byte() {
    let note = format!("{GO_TEXT}\n\u{2014} PeterNeumann {GO_SIG}\n");
    let verifier = CheckpointVerifier::from_verifier_key(GO_VKEY).unwrap();
    assert_eq!(verifier.to_verifier_key(), GO_VKEY);
    assert_eq!(verifier.verify_note(&note), Ok(GO_TEXT));
    // Not a checkpoint body, so as a checkpoint it is malformed (after the signature passed).
    assert!(matches!(
        verifier.verify(&note),
        Err(CheckpointError::Malformed(_))
    ));

    let skey = STANDARD.decode(GO_SKEY_B64).unwrap();
    let seed: [u8; 32] = skey[1..].try_into().unwrap();
    let signer = CheckpointSigner::from_seed("PeterNeumann", &seed).unwrap();
    assert_eq!(signer.verifier(), verifier);
    assert_eq!(signer.sign_note(GO_TEXT).unwrap(), note);

    let mut bad = note.clone().into_bytes();
    bad[3] ^= 0x01; // "If you" → another letter in the text
    assert_eq!(
        verifier.verify_note(std::str::from_utf8(&bad).unwrap()),
        Err(CheckpointError::BadSignature("PeterNeumann".into()))
    );
}

#[test]
fn checkpoints_sign_verify_and_reject_alterations() {
    let s = signer("tracehound-test");
    let v = CheckpointVerifier::from_verifier_key(&s.verifier().to_verifier_key()).unwrap();
    let cp = Checkpoint {
        origin: "tracehound.example/audit".into(),
        size: 12345,
        root: [7; 32],
    };
    let note = s.sign(&cp).unwrap();
    let b64 = STANDARD.encode([7u8; 32]);
    assert!(note.starts_with(&format!(
        "tracehound.example/audit\n12345\n{b64}\n\n\u{2014} tracehound-test "
    )));
    assert_eq!(v.verify(&note), Ok(cp.clone()));

    // Size, root and origin are all covered by the signature.
    for (from, to) in [
        ("12345", "12346"),
        (b64.as_str(), STANDARD.encode([8u8; 32]).as_str()),
        ("example", "exampla"),
    ] {
        let altered = note.replacen(from, to, 1);
        assert_eq!(
            v.verify(&altered),
            Err(CheckpointError::BadSignature("tracehound-test".into())),
            "{from} → {to}"
        );
    }
    // A signature byte flipped.
    let (body, sig_line) = note.rsplit_once(' ').unwrap();
    let mut blob = STANDARD.decode(sig_line.trim_end()).unwrap();
    blob[10] ^= 0x80;
    let flipped = format!("{body} {}\n", STANDARD.encode(&blob));
    assert_eq!(
        v.verify(&flipped),
        Err(CheckpointError::BadSignature("tracehound-test".into()))
    );
    // Another key, and another key under the same name.
    let other = signer("other");
    assert_eq!(
        other.verifier().verify(&note),
        Err(CheckpointError::NoSignature("other".into()))
    );
    let impostor = signer("tracehound-test");
    assert!(matches!(
        impostor.verifier().verify(&note),
        Err(CheckpointError::NoSignature(_))
    ));
    // A co-signature by another key is ignored; ours still verifies.
    let cosigned = format!(
        "{}{}",
        note,
        other.sign(&cp).unwrap().rsplit_once("\n\n").unwrap().1
    );
    assert_eq!(v.verify(&cosigned), Ok(cp));
    assert_eq!(
        other.verifier().verify(&cosigned).map(|c| c.size),
        Ok(12345)
    );
}

#[test]
fn malformed_keys_and_notes_are_errors() {
    let s = signer("k");
    let vkey = s.verifier().to_verifier_key();
    let mut wrong_id = vkey.clone().into_bytes();
    wrong_id[2] = if wrong_id[2] == b'0' { b'1' } else { b'0' };
    for bad in [
        String::from_utf8(wrong_id).unwrap(),
        vkey.replacen("k+", "j+", 1),
        "k+00000000".to_owned(),
        "k+00000000+AQ==".to_owned(),
        format!("{}x", vkey),
        String::new(),
    ] {
        assert!(
            CheckpointVerifier::from_verifier_key(&bad).is_err(),
            "{bad:?}"
        );
    }
    assert!(
        CheckpointSigner::from_pkcs8("bad name", &CheckpointSigner::generate_pkcs8().unwrap())
            .is_err()
    );
    assert!(CheckpointSigner::from_pkcs8("k", b"not a key").is_err());
    let v = s.verifier();
    for bad in [
        "",
        "\n\n",
        "a\n1\nAA==\n",
        "a\n1\nAA==\n\n",
        "a\n1\nAA==\n\nnot a signature\n",
        "a\n1\nAA==\n\n\u{2014} k\n",
    ] {
        assert!(v.verify(bad).is_err(), "{bad:?}");
    }
    let cp = |origin: &str| Checkpoint {
        origin: origin.into(),
        size: 1,
        root: [0; 32],
    };
    assert!(s.sign(&cp("")).is_err());
    assert!(s.sign(&cp("two\nlines")).is_err());
    for body in [
        "o\n01\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "o\n1\nAAAA\n",
        "o\n-1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "o\n1\n",
    ] {
        assert!(Checkpoint::parse_body(body).is_err(), "{body:?}");
    }
}

proptest! {
    #[test]
    fn verifying_arbitrary_or_mutated_notes_never_panics(
        text in ".{0,300}",
        at: usize,
        byte: u8,
    ) {
        let s = signer("p");
        let v = s.verifier();
        let _ = v.verify(&text);
        let _ = CheckpointVerifier::from_verifier_key(&text);
        let _ = Checkpoint::parse_body(&text);
        let note = s.sign(&Checkpoint { origin: "o".into(), size: 9, root: [1; 32] }).unwrap();
        let mut bytes = note.clone().into_bytes();
        let i = at % bytes.len();
        bytes[i] = byte;
        if let Ok(mutated) = String::from_utf8(bytes) {
            if mutated != note {
                // Any change to a signed note either breaks it or leaves the checkpoint intact
                // (for example a change in the signature block that still leaves our line).
                if let Ok(cp) = v.verify(&mutated) {
                    prop_assert_eq!(cp, Checkpoint { origin: "o".into(), size: 9, root: [1; 32] });
                }
            }
        }
    }
}

fn small_ledger(n: u64) -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let (mut ledger, _) = Ledger::open(
        dir.path(),
        LedgerConfig {
            max_segment_bytes: 4096,
            fsync: FsyncPolicy::Batch(8),
        },
    )
    .unwrap();
    for i in 0..n {
        let id = format!("rec-{i}");
        ledger
            .append(&NewRecord {
                kind: RecordKind::Evacuation,
                id: &id,
                signature: "spam:ab",
                timestamp: i as f64,
            })
            .unwrap();
    }
    ledger.sync().unwrap();
    (dir, ledger)
}

#[test]
fn inclusion_bundles_verify_offline_and_fail_when_altered() {
    let (_dir, ledger) = small_ledger(37);
    let s = signer("log-key");
    let v = s.verifier();
    let bundle = ledger
        .prove(21, Some(("tracehound.test/audit", &s)))
        .unwrap();
    let json = bundle.to_json();
    let ok = verify_inclusion_bundle(&json, Some(&v)).unwrap();
    assert_eq!(
        (ok.index, ok.tree_size, ok.checkpoint_verified),
        (21, 37, true)
    );
    assert_eq!(ok.record.id, "rec-21");
    assert!(
        !verify_inclusion_bundle(&json, None)
            .unwrap()
            .checkpoint_verified
    );

    // Each field altered: rejected, with the reason.
    let mut b = bundle.clone();
    b.entry = b.entry.replace("rec-21", "rec-22");
    assert_eq!(
        verify_inclusion_bundle(&b.to_json(), Some(&v)),
        Err(BundleError::LeafHash)
    );
    let mut b = bundle.clone();
    b.index = 20;
    assert!(matches!(
        verify_inclusion_bundle(&b.to_json(), Some(&v)),
        Err(BundleError::Proof(_))
    ));
    let mut b = bundle.clone();
    b.inclusion_path[2] = b.inclusion_path[2].replacen(|c: char| c.is_ascii_digit(), "f", 1);
    assert!(matches!(
        verify_inclusion_bundle(&b.to_json(), Some(&v)),
        Err(BundleError::Proof(_))
    ));
    let mut b = bundle.clone();
    b.inclusion_path.pop();
    assert!(matches!(
        verify_inclusion_bundle(&b.to_json(), Some(&v)),
        Err(BundleError::Proof(_))
    ));
    // A consistent proof against another root is caught by the signed checkpoint.
    let other = ledger.prove(21, None).unwrap();
    let mut b = other.clone();
    b.checkpoint = Some(
        s.sign(&Checkpoint {
            origin: "tracehound.test/audit".into(),
            size: 36,
            root: ledger.root(36).unwrap(),
        })
        .unwrap(),
    );
    assert_eq!(
        verify_inclusion_bundle(&b.to_json(), Some(&v)),
        Err(BundleError::CheckpointMismatch)
    );
    assert_eq!(
        verify_inclusion_bundle(&other.to_json(), Some(&v)),
        Err(BundleError::MissingCheckpoint)
    );
    assert!(matches!(
        verify_inclusion_bundle(&json, Some(&signer("log-key").verifier())),
        Err(BundleError::Checkpoint(_))
    ));
    for bad in [
        "",
        "{}",
        "[]",
        "{\"format\":\"tracehound-inclusion-v1\"}",
        &json.replace("inclusion-v1", "inclusion-v9"),
    ] {
        assert!(verify_inclusion_bundle(bad, Some(&v)).is_err(), "{bad:?}");
    }
    assert!(ledger.prove(37, None).is_err());
}

#[test]
fn consistency_bundles_verify_and_fail_when_altered() {
    let (_dir, ledger) = small_ledger(50);
    for (a, b) in [(0, 50), (1, 50), (16, 50), (33, 50), (50, 50), (7, 9)] {
        let bundle = ledger.prove_consistency(a, b).unwrap();
        assert_eq!(
            verify_consistency_bundle(&bundle.to_json()),
            Ok(bundle.clone()),
            "{a}->{b}"
        );
        if a > 0 {
            let mut bad = bundle.clone();
            bad.second_root = bundle.first_root.clone();
            if a != b {
                assert!(
                    verify_consistency_bundle(&bad.to_json()).is_err(),
                    "{a}->{b}"
                );
            }
        }
    }
    let json = ledger.prove_consistency(20, 50).unwrap().to_json();
    assert!(verify_consistency_bundle(&json.replacen(
        "\"first_size\": 20",
        "\"first_size\": 21",
        1
    ))
    .is_err());
    assert!(ledger.prove_consistency(20, 51).is_err());
}
