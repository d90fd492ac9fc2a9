//! One test per message: decode hand-built bytes, check every field, and check
//! that encoding gives the same bytes back.

mod common;

use common::*;
use secretivex_proto::{
    msg, parse_userauth_request, AddIdentity, CertPrivate, Constraint, DestinationConstraint,
    EcdsaCurve, ExtensionRequest, Hop, HostKeySpec, Identity, PrivateKeyWire, ProtoError, Request,
    Response, SessionBind, SignRequest, SmartcardKey, UserauthRequest,
};
use zeroize::Zeroizing;

/// Decodes `body`, checks it equals `want`, and that both encoders reproduce it.
fn check_request(body: &[u8], want: &Request) {
    assert_eq!(Request::decode(body).as_ref(), Ok(want));
    let mut b = Vec::new();
    want.encode_body(&mut b);
    assert_eq!(b, body, "encode_body");
    let mut f = Vec::new();
    want.encode_frame(&mut f);
    assert_eq!(f[..4], (body.len() as u32).to_be_bytes());
    assert_eq!(&f[4..], body, "encode_frame");
}

fn check_response(body: &[u8], want: &Response) {
    assert_eq!(Response::decode(body).as_ref(), Ok(want));
    let mut f = Vec::new();
    want.encode_frame(&mut f);
    assert_eq!(f[..4], (body.len() as u32).to_be_bytes());
    assert_eq!(&f[4..], body);
    assert_eq!(want.encoded_len(), body.len());
}

fn z(b: &[u8]) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(b.to_vec())
}

fn ed25519_key() -> PrivateKeyWire {
    PrivateKeyWire::Ed25519 {
        public: ED_PK,
        keypair: z(&ed_sk()),
    }
}

#[test]
fn request_identities_11() {
    check_request(&[11], &Request::RequestIdentities);
}

#[test]
fn sign_request_13() {
    let key = blob("ssh-ed25519", &ED_PK);
    let body = cat(&[&[13], &s(&key), &s(b"data to sign"), &u32b(4)]);
    check_request(
        &body,
        &Request::Sign(SignRequest {
            key_blob: key,
            data: b"data to sign".to_vec(),
            flags: secretivex_proto::sign_flags::RSA_SHA2_512,
        }),
    );
}

#[test]
fn add_identity_17_ed25519() {
    let body = cat(&[&[17], &ed25519_wire(), &s(b"me@laptop")]);
    check_request(
        &body,
        &Request::AddIdentity(AddIdentity {
            key: ed25519_key(),
            comment: "me@laptop".into(),
            constraints: vec![],
        }),
    );
}

#[test]
fn add_identity_17_ecdsa_p256() {
    let scalar = [0x80; 32]; // top bit set: the wire carries a sign-padding byte
    let body = cat(&[
        &[17],
        &p256_wire("nistp256", &p256_point(), &scalar),
        &s(b""),
    ]);
    assert_eq!(body.len(), 1 + 23 + 12 + 69 + 37 + 4);
    check_request(
        &body,
        &Request::AddIdentity(AddIdentity {
            key: PrivateKeyWire::Ecdsa {
                curve: EcdsaCurve::NistP256,
                public_point: p256_point(),
                scalar: z(&scalar),
            },
            comment: String::new(),
            constraints: vec![],
        }),
    );
}

#[test]
fn add_identity_17_ecdsa_p384_and_p521() {
    for (curve, name, id) in [
        (EcdsaCurve::NistP384, "ecdsa-sha2-nistp384", "nistp384"),
        (EcdsaCurve::NistP521, "ecdsa-sha2-nistp521", "nistp521"),
    ] {
        let mut point = vec![4];
        point.resize(curve.point_len(), 0x5a);
        let scalar = vec![0x01; curve.scalar_len()];
        let body = cat(&[
            &[17],
            &s(name.as_bytes()),
            &s(id.as_bytes()),
            &s(&point),
            &mpint(&scalar),
            &s(b"c"),
        ]);
        let key = PrivateKeyWire::Ecdsa {
            curve,
            public_point: point.clone(),
            scalar: z(&scalar),
        };
        assert_eq!(key.type_name(), Some(name));
        check_request(
            &body,
            &Request::AddIdentity(AddIdentity {
                key,
                comment: "c".into(),
                constraints: vec![],
            }),
        );
    }
}

