//! Untrusted blobs into every public parser: key blobs, certificates, signature blobs and
//! SSHSIG. The agent feeds session-bind host keys and signatures from the network into
//! `verify_signature`, so it must never panic.
//!
//! Run: `cd secretivex/keys/fuzz && cargo +nightly fuzz run parse_blobs`
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    // Split the input into a key blob and a signature blob at a position chosen by the first
    // two bytes (so RSA-sized key blobs are reachable).
    let Some((split, rest)) = input.split_first_chunk::<2>() else {
        return;
    };
    let at = usize::from(u16::from_be_bytes(*split)).min(rest.len());
    let (key, sig) = rest.split_at(at);
    let _ = secretivex_keys::key_type_of_blob(key);
    let _ = secretivex_keys::fingerprint_of_blob(key);
    let _ = secretivex_keys::parse_certificate(key);
    let _ = secretivex_keys::parse_certificate(rest);
    let _ = secretivex_keys::verify_signature(key, b"fuzz", sig);
    let _ = secretivex_keys::sshsig::verify(rest, "file", b"fuzz");
});
