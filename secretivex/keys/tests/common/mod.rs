//! Shared helpers: keys generated with the real `ssh-keygen` in a temporary directory.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use secretivex_keys::KeyAlgorithm;

/// Key types under test: (`ssh-keygen -t`, `-b`, expected algorithm).
pub const KEY_TYPES: &[(&str, Option<u32>, KeyAlgorithm)] = &[
    ("ed25519", None, KeyAlgorithm::Ed25519),
    ("ecdsa", Some(256), KeyAlgorithm::EcdsaP256),
    ("ecdsa", Some(384), KeyAlgorithm::EcdsaP384),
    ("ecdsa", Some(521), KeyAlgorithm::EcdsaP521),
    ("rsa", Some(2048), KeyAlgorithm::Rsa { bits: 2048 }),
    ("rsa", Some(3072), KeyAlgorithm::Rsa { bits: 3072 }),
];

/// A key file pair written by `ssh-keygen`.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    pub path: PathBuf,
    pub algorithm: KeyAlgorithm,
    pub comment: String,
}

impl GeneratedKey {
    pub fn private_text(&self) -> String {
        std::fs::read_to_string(&self.path).expect("read private key")
    }

    pub fn pub_path(&self) -> PathBuf {
        with_suffix(&self.path, ".pub")
    }

    pub fn cert_path(&self) -> PathBuf {
        with_suffix(&self.path, "-cert.pub")
    }

    /// The public key blob from `F.pub`.
    pub fn public_blob(&self) -> Vec<u8> {
        blob_of_pub_file(&self.pub_path())
    }
}

pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Decodes the base64 field of a one-line OpenSSH public key or certificate file.
pub fn blob_of_pub_file(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).expect("read .pub");
    let b64 = text.split_whitespace().nth(1).expect("base64 field");
    STANDARD.decode(b64).expect("base64")
}

pub fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.stdin(Stdio::null()).output().expect("spawn ssh-keygen");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `cmd` with `input` on its stdin and returns what it printed and how it exited,
/// whatever that was (the caller asserts).
pub fn output_with_stdin(cmd: &mut Command, input: &[u8]) -> std::process::Output {
    use std::io::Write as _;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

/// Runs `ssh-keygen -t TYPE [-b BITS] -N PASS -C COMMENT -f DIR/NAME`.
pub fn keygen(
    dir: &Path,
    name: &str,
    kind: &str,
    bits: Option<u32>,
    passphrase: &str,
    algorithm: KeyAlgorithm,
) -> GeneratedKey {
    let path = dir.join(name);
    let comment = format!("{name}@test");
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", kind]);
    if let Some(bits) = bits {
        cmd.args(["-b", &bits.to_string()]);
    }
    cmd.args(["-N", passphrase, "-C", &comment, "-f"])
        .arg(&path);
    run(&mut cmd);
    GeneratedKey {
        path,
        algorithm,
        comment,
    }
}

/// The `SHA256:...` field of `ssh-keygen -lf FILE`.
pub fn keygen_fingerprint(path: &Path) -> String {
    let out = run(Command::new("ssh-keygen").arg("-lf").arg(path));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    text.split_whitespace()
        .nth(1)
        .expect("fingerprint field")
        .to_owned()
}

/// Signs `F.pub` with the CA key: `ssh-keygen -s CA -I ID -n PRINCIPALS F.pub`.
pub fn certify(ca: &Path, key: &GeneratedKey, id: &str, principals: &str) -> Vec<u8> {
    run(Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(ca)
        .args(["-I", id, "-n", principals])
        .arg(key.pub_path()));
    blob_of_pub_file(&key.cert_path())
}

/// One unencrypted key of every type, generated once per test binary.
pub struct KeySet {
    pub dir: tempfile::TempDir,
    pub keys: Vec<GeneratedKey>,
}

pub fn keyset() -> &'static KeySet {
    static SET: OnceLock<KeySet> = OnceLock::new();
    SET.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = KEY_TYPES
            .iter()
            .enumerate()
            .map(|(i, (kind, bits, alg))| {
                keygen(dir.path(), &format!("key{i}_{kind}"), kind, *bits, "", *alg)
            })
            .collect();
        KeySet { dir, keys }
    })
}

/// The private key of an unencrypted key file in add-identity form, read here with a
/// minimal reader of its own (armor, header, check integers) and `secretivex_proto`'s
/// decoder, independently of the crate's key file parser.
pub fn wire_of_unencrypted_file(text: &str) -> secretivex_proto::PrivateKeyWire {
    fn string<'a>(buf: &mut &'a [u8]) -> &'a [u8] {
        let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
        let (field, rest) = buf[4..].split_at(len);
        *buf = rest;
        field
    }
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let binary = STANDARD.decode(body).expect("base64 body");
    let mut buf = binary
        .strip_prefix(b"openssh-key-v1\0".as_slice())
        .expect("magic");
    assert_eq!(string(&mut buf), b"none", "cipher");
    assert_eq!(string(&mut buf), b"none", "kdf");
    assert_eq!(string(&mut buf), b"", "kdf options");
    assert_eq!(&buf[..4], &[0, 0, 0, 1], "one key");
    buf = &buf[4..];
    let _public = string(&mut buf);
    let section = string(&mut buf);
    assert_eq!(section[..4], section[4..8], "check integers");
    let (key, _comment_and_padding) =
        secretivex_proto::PrivateKeyWire::decode_prefix(&section[8..]).expect("private key");
    key
}
