//! The crate's own `openssh-key-v1` parser against files written by the real `ssh-keygen`:
//! many ECDSA keys (OpenSSH writes the private scalar as a minimal mpint, which the
//! `ssh-key` 0.6 crate refused for about one P-521 file in four), every cipher
//! `ssh-keygen -Z` offers, and a table of malformed files that must give typed errors.

mod common;

use std::path::Path;
use std::process::Command;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::{keygen_fingerprint, run};
use secretivex_keys::{
    is_encrypted_openssh_file, KeyError, KeyFileError, KeyPair, OpensshKeyFile, PrivateKeyFile,
};
use secretivex_proto::{EcdsaCurve, PrivateKeyWire, ProtoError};

/// `ssh-keygen -t TYPE [-b BITS] [-Z CIPHER -a 2] -N PASS -C COMMENT -f DIR/NAME`; returns
/// the private key text.
fn keygen(
    dir: &Path,
    name: &str,
    kind: &str,
    bits: Option<u32>,
    cipher: Option<&str>,
    passphrase: &str,
) -> String {
    let path = dir.join(name);
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", kind]);
    if let Some(bits) = bits {
        cmd.args(["-b", &bits.to_string()]);
    }
    if let Some(cipher) = cipher {
        // Two KDF rounds keep the test quick; the KDF itself is the same.
        cmd.args(["-Z", cipher, "-a", "2"]);
    }
    cmd.args(["-N", passphrase, "-C", &format!("{name}@test"), "-f"])
        .arg(&path);
    run(&mut cmd);
    std::fs::read_to_string(&path).unwrap()
}

/// Length of the mpint OpenSSH wrote for a scalar of this magnitude (a zero byte is
/// prepended when the top bit is set).
fn mpint_len(magnitude: &[u8]) -> usize {
    magnitude.len() + usize::from(magnitude.first().is_some_and(|b| b & 0x80 != 0))
}

#[test]
fn many_ecdsa_keys_load_whatever_their_scalar_length() {
    let dir = tempfile::tempdir().unwrap();
    let mut short_p521 = 0usize;
    let mut loaded = 0usize;
    // (bits, curve, keys to make at least). P-521 continues past 40 until a key with a
    // scalar shorter than 66 bytes was seen (the case `ssh-key` 0.6 refused), at most 200.
    for (bits, curve, at_least) in [
        (256, EcdsaCurve::NistP256, 20usize),
        (384, EcdsaCurve::NistP384, 20),
        (521, EcdsaCurve::NistP521, 40),
    ] {
        let mut made = 0usize;
        while made < at_least || (bits == 521 && short_p521 == 0 && made < 200) {
            let name = format!("p{bits}_{made}");
            let text = keygen(dir.path(), &name, "ecdsa", Some(bits), None, "");
            made += 1;
            let file = PrivateKeyFile::parse(&text, None).unwrap_or_else(|e| panic!("{name}: {e}"));
            let PrivateKeyWire::Ecdsa {
                curve: got, scalar, ..
            } = &file.key
            else {
                panic!("{name}: not an ECDSA key");
            };
            assert_eq!(*got, curve);
            if curve == EcdsaCurve::NistP521 && mpint_len(scalar) < curve.scalar_len() {
                short_p521 += 1;
            }
            let (pair, comment) =
                KeyPair::from_openssh_file(&text, None).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(comment, format!("{name}@test"));
            let private_path = dir.path().join(&name);
            assert_eq!(
                pair.fingerprint(),
                keygen_fingerprint(&private_path),
                "{name}"
            );
            let sig = pair.sign(b"data", 0).unwrap();
            secretivex_keys::verify_signature(pair.public_blob(), b"data", &sig).unwrap();
            loaded += 1;
        }
    }
    assert!(loaded >= 80, "{loaded}");
    assert!(
        short_p521 > 0,
        "no P-521 key with a short scalar was generated"
    );
}

const CIPHERS: &[&str] = &[
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
    "aes256-cbc",
    "aes192-cbc",
    "aes128-cbc",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
];

