//! A table of malformed messages, each with the exact typed error it must give.

mod common;

use common::*;
use secretivex_proto::constraint::{MAX_DEST_CONSTRAINTS, MAX_DEST_USER_LEN};
use secretivex_proto::{frame, FrameError, ProtoError, Request, Response};

fn add(key_wire: &[u8], tail: &[u8]) -> Vec<u8> {
    cat(&[&[25], key_wire, &s(b"comment"), tail])
}

fn add_ed(constraints: &[u8]) -> Vec<u8> {
    add(&ed25519_wire(), constraints)
}

fn many_dests(n: usize) -> Vec<u8> {
    restrict(&vec![simple_dest("", "h"); n])
}

#[test]
fn malformed_requests_give_typed_errors() {
    let key = blob("ssh-ed25519", &ED_PK);
    let hk = blob("ssh-ed25519", &[0x55; 32]);
    let mut big_mpint = vec![0, 0, 0x08, 0x01];
    big_mpint.extend(vec![0x11; 2049]);
    let cases: Vec<(&str, Vec<u8>, ProtoError)> = vec![
        ("empty body", vec![], ProtoError::Empty),
        (
            "truncated string",
            cat(&[&[13], &u32b(10), b"abc"]),
            ProtoError::LengthExceedsInput {
                what: "sign key blob",
                declared: 10,
                remaining: 3,
            },
        ),
        (
            "oversized length inside string",
            cat(&[&[18], &u32b(u32::MAX), b"x"]),
            ProtoError::LengthExceedsInput {
                what: "remove key blob",
                declared: u32::MAX,
                remaining: 1,
            },
        ),
        (
            "sign request without flags",
            cat(&[&[13], &s(&key), &s(b"d"), &[0, 0]]),
            ProtoError::Truncated {
                what: "sign flags",
                needed: 4,
                remaining: 2,
            },
        ),
        (
            "trailing bytes after request identities",
            vec![11, 0],
            ProtoError::TrailingBytes {
                what: "request",
                count: 1,
            },
        ),
        (
            "trailing bytes after sign request",
            cat(&[&[13], &s(&key), &s(b"d"), &u32b(0), &[7]]),
            ProtoError::TrailingBytes {
                what: "request",
                count: 1,
            },
        ),
        (
            "trailing bytes after query",
            cat(&[&[27], &s(b"query"), &[0]]),
            ProtoError::TrailingBytes {
                what: "request",
                count: 1,
            },
        ),
        (
            "lock without passphrase",
            vec![22],
            ProtoError::Truncated {
                what: "passphrase",
                needed: 4,
                remaining: 0,
            },
        ),
        (
            "session-bind without is_forwarding",
            cat(&[
                &[27],
                &s(b"session-bind@openssh.com"),
                &s(&hk),
                &s(b"id"),
                &s(b"sig"),
            ]),
            ProtoError::Truncated {
                what: "session-bind is_forwarding",
                needed: 1,
                remaining: 0,
            },
        ),
        (
            "bad key blob: ed25519 public key of 31 bytes",
            add(&cat(&[&s(b"ssh-ed25519"), &s(&[1; 31]), &s(&ed_sk())]), b""),
            ProtoError::BadFieldLength {
                what: "ed25519 public key",
                expected: 32,
                actual: 31,
            },
        ),
        (
            "bad key blob: ed25519 private key of 63 bytes",
            add(&cat(&[&s(b"ssh-ed25519"), &s(&ED_PK), &s(&[2; 63])]), b""),
            ProtoError::BadFieldLength {
                what: "ed25519 private key",
                expected: 64,
                actual: 63,
            },
        ),
        (
            "unsupported key type: security key",
            add(&s(b"sk-ssh-ed25519@openssh.com"), b""),
            ProtoError::UnsupportedKeyType("sk-ssh-ed25519@openssh.com".into()),
        ),
        (
            "unsupported key type: dsa",
            add(&s(b"ssh-dss"), b""),
            ProtoError::UnsupportedKeyType("ssh-dss".into()),
        ),
        (
            "unsupported key type: ml-dsa",
            add(&s(b"ssh-mldsa44-ed25519@openssh.com"), b""),
            ProtoError::UnsupportedKeyType("ssh-mldsa44-ed25519@openssh.com".into()),
        ),
        (
            "wrong curve name",
            add(&p256_wire("nistp384", &p256_point(), &[1; 32]), b""),
            ProtoError::CurveMismatch {
                key_type: "ecdsa-sha2-nistp256".into(),
                curve: "nistp384".into(),
            },
        ),
        (
            "compressed ecdsa point",
            add(&p256_wire("nistp256", &[2; 33], &[1; 32]), b""),
            ProtoError::BadEcPoint,
        ),
        (
            "ecdsa scalar longer than the curve",
            add(&p256_wire("nistp256", &p256_point(), &[1; 33]), b""),
            ProtoError::BadEcScalar,
        ),
        (
            "negative mpint",
            add(
                &cat(&[
                    &s(b"ssh-rsa"),
                    &mpint(&[0x7f; 8]),
                    &mpint(&[3]),
                    &s(&[0x80, 1]),
                ]),
                b"",
            ),
            ProtoError::NegativeMpint("rsa d"),
        ),
        (
            "mpint over 16384 bits",
            add(&cat(&[&s(b"ssh-rsa"), &big_mpint]), b""),
            ProtoError::MpintTooLarge("rsa n"),
        ),
        (
            "certificate blob of another type",
            add(
                &cat(&[&s(b"ssh-rsa-cert-v01@openssh.com"), &s(&ed_cert_blob())]),
                b"",
            ),
            ProtoError::CertTypeMismatch {
                declared: "ssh-rsa-cert-v01@openssh.com".into(),
                actual: "ssh-ed25519-cert-v01@openssh.com".into(),
            },
        ),
        (
            "empty certificate blob",
            add(
                &cat(&[&s(b"ssh-ed25519-cert-v01@openssh.com"), &s(b"")]),
                b"",
            ),
            ProtoError::MalformedCertificate,
        ),
        (
            "NUL in comment",
            cat(&[&[17], &ed25519_wire(), &s(b"a\0b")]),
            ProtoError::NulInString("comment"),
        ),
        (
            "max-signatures constraint",
            add_ed(&cat(&[&[3], &u32b(10)])),
            ProtoError::UnknownConstraint { id: 3, name: None },
        ),
        (
            "unknown constraint id",
            add_ed(&[42]),
            ProtoError::UnknownConstraint { id: 42, name: None },
        ),
        (
            "sk-provider constraint",
            add_ed(&cat(&[
                &[255],
                &s(b"sk-provider@openssh.com"),
                &s(b"internal"),
            ])),
            ProtoError::UnknownConstraint {
                id: 255,
                name: Some("sk-provider@openssh.com".into()),
            },
        ),
        (
            "associated-certs on a smartcard add",
            cat(&[
                &[26],
                &s(b"/usr/lib/p11.so"),
                &s(b""),
                &[255],
                &s(b"associated-certs-v00@openssh.com"),
                &[0],
                &s(b""),
            ]),
            ProtoError::UnknownConstraint {
                id: 255,
                name: Some("associated-certs-v00@openssh.com".into()),
            },
        ),
        (
            "duplicate lifetime",
            add_ed(&cat(&[&[1], &u32b(1), &[1], &u32b(2)])),
            ProtoError::DuplicateConstraint("lifetime"),
        ),
        (
            "duplicate confirm",
            add_ed(&[2, 2]),
            ProtoError::DuplicateConstraint("confirm"),
        ),
        (
            "duplicate restrict-destination",
            add_ed(&cat(&[&many_dests(1), &many_dests(1)])),
            ProtoError::DuplicateConstraint("restrict-destination"),
        ),
        (
            "truncated lifetime",
            add_ed(&[1, 0, 0]),
            ProtoError::Truncated {
                what: "lifetime",
                needed: 4,
                remaining: 2,
            },
        ),
        (
            "too many destination constraints",
            add_ed(&many_dests(MAX_DEST_CONSTRAINTS + 1)),
            ProtoError::TooManyDestinationConstraints,
        ),
        (
            "empty destination list",
            add_ed(&restrict(&[])),
            ProtoError::InvalidDestinationConstraint("empty list"),
        ),
        (
            "destination user name too long",
            add_ed(&restrict(&[simple_dest(
                &"u".repeat(MAX_DEST_USER_LEN + 1),
                "h",
            )])),
            ProtoError::UsernameTooLong,
        ),
        (
            "from hop names a user",
            add_ed(&restrict(&[dest(
                &hop("root", "", &[]),
                &hop("", "h", &[(&hk, false)]),
                b"",
            )])),
            ProtoError::InvalidDestinationConstraint("\"from\" must not name a user"),
        ),
        (
            "from hop with hostname but no keys",
            add_ed(&restrict(&[dest(
                &hop("", "jump", &[]),
                &hop("", "h", &[(&hk, false)]),
                b"",
            )])),
            ProtoError::InvalidDestinationConstraint(
                "\"from\" needs both a hostname and host keys, or neither",
            ),
        ),
        (
            "to hop without keys",
            add_ed(&restrict(&[dest(
                &hop("", "", &[]),
                &hop("", "h", &[]),
                b"",
            )])),
            ProtoError::InvalidDestinationConstraint("\"to\" needs a hostname and host keys"),
        ),
        (
            "to hop without hostname",
            add_ed(&restrict(&[dest(
                &hop("", "", &[]),
                &hop("", "", &[(&hk, false)]),
                b"",
            )])),
            ProtoError::InvalidDestinationConstraint("\"to\" needs a hostname and host keys"),
        ),
        (
            "reserved field of a destination constraint",
            add_ed(&restrict(&[dest(
                &hop("", "", &[]),
                &hop("", "h", &[(&hk, false)]),
                b"x",
            )])),
            ProtoError::ReservedNotEmpty("destination constraint"),
        ),
        (
            "reserved field of a hop",
            add_ed(&restrict(&[dest(
                &hop("", "", &[]),
                &cat(&[&s(b""), &s(b"h"), &s(b"ext"), &s(&hk), &[0]]),
                b"",
            )])),
            ProtoError::ReservedNotEmpty("hop"),
        ),
        (
            "malformed host key blob in a hop",
            add_ed(&restrict(&[dest(
                &hop("", "", &[]),
                &hop("", "h", &[(b"zz", false)]),
                b"",
            )])),
            ProtoError::InvalidDestinationConstraint("malformed host key blob"),
        ),
        (
            "host key without is_ca flag",
            add_ed(&restrict(&[dest(
                &hop("", "", &[]),
                &cat(&[&s(b""), &s(b"h"), &s(b""), &s(&hk)]),
                b"",
            )])),
            ProtoError::Truncated {
                what: "hop host key is_ca",
                needed: 1,
                remaining: 0,
            },
        ),
    ];
    for (name, body, want) in cases {
        assert!(body.len() <= secretivex_proto::MAX_FRAME_LEN, "{name}");
        assert_eq!(Request::decode(&body), Err(want), "{name}");
    }
}

