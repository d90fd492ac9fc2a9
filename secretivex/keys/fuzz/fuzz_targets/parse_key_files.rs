//! Untrusted OpenSSH private key files into the crate's `openssh-key-v1` parser: the binary
//! container (cipher, KDF, key count, sections, tag), the decryption and the decoding of
//! the private section (check integers, key, comment, padding, public key match), and the
//! text armor. Key files come from disk, possibly from someone else: never panic.
//!
//! Seed the corpus with real files (base64 bodies decoded), e.g.
//! `for c in none aes256-ctr aes256-cbc aes256-gcm@openssh.com; do ssh-keygen -t ecdsa -Z "$c" -a 1 -N fuzz ...`,
//! then run: `cd secretivex/keys/fuzz && cargo +nightly fuzz run parse_key_files`
#![no_main]

use libfuzzer_sys::fuzz_target;
use secretivex_keys::{KeyPair, OpensshKeyFile};

fuzz_target!(|input: &[u8]| {
    if let Ok(file) = OpensshKeyFile::from_binary(input) {
        // Even one bcrypt round costs milliseconds, so encrypted files are decrypted only
        // when they use one round and their last byte (inside the tag or the private
        // section) is below 16: the fuzzer still reaches every cipher and the decrypted
        // section, without spending almost all of its time in the KDF.
        let passphrase: Option<&[u8]> = match file.kdf_rounds() {
            None => None,
            Some(1) if input.last().is_some_and(|&b| b < 16) => Some(b"fuzz"),
            Some(_) => return,
        };
        if let Ok(key) = file.decrypt(passphrase) {
            // What a successful parse promises: the private key encodes the stored blob.
            assert_eq!(key.key.public_blob(), file.public_blob());
            let _ = KeyPair::from_wire(&key.key);
        }
    }
    if let Ok(text) = std::str::from_utf8(input) {
        let _ = OpensshKeyFile::parse(text);
    }
});