#[test]
fn add_identity_17_rsa_strips_sign_padding() {
    let n = [0xc1; 256];
    let e = [0x01, 0x00, 0x01];
    let (d, iqmp, p, q) = ([0x91; 255], [0x12; 128], [0xf3; 128], [0xe4; 128]);
    let body = cat(&[
        &[17],
        &s(b"ssh-rsa"),
        &mpint(&n),
        &mpint(&e),
        &mpint(&d),
        &mpint(&iqmp),
        &mpint(&p),
        &mpint(&q),
        &s(b"rsa key"),
    ]);
    // n has its top bit set, so the wire holds 257 bytes for it.
    assert_eq!(body[1 + 11..1 + 11 + 5], [0, 0, 1, 1, 0]);
    let key = PrivateKeyWire::Rsa {
        n: n.to_vec(),
        e: e.to_vec(),
        d: z(&d),
        iqmp: z(&iqmp),
        p: z(&p),
        q: z(&q),
    };
    assert_eq!(
        key.public_blob(),
        cat(&[&s(b"ssh-rsa"), &mpint(&e), &mpint(&n)])
    );
    check_request(
        &body,
        &Request::AddIdentity(AddIdentity {
            key,
            comment: "rsa key".into(),
            constraints: vec![],
        }),
    );
}

#[test]
fn add_identity_17_certificates() {
    let cert = ed_cert_blob();
    let body = cat(&[
        &[17],
        &s(b"ssh-ed25519-cert-v01@openssh.com"),
        &s(&cert),
        &s(&ED_PK),
        &s(&ed_sk()),
        &s(b"cert"),
    ]);
    let key = PrivateKeyWire::Certificate {
        cert_blob: cert.clone(),
        private: CertPrivate::Ed25519 {
            public: ED_PK,
            keypair: z(&ed_sk()),
        },
    };
    assert_eq!(key.type_name(), Some("ssh-ed25519-cert-v01@openssh.com"));
    assert_eq!(key.public_blob(), cert);
    check_request(
        &body,
        &Request::AddIdentity(AddIdentity {
            key,
            comment: "cert".into(),
            constraints: vec![],
        }),
    );

    let ecert = cat(&[&s(b"ecdsa-sha2-nistp521-cert-v01@openssh.com"), &[7; 40]]);
    let body = cat(&[
        &[17],
        &s(b"ecdsa-sha2-nistp521-cert-v01@openssh.com"),
        &s(&ecert),
        &mpint(&[0x01; 66]),
        &s(b""),
    ]);
    check_request(
        &body,
        &Request::AddIdentity(AddIdentity {
            key: PrivateKeyWire::Certificate {
                cert_blob: ecert,
                private: CertPrivate::Ecdsa {
                    scalar: z(&[0x01; 66]),
                },
            },
            comment: String::new(),
            constraints: vec![],
        }),
    );

    let rcert = cat(&[&s(b"ssh-rsa-cert-v01@openssh.com"), &[8; 40]]);
    let body = cat(&[
        &[17],
        &s(b"ssh-rsa-cert-v01@openssh.com"),
        &s(&rcert),
        &mpint(&[0x81; 8]),
        &mpint(&[0x02; 4]),
        &mpint(&[0x83; 4]),
        &mpint(&[0x04; 4]),
        &s(b"r"),
    ]);
    check_request(
        &body,
        &Request::AddIdentity(AddIdentity {
            key: PrivateKeyWire::Certificate {
                cert_blob: rcert,
                private: CertPrivate::Rsa {
                    d: z(&[0x81; 8]),
                    iqmp: z(&[0x02; 4]),
                    p: z(&[0x83; 4]),
                    q: z(&[0x04; 4]),
                },
            },
            comment: "r".into(),
            constraints: vec![],
        }),
    );
}

#[test]
fn add_id_constrained_25_all_constraints() {
    let hk = blob("ssh-ed25519", &[0x55; 32]);
    let ca = blob("ssh-ed25519", &[0x56; 32]);
    let body = cat(&[
        &[25],
        &ed25519_wire(),
        &s(b"k"),
        &[1],
        &u32b(600),
        &[2],
        &restrict(&[
            dest(&hop("", "", &[]), &hop("", "jump", &[(&hk, false)]), b""),
            dest(
                &hop("", "jump", &[(&hk, false)]),
                &hop("alice", "target", &[(&hk, false), (&ca, true)]),
                b"",
            ),
        ]),
    ]);
    let jump = Hop {
        user: String::new(),
        hostname: "jump".into(),
        keys: vec![HostKeySpec {
            key_blob: hk.clone(),
            is_ca: false,
        }],
    };
    check_request(
        &body,
        &Request::AddIdentity(AddIdentity {
            key: ed25519_key(),
            comment: "k".into(),
            constraints: vec![
                Constraint::Lifetime(600),
                Constraint::Confirm,
                Constraint::RestrictDestination(vec![
                    DestinationConstraint {
                        from: Hop::default(),
                        to: jump.clone(),
                    },
                    DestinationConstraint {
                        from: jump,
                        to: Hop {
                            user: "alice".into(),
                            hostname: "target".into(),
                            keys: vec![
                                HostKeySpec {
                                    key_blob: hk.clone(),
                                    is_ca: false,
                                },
                                HostKeySpec {
                                    key_blob: ca,
                                    is_ca: true,
                                },
                            ],
                        },
                    },
                ]),
            ],
        }),
    );
}