#[test]
fn every_cipher_decrypts_with_the_right_passphrase_only() {
    let dir = tempfile::tempdir().unwrap();
    let kinds: &[(&str, Option<u32>)] =
        &[("ed25519", None), ("ecdsa", Some(521)), ("rsa", Some(2048))];
    for (i, cipher) in CIPHERS.iter().enumerate() {
        // Ed25519 with every cipher; ECDSA and RSA in turn, to cover other section sizes.
        for (kind, bits) in [kinds[0], kinds[1 + i % 2]] {
            let name = format!("enc{i}_{kind}");
            let text = keygen(dir.path(), &name, kind, bits, Some(cipher), "pass phrase");
            let label = format!("{cipher} {kind}");
            let file = OpensshKeyFile::parse(&text).unwrap();
            assert!(file.is_encrypted(), "{label}");
            assert!(is_encrypted_openssh_file(&text).unwrap(), "{label}");
            assert_eq!(file.cipher_name(), *cipher);
            assert_eq!(file.kdf_rounds(), Some(2));

            let (pair, comment) = KeyPair::from_openssh_file(&text, Some(b"pass phrase"))
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(comment, format!("{name}@test"));
            assert_eq!(pair.public_blob(), file.public_blob());
            assert_eq!(
                pair.fingerprint(),
                keygen_fingerprint(&dir.path().join(&name)),
                "{label}"
            );
            for wrong in [b"pass phrasE".as_slice(), b"", b"x"] {
                let err = KeyPair::from_openssh_file(&text, Some(wrong)).unwrap_err();
                assert!(matches!(err, KeyError::WrongPassphrase), "{label}: {err:?}");
            }
            assert!(matches!(
                KeyPair::from_openssh_file(&text, None),
                Err(KeyError::PassphraseRequired)
            ));
        }
    }
}

#[test]
fn chacha20_poly1305_files_are_recognised_but_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cipher = "chacha20-poly1305@openssh.com";
    let text = keygen(dir.path(), "chacha", "ed25519", None, Some(cipher), "pw");
    assert!(is_encrypted_openssh_file(&text).unwrap());
    let err = KeyPair::from_openssh_file(&text, Some(b"pw")).unwrap_err();
    assert!(
        matches!(&err, KeyError::Parse(KeyFileError::UnsupportedCipher(name)) if name == cipher),
        "{err:?}"
    );
}

#[test]
fn crlf_line_endings_and_surrounding_blank_lines_load() {
    let dir = tempfile::tempdir().unwrap();
    let text = keygen(dir.path(), "crlf", "ed25519", None, None, "");
    let crlf = format!("\n\n{}\r\n", text.replace('\n', "\r\n"));
    let (a, _) = KeyPair::from_openssh_file(&text, None).unwrap();
    let (b, _) = KeyPair::from_openssh_file(&crlf, None).unwrap();
    assert_eq!(a.public_blob(), b.public_blob());
}

// ---- malformed files ---------------------------------------------------------------------

fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u32::try_from(bytes.len()).unwrap().to_be_bytes());
    out.extend_from_slice(bytes);
}

/// The parts of a container, to be assembled with deliberate faults.
#[derive(Clone)]
struct Parts {
    magic: Vec<u8>,
    cipher: Vec<u8>,
    kdf: Vec<u8>,
    kdf_options: Vec<u8>,
    count: u32,
    public: Vec<Vec<u8>>,
    section: Vec<u8>,
    tail: Vec<u8>,
}

impl Parts {
    fn binary(&self) -> Vec<u8> {
        let mut out = self.magic.clone();
        put_string(&mut out, &self.cipher);
        put_string(&mut out, &self.kdf);
        put_string(&mut out, &self.kdf_options);
        out.extend_from_slice(&self.count.to_be_bytes());
        for p in &self.public {
            put_string(&mut out, p);
        }
        put_string(&mut out, &self.section);
        out.extend_from_slice(&self.tail);
        out
    }

    fn text(&self) -> String {
        armor(&self.binary())
    }
}

