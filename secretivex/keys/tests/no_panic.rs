//! Arbitrary bytes into every blob parser: errors, never panics.

use proptest::prelude::*;
use secretivex_keys::{
    fingerprint_of_blob, key_type_of_blob, parse_certificate, sshsig, verify_signature,
};

/// A plausible prefix so that mutations reach past the type name.
fn with_type(name: &str, tail: &[u8]) -> Vec<u8> {
    let mut out = (name.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(tail);
    out
}

const TYPES: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
    "rsa-sha2-256",
    "ssh-ed25519-cert-v01@openssh.com",
    "ssh-rsa-cert-v01@openssh.com",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parsers_never_panic(
        key_tail in proptest::collection::vec(any::<u8>(), 0..600),
        sig_tail in proptest::collection::vec(any::<u8>(), 0..600),
        data in proptest::collection::vec(any::<u8>(), 0..64),
        key_type in 0..TYPES.len(),
        sig_type in 0..TYPES.len(),
    ) {
        let key = with_type(TYPES[key_type], &key_tail);
        let sig = with_type(TYPES[sig_type], &sig_tail);
        for blob in [&key_tail, &key] {
            let _ = key_type_of_blob(blob);
            let _ = fingerprint_of_blob(blob);
            let _ = parse_certificate(blob);
        }
        prop_assert!(verify_signature(&key, &data, &sig).is_err());
        prop_assert!(verify_signature(&key_tail, &data, &sig_tail).is_err());
        prop_assert!(sshsig::verify(&sig_tail, "file", &data).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Key file containers: the magic and a plausible header, then arbitrary bytes. No
    /// passphrase is given, so no KDF runs; unencrypted sections are decoded in full.
    #[test]
    fn key_file_parser_never_panics(
        cipher in prop_oneof![Just("none"), Just("aes256-ctr"), Just("aes256-gcm@openssh.com")],
        tail in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut bin = b"openssh-key-v1\0".to_vec();
        let kdf: &[u8] = if cipher == "none" { b"none" } else { b"bcrypt" };
        for field in [cipher.as_bytes(), kdf] {
            bin.extend_from_slice(&(field.len() as u32).to_be_bytes());
            bin.extend_from_slice(field);
        }
        bin.extend_from_slice(&tail);
        let parsed = secretivex_keys::OpensshKeyFile::from_binary(&bin);
        if let Ok(file) = parsed {
            match file.decrypt(None) {
                Ok(key) => prop_assert_eq!(key.key.public_blob(), file.public_blob()),
                Err(e) => prop_assert!(!file.is_encrypted()
                    || matches!(e, secretivex_keys::KeyError::PassphraseRequired)),
            }
        }
        let text = String::from_utf8_lossy(&tail);
        prop_assert!(secretivex_keys::KeyPair::from_openssh_file(&text, None).is_err());
    }
}

#[test]
fn valid_ed25519_key_with_garbage_signatures() {
    // A real-looking key (any 32 bytes parse as an Ed25519 public key blob).
    let key = {
        let mut tail = 32u32.to_be_bytes().to_vec();
        tail.extend_from_slice(&[7u8; 32]);
        with_type("ssh-ed25519", &tail)
    };
    assert!(fingerprint_of_blob(&key).is_ok());
    let mut sig_inner = 64u32.to_be_bytes().to_vec();
    sig_inner.extend_from_slice(&[0u8; 64]);
    let sig = with_type("ssh-ed25519", &sig_inner);
    assert!(verify_signature(&key, b"x", &sig).is_err());
}
