//! RSA sign-request flags (RFC 9987 §5.5): 0 → `ssh-rsa` (SHA-1, as OpenSSH's agent still
//! signs for old servers and `ssh-add -T`), `SSH_AGENT_RSA_SHA2_256` → `rsa-sha2-256`,
//! `SSH_AGENT_RSA_SHA2_512` → `rsa-sha2-512`; flags are ignored for other key types. Every
//! signature is checked with `secretivex_keys::verify_signature`.

mod common;

use common::keys::Reader;
use common::wire;
use common::{gen_keys, tempdir, Agent, KeyKind};
use secretivex_proto::{sign_flags, Request, SignRequest};

fn sign(agent: &Agent, blob: &[u8], data: &[u8], flags: u32) -> Vec<u8> {
    let mut frame = Vec::new();
    Request::Sign(SignRequest {
        key_blob: blob.to_vec(),
        data: data.to_vec(),
        flags,
    })
    .encode_frame(&mut frame);
    let mut conn = wire::connect(agent.sock()).expect("connect");
    match wire::request(&mut conn, &frame).expect("reply") {
        wire::Reply::Frame {
            msg_type: wire::SIGN_RESPONSE,
            body,
        } => Reader::new(&body).string().to_vec(),
        other => panic!("flags {flags:#x}: {other:?}\n{}", agent.output()),
    }
}

fn algorithm(sig: &[u8]) -> String {
    String::from_utf8_lossy(Reader::new(sig).string()).into_owned()
}

#[test]
fn rsa_flags_choose_the_hash_and_others_ignore_them() {
    let dir = tempdir();
    let keys = gen_keys(
        dir.path(),
        &[
            (KeyKind::Rsa3072, "id_rsa"),
            (KeyKind::Ed25519, "id_ed"),
            (KeyKind::Ecdsa521, "id_ec"),
        ],
    );
    let agent = Agent::start(dir.path());
    for k in &keys {
        agent.add(&k.private);
    }
    let data = b"data to sign";
    let rsa = keys[0].public_blob();
    for (flags, want) in [
        (0, "ssh-rsa"),
        (sign_flags::RSA_SHA2_256, "rsa-sha2-256"),
        (sign_flags::RSA_SHA2_512, "rsa-sha2-512"),
    ] {
        let sig = sign(&agent, &rsa, data, flags);
        assert_eq!(algorithm(&sig), want, "flags {flags:#x}");
        secretivex_keys::verify_signature(&rsa, data, &sig)
            .unwrap_or_else(|e| panic!("{want} signature does not verify: {e}"));
        assert!(
            secretivex_keys::verify_signature(&rsa, b"other data", &sig).is_err(),
            "{want} signature verifies for other data"
        );
    }
    for (k, want) in [(&keys[1], "ssh-ed25519"), (&keys[2], "ecdsa-sha2-nistp521")] {
        let blob = k.public_blob();
        for flags in [0, sign_flags::RSA_SHA2_256, sign_flags::RSA_SHA2_512] {
            let sig = sign(&agent, &blob, data, flags);
            assert_eq!(algorithm(&sig), want, "flags {flags:#x}");
            secretivex_keys::verify_signature(&blob, data, &sig).expect("verifies");
        }
    }
}