#[test]
fn add_identity_17_with_constraints_is_honoured_like_openssh() {
    // OpenSSH parses constraints after message 17 too; they must not be dropped.
    let body = cat(&[&[17], &ed25519_wire(), &s(b"k"), &[2]]);
    let Ok(Request::AddIdentity(a)) = Request::decode(&body) else {
        panic!("decode");
    };
    assert_eq!(a.constraints, [Constraint::Confirm]);
}

#[test]
fn remove_identity_18_and_remove_all_19() {
    let key = blob("ssh-ed25519", &ED_PK);
    check_request(
        &cat(&[&[18], &s(&key)]),
        &Request::RemoveIdentity { key_blob: key },
    );
    check_request(&[19], &Request::RemoveAllIdentities);
}

#[test]
fn smartcard_20_26_21() {
    check_request(
        &cat(&[&[20], &s(b"/usr/lib/p11.so"), &s(b"1234")]),
        &Request::AddSmartcardKey(SmartcardKey {
            id: "/usr/lib/p11.so".into(),
            pin: z(b"1234"),
            constraints: vec![],
        }),
    );
    check_request(
        &cat(&[&[26], &s(b"/usr/lib/p11.so"), &s(b"1234"), &[1], &u32b(5)]),
        &Request::AddSmartcardKey(SmartcardKey {
            id: "/usr/lib/p11.so".into(),
            pin: z(b"1234"),
            constraints: vec![Constraint::Lifetime(5)],
        }),
    );
    check_request(
        &cat(&[&[21], &s(b"/usr/lib/p11.so"), &s(b"")]),
        &Request::RemoveSmartcardKey {
            id: "/usr/lib/p11.so".into(),
            pin: z(b""),
        },
    );
}

#[test]
fn lock_22_unlock_23() {
    check_request(
        &cat(&[&[22], &s(b"secret")]),
        &Request::Lock {
            passphrase: z(b"secret"),
        },
    );
    check_request(
        &cat(&[&[23], &s(b"secret")]),
        &Request::Unlock {
            passphrase: z(b"secret"),
        },
    );
}

#[test]
fn extension_27_query_session_bind_other() {
    check_request(
        &cat(&[&[27], &s(b"query")]),
        &Request::Extension(ExtensionRequest::Query),
    );
    let hk = blob("ssh-ed25519", &[0x55; 32]);
    let sig = blob("ssh-ed25519", &[0x77; 64]);
    check_request(
        &cat(&[
            &[27],
            &s(b"session-bind@openssh.com"),
            &s(&hk),
            &s(&[9; 32]),
            &s(&sig),
            &[1],
        ]),
        &Request::Extension(ExtensionRequest::SessionBind(SessionBind {
            host_key: hk,
            session_id: vec![9; 32],
            signature: sig,
            is_forwarding: true,
        })),
    );
    // Contents follow the name raw, not as a nested string.
    check_request(
        &cat(&[&[27], &s(b"x@example.com"), &[1, 2, 3]]),
        &Request::Extension(ExtensionRequest::Other {
            name: "x@example.com".into(),
            contents: vec![1, 2, 3],
        }),
    );
}

#[test]
fn unknown_message_numbers_decode_to_unknown() {
    for t in [0u8, 1, 9, 12, 24, 28, 30, 240, 255] {
        assert_eq!(
            Request::decode(&[t, 1, 2, 3]),
            Ok(Request::Unknown { msg_type: t }),
            "{t}"
        );
    }
    check_request(&[200], &Request::Unknown { msg_type: 200 });
}

