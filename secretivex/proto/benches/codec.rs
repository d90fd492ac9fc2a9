//! Codec cost on the agent's hot path: decoding a sign request (as `ssh` sends
//! it during login) and encoding the reply; plus an identity listing and an
//! add-identity with a destination constraint.
//!
//! Run: `cargo bench -p secretivex-proto --bench codec`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use secretivex_proto::{
    parse_userauth_request, AddIdentity, Constraint, DestinationConstraint, Hop, HostKeySpec,
    Identity, PrivateKeyWire, Request, Response, SignRequest, UserauthRequest,
};
use zeroize::Zeroizing;

fn ed_blob(fill: u8) -> Vec<u8> {
    let mut v = Vec::new();
    for part in [&b"ssh-ed25519"[..], &[fill; 32][..]] {
        v.extend_from_slice(&(part.len() as u32).to_be_bytes());
        v.extend_from_slice(part);
    }
    v
}

fn bench(c: &mut Criterion) {
    let key = ed_blob(1);
    let userauth = UserauthRequest {
        session_id: vec![7; 32],
        user: "deploy".into(),
        service: "ssh-connection".into(),
        method: "publickey-hostbound-v00@openssh.com".into(),
        algorithm: "ssh-ed25519".into(),
        key_blob: key.clone(),
        server_host_key: Some(ed_blob(2)),
    }
    .encode();
    let sign = Request::Sign(SignRequest {
        key_blob: key.clone(),
        data: userauth.clone(),
        flags: 0,
    });
    let mut sign_body = Vec::new();
    sign.encode_body(&mut sign_body);
    c.bench_function("decode sign request (ed25519, hostbound userauth)", |b| {
        b.iter(|| Request::decode(black_box(&sign_body)))
    });
    c.bench_function("parse userauth request", |b| {
        b.iter(|| parse_userauth_request(black_box(&userauth)))
    });
    let sig = Response::SignResponse(ed_blob(3));
    let mut out = Vec::with_capacity(256);
    c.bench_function("encode sign response frame", |b| {
        b.iter(|| {
            out.clear();
            black_box(&sig).encode_frame(&mut out);
        })
    });
    let ids = Response::Identities(
        (0..100u8)
            .map(|i| Identity {
                key_blob: ed_blob(i),
                comment: format!("key-{i}"),
            })
            .collect(),
    );
    c.bench_function("encode identities answer (100 keys)", |b| {
        b.iter(|| {
            out.clear();
            black_box(&ids).encode_frame(&mut out);
        })
    });
    let add = Request::AddIdentity(AddIdentity {
        key: PrivateKeyWire::Ed25519 {
            public: [1; 32],
            keypair: Zeroizing::new(vec![2; 64]),
        },
        comment: "laptop".into(),
        constraints: vec![
            Constraint::Lifetime(3600),
            Constraint::RestrictDestination(vec![DestinationConstraint {
                from: Hop::default(),
                to: Hop {
                    user: String::new(),
                    hostname: "host.example".into(),
                    keys: vec![HostKeySpec {
                        key_blob: ed_blob(4),
                        is_ca: false,
                    }],
                },
            }]),
        ],
    });
    let mut add_body = Vec::new();
    add.encode_body(&mut add_body);
    c.bench_function(
        "decode add-identity (ed25519, lifetime, 1 destination)",
        |b| b.iter(|| Request::decode(black_box(&add_body))),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