#[test]
fn limits_are_inclusive() {
    let at_limit = Request::decode(&add_ed(&many_dests(MAX_DEST_CONSTRAINTS)));
    assert!(at_limit.is_ok(), "{at_limit:?}");
    let user = "u".repeat(MAX_DEST_USER_LEN);
    let long_user = Request::decode(&add_ed(&restrict(&[simple_dest(&user, "h")])));
    assert!(long_user.is_ok(), "{long_user:?}");
}

#[test]
fn malformed_responses_give_typed_errors() {
    let cases: Vec<(&str, Vec<u8>, ProtoError)> = vec![
        ("empty", vec![], ProtoError::Empty),
        ("unknown type", vec![99], ProtoError::UnknownResponse(99)),
        (
            "request number is not a reply",
            vec![11],
            ProtoError::UnknownResponse(11),
        ),
        (
            "absurd identity count",
            cat(&[&[12], &u32b(u32::MAX)]),
            ProtoError::LengthExceedsInput {
                what: "identity count",
                declared: u32::MAX,
                remaining: 0,
            },
        ),
        (
            "count larger than entries",
            cat(&[&[12], &u32b(2), &s(b"k"), &s(b"c")]),
            ProtoError::LengthExceedsInput {
                what: "identity count",
                declared: 2,
                remaining: 10,
            },
        ),
        (
            "trailing bytes after success",
            vec![6, 6],
            ProtoError::TrailingBytes {
                what: "response",
                count: 1,
            },
        ),
        (
            "truncated signature",
            cat(&[&[14], &u32b(8), b"abc"]),
            ProtoError::LengthExceedsInput {
                what: "signature",
                declared: 8,
                remaining: 3,
            },
        ),
    ];
    for (name, body, want) in cases {
        assert_eq!(Response::decode(&body), Err(want), "{name}");
    }
}