fn armor(binary: &[u8]) -> String {
    let b64 = STANDARD.encode(binary);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(70)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

/// An unencrypted private section: check integers, key, comment, padding to 8 bytes.
fn section(check: (u32, u32), key: &[u8], comment: &[u8], pad: impl Fn(usize) -> u8) -> Vec<u8> {
    let mut out = check.0.to_be_bytes().to_vec();
    out.extend_from_slice(&check.1.to_be_bytes());
    out.extend_from_slice(key);
    put_string(&mut out, comment);
    let mut i = 0;
    while !out.len().is_multiple_of(8) {
        i += 1;
        out.push(pad(i));
    }
    out
}

/// A valid unencrypted Ed25519 file assembled from a real key, and another key's blob.
/// The comment length is chosen so that the section needs padding.
fn valid_parts(dir: &Path) -> (Parts, Vec<u8>, Vec<u8>) {
    let key_of = |name: &str| {
        let text = keygen(dir, name, "ed25519", None, None, "");
        PrivateKeyFile::parse(&text, None).unwrap().key
    };
    let key = key_of("base");
    let other = key_of("other");
    let mut encoded = Vec::new();
    key.encode(&mut encoded);
    let parts = Parts {
        magic: b"openssh-key-v1\0".to_vec(),
        cipher: b"none".to_vec(),
        kdf: b"none".to_vec(),
        kdf_options: Vec::new(),
        count: 1,
        public: vec![key.public_blob()],
        section: section((7, 7), &encoded, b"comment", |i| i as u8),
        tail: Vec::new(),
    };
    (parts, encoded, other.public_blob())
}

fn file_error(text: &str) -> KeyFileError {
    match KeyPair::from_openssh_file(text, None) {
        Err(KeyError::Parse(e)) => e,
        other => panic!("expected a parse error, got {:?}", other.map(|(_, c)| c)),
    }
}

#[test]
fn the_assembled_base_file_is_valid() {
    // Guards the table below: each case differs from this file in one fault only.
    let dir = tempfile::tempdir().unwrap();
    let (parts, _, _) = valid_parts(dir.path());
    assert!(parts.section.len() % 8 == 0 && parts.section.last() != Some(&b'\0'));
    let (pair, comment) = KeyPair::from_openssh_file(&parts.text(), None).unwrap();
    assert_eq!(comment, "comment");
    assert_eq!(pair.public_blob(), parts.public[0].as_slice());
}

/// (label, file text, what the error must be).
type Case = (&'static str, String, fn(&KeyFileError) -> bool);

#[test]
fn malformed_files_give_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (base, encoded, other_blob) = valid_parts(dir.path());
    let good = base.text();
    let with = |f: &dyn Fn(&mut Parts)| {
        let mut p = base.clone();
        f(&mut p);
        p.text()
    };
    let long_name = "x".repeat(10_000);

    let cases: Vec<Case> = vec![
        ("not a key", "not a key".into(), |e| {
            matches!(e, KeyFileError::Armor)
        }),
        ("empty", String::new(), |e| matches!(e, KeyFileError::Armor)),
        (
            "no END line",
            good.replace("-----END OPENSSH PRIVATE KEY-----", ""),
            |e| matches!(e, KeyFileError::Armor),
        ),
        ("PEM RSA armor", good.replace("OPENSSH", "RSA"), |e| {
            matches!(e, KeyFileError::Armor)
        }),
        ("text after END", format!("{good}trailing"), |e| {
            matches!(e, KeyFileError::Armor)
        }),
        ("two files concatenated", format!("{good}{good}"), |e| {
            matches!(e, KeyFileError::Armor)
        }),
        ("bad base64", good.replacen("b3Blbn", "b3!@#n", 1), |e| {
            matches!(e, KeyFileError::Base64)
        }),
        (
            "wrong magic",
            with(&|p| p.magic = b"openssh-key-v2\0".to_vec()),
            |e| matches!(e, KeyFileError::Magic),
        ),
        (
            "two keys",
            with(&|p| {
                p.count = 2;
                p.public.push(p.public[0].clone());
            }),
            |e| matches!(e, KeyFileError::KeyCount(2)),
        ),
        (
            "zero keys",
            with(&|p| {
                p.count = 0;
                p.public.clear();
            }),
            |e| matches!(e, KeyFileError::KeyCount(0)),
        ),
        (
            "unknown cipher",
            with(&|p| p.cipher = b"blowfish-cbc".to_vec()),
            |e| matches!(e, KeyFileError::UnsupportedCipher(n) if n == "blowfish-cbc"),
        ),
        (
            "huge cipher name",
            with(&|p| p.cipher = long_name.clone().into_bytes()),
            |e| matches!(e, KeyFileError::UnsupportedCipher(n) if n.len() <= secretivex_keys::MAX_NAME_IN_ERROR),
        ),
        (
            "unknown KDF",
            with(&|p| {
                p.cipher = b"aes256-ctr".to_vec();
                p.kdf = b"scrypt".to_vec();
            }),
            |e| matches!(e, KeyFileError::UnsupportedKdf(n) if n == "scrypt"),
        ),
        (
            "KDF without cipher",
            with(&|p| {
                p.kdf = b"bcrypt".to_vec();
                p.kdf_options = [&[0, 0, 0, 1, 9][..], &[0, 0, 0, 2]].concat();
            }),
            |e| matches!(e, KeyFileError::CipherKdfMismatch),
        ),
        (
            "cipher without KDF",
            with(&|p| p.cipher = b"aes256-ctr".to_vec()),
            |e| matches!(e, KeyFileError::CipherKdfMismatch),
        ),
        (
            "KDF options for none",
            with(&|p| p.kdf_options = vec![0]),
            |e| matches!(e, KeyFileError::CipherKdfMismatch),
        ),
        (
            "bcrypt zero rounds",
            with(&|p| {
                p.cipher = b"aes256-ctr".to_vec();
                p.kdf = b"bcrypt".to_vec();
                p.kdf_options = [&[0, 0, 0, 1, 9][..], &[0, 0, 0, 0]].concat();
            }),
            |e| matches!(e, KeyFileError::KdfOptions(_)),
        ),
        (
            "bcrypt options truncated",
            with(&|p| {
                p.cipher = b"aes256-ctr".to_vec();
                p.kdf = b"bcrypt".to_vec();
                p.kdf_options = vec![0, 0, 0, 1, 9, 0, 0];
            }),
            |e| matches!(e, KeyFileError::Truncated(_)),
        ),
        (
            "section not whole blocks",
            with(&|p| {
                p.section.pop();
            }),
            |e| matches!(e, KeyFileError::SectionLength { block: 8 }),
        ),
        ("trailing bytes", with(&|p| p.tail = vec![0]), |e| {
            matches!(e, KeyFileError::TrailingBytes(_))
        }),
        (
            "truncated section",
            {
                let text = base.binary();
                armor(&text[..text.len() - 3])
            },
            |e| matches!(e, KeyFileError::Truncated("private section")),
        ),
        (
            "check integers differ",
            with(&|p| {
                p.section = section((7, 8), &encoded, b"comment", |i| i as u8);
            }),
            |e| matches!(e, KeyFileError::CheckIntMismatch),
        ),
        (
            "bad padding",
            with(&|p| {
                p.section = section((7, 7), &encoded, b"comment", |i| if i == 1 { 1 } else { 0 });
            }),
            |e| matches!(e, KeyFileError::Padding),
        ),
        (
            "comment runs past the section",
            with(&|p| {
                p.section = section((7, 7), &encoded, b"c", |i| i as u8);
                // The comment length field claims more than the section holds.
                let at = 8 + encoded.len();
                p.section[at..at + 4].copy_from_slice(&1000u32.to_be_bytes());
            }),
            |e| matches!(e, KeyFileError::Truncated("comment")),
        ),
        (
            "truncated private key",
            with(&|p| {
                p.section = section((7, 7), &encoded[..20], b"", |i| i as u8);
            }),
            |e| matches!(e, KeyFileError::PrivateKey(_)),
        ),
        (
            "unsupported key type inside",
            with(&|p| {
                let mut dss = Vec::new();
                put_string(&mut dss, b"ssh-dss");
                p.section = section((7, 7), &dss, b"", |i| i as u8);
            }),
            |e| {
                matches!(
                    e,
                    KeyFileError::PrivateKey(ProtoError::UnsupportedKeyType(_))
                )
            },
        ),
        (
            "public key of another key",
            with(&|p| p.public = vec![other_blob.clone()]),
            |e| matches!(e, KeyFileError::PublicKeyMismatch),
        ),
    ];
    for (label, text, expected) in &cases {
        let err = file_error(text);
        assert!(expected(&err), "{label}: got {err:?}");
        // Never the key: the message names the problem only.
        assert!(err.to_string().len() < 200, "{label}: {err}");
        if !matches!(err, KeyFileError::PrivateKey(_)) {
            // is_encrypted_openssh_file uses the same container parser.
            let container_ok = OpensshKeyFile::parse(text).is_ok();
            assert_eq!(
                is_encrypted_openssh_file(text).is_ok(),
                container_ok,
                "{label}"
            );
        }
    }
    assert_eq!(cases.len(), 27);
}

#[test]
fn every_truncation_and_byte_flip_is_an_error_or_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    for (name, cipher) in [("plain", None), ("enc", Some("aes256-gcm@openssh.com"))] {
        let text = keygen(
            dir.path(),
            name,
            "ecdsa",
            Some(256),
            cipher,
            cipher.map_or("", |_| "pw"),
        );
        let pass = cipher.map(|_| b"pw".as_slice());
        let (original, _) = KeyPair::from_openssh_file(&text, pass).unwrap();
        let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        let binary = STANDARD.decode(body).unwrap();
        let mut errors = 0usize;
        for len in 0..binary.len() {
            assert!(
                KeyPair::from_openssh_file(&armor(&binary[..len]), pass).is_err(),
                "{name}: truncated to {len} bytes loaded"
            );
        }
        // Flip one bit per byte: the result is an error or, for bits that do not matter
        // (the comment, the check integers' common value), the same key. In the encrypted
        // file only the GCM tag is flipped: every other flip would run the KDF (or, in the
        // rounds field, make it run for hours), and a flipped tag must read as a wrong
        // passphrase.
        let positions = if cipher.is_some() {
            binary.len() - 16..binary.len()
        } else {
            0..binary.len()
        };
        let tried = positions.len();
        for at in positions {
            let mut flipped = binary.clone();
            flipped[at] ^= 0x10;
            match KeyPair::from_openssh_file(&armor(&flipped), pass) {
                Ok((pair, _)) => assert_eq!(pair.public_blob(), original.public_blob()),
                Err(KeyError::WrongPassphrase) if cipher.is_some() => errors += 1,
                Err(e) if cipher.is_some() => panic!("{name}: flipped tag gave {e:?}"),
                Err(_) => errors += 1,
            }
        }
        assert!(
            errors > tried / 2,
            "{name}: only {errors} errors of {tried}"
        );
    }
}