#[test]
fn responses_5_6_12_14_28_29() {
    check_response(&[5], &Response::Failure);
    check_response(&[6], &Response::Success);
    check_response(&[28], &Response::ExtensionFailure);
    let key = blob("ssh-ed25519", &ED_PK);
    check_response(
        &cat(&[&[12], &u32b(2), &s(&key), &s(b"one"), &s(&key), &s(b"")]),
        &Response::Identities(vec![
            Identity {
                key_blob: key.clone(),
                comment: "one".into(),
            },
            Identity {
                key_blob: key,
                comment: String::new(),
            },
        ]),
    );
    check_response(&cat(&[&[12], &u32b(0)]), &Response::Identities(vec![]));
    let sig = blob("ssh-ed25519", &[0x77; 64]);
    check_response(&cat(&[&[14], &s(&sig)]), &Response::SignResponse(sig));
    check_response(
        &cat(&[&[29], &s(b"query"), &s(b"session-bind@openssh.com")]),
        &Response::ExtensionResponse {
            name: "query".into(),
            contents: s(b"session-bind@openssh.com"),
        },
    );
    assert_eq!(msg::EXTENSION_RESPONSE, 29);
}

fn userauth_bytes(method: &str, hostkey: Option<&[u8]>) -> Vec<u8> {
    let key = blob("ssh-ed25519", &ED_PK);
    let mut v = cat(&[
        &s(&[0xab; 32]),
        &[50],
        &s(b"alice"),
        &s(b"ssh-connection"),
        &s(method.as_bytes()),
        &[1],
        &s(b"ssh-ed25519"),
        &s(&key),
    ]);
    if let Some(hk) = hostkey {
        v.extend(s(hk));
    }
    v
}

#[test]
fn userauth_publickey_and_hostbound() {
    let key = blob("ssh-ed25519", &ED_PK);
    let hk = blob("ssh-ed25519", &[0x55; 32]);
    let plain = userauth_bytes("publickey", None);
    let want = UserauthRequest {
        session_id: vec![0xab; 32],
        user: "alice".into(),
        service: "ssh-connection".into(),
        method: "publickey".into(),
        algorithm: "ssh-ed25519".into(),
        key_blob: key,
        server_host_key: None,
    };
    assert_eq!(parse_userauth_request(&plain).as_ref(), Some(&want));
    assert_eq!(want.encode(), plain);

    let bound = userauth_bytes("publickey-hostbound-v00@openssh.com", Some(&hk));
    let want = UserauthRequest {
        method: "publickey-hostbound-v00@openssh.com".into(),
        server_host_key: Some(hk.clone()),
        ..want
    };
    assert_eq!(UserauthRequest::parse(&bound).as_ref(), Ok(&want));
    assert_eq!(want.encode(), bound);
}

#[test]
fn userauth_rejections() {
    let hk = blob("ssh-ed25519", &[0x55; 32]);
    // Host key present for plain publickey: trailing bytes.
    let extra = userauth_bytes("publickey", Some(&hk));
    assert!(matches!(
        UserauthRequest::parse(&extra),
        Err(ProtoError::TrailingBytes { .. })
    ));
    // Hostbound without its host key.
    let missing = userauth_bytes("publickey-hostbound-v00@openssh.com", None);
    assert!(matches!(
        UserauthRequest::parse(&missing),
        Err(ProtoError::Truncated { .. })
    ));
    let other = userauth_bytes("password", None);
    assert_eq!(
        UserauthRequest::parse(&other),
        Err(ProtoError::InvalidUserauth("method is not publickey"))
    );
    let mut wrong_type = userauth_bytes("publickey", None);
    wrong_type[36] = 51;
    assert_eq!(
        UserauthRequest::parse(&wrong_type),
        Err(ProtoError::InvalidUserauth("not SSH2_MSG_USERAUTH_REQUEST"))
    );
    let mut empty_sid = userauth_bytes("publickey", None);
    empty_sid.splice(0..36, s(b""));
    assert_eq!(
        UserauthRequest::parse(&empty_sid),
        Err(ProtoError::InvalidUserauth("empty session id"))
    );
    let no_sig = cat(&[
        &s(&[1; 4]),
        &[50],
        &s(b"u"),
        &s(b"ssh-connection"),
        &s(b"publickey"),
        &[0],
        &s(b"ssh-ed25519"),
        &s(b"k"),
    ]);
    assert!(parse_userauth_request(&no_sig).is_none());
    let wrong_service = cat(&[
        &s(&[1; 4]),
        &[50],
        &s(b"u"),
        &s(b"ssh-userauth"),
        &s(b"publickey"),
        &[1],
        &s(b"ssh-ed25519"),
        &s(b"k"),
    ]);
    assert_eq!(
        UserauthRequest::parse(&wrong_service),
        Err(ProtoError::InvalidUserauth("service is not ssh-connection"))
    );
}