#[test]
fn malformed_frame_headers() {
    assert_eq!(frame::body_len([0; 4]), Err(FrameError::Empty));
    assert_eq!(
        frame::body_len(u32::MAX.to_be_bytes()),
        Err(FrameError::TooLong(u32::MAX))
    );
    let over = (secretivex_proto::MAX_FRAME_LEN as u32 + 1).to_be_bytes();
    assert!(matches!(frame::body_len(over), Err(FrameError::TooLong(_))));
    assert_eq!(
        frame::split_frame(&[0, 0, 0, 0, 11]),
        Err(FrameError::Empty)
    );
}

#[test]
fn errors_do_not_leak_secrets() {
    // A 64-byte secret that is one byte short: the error must name the field
    // and the lengths only.
    let secret = [0x5e; 63];
    let body = add(&cat(&[&s(b"ssh-ed25519"), &s(&ED_PK), &s(&secret)]), b"");
    let err = Request::decode(&body).unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains("94"), "{text}"); // 0x5e as decimal
    assert!(!text.to_lowercase().contains("5e5e"), "{text}");
    // Names taken off the wire are bounded.
    let long_name = "x".repeat(10_000);
    let err = Request::decode(&add(&s(long_name.as_bytes()), b"")).unwrap_err();
    assert!(format!("{err}").len() < 200);
}
