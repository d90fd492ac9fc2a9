//! Property tests: encode → decode is the identity for every request and reply,
//! and decoding arbitrary or mutated bytes never panics.

use proptest::collection::vec;
use proptest::prelude::*;
use secretivex_proto::{
    frame, AddIdentity, CertPrivate, Constraint, DestinationConstraint, EcdsaCurve,
    ExtensionRequest, Hop, HostKeySpec, Identity, PrivateKeyWire, Request, Response, SessionBind,
    SignRequest, SmartcardKey, UserauthRequest,
};
use zeroize::Zeroizing;

/// Text without NUL (OpenSSH reads these fields as C strings).
fn text() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,12}"
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

fn secret(max: usize) -> impl Strategy<Value = Zeroizing<Vec<u8>>> {
    bytes(max).prop_map(Zeroizing::new)
}

/// An mpint magnitude as the decoder yields it: no leading zero bytes.
fn magnitude(max: usize) -> impl Strategy<Value = Vec<u8>> {
    bytes(max).prop_map(|v| {
        let start = v.iter().position(|&b| b != 0).unwrap_or(v.len());
        v[start..].to_vec()
    })
}

fn secret_magnitude(max: usize) -> impl Strategy<Value = Zeroizing<Vec<u8>>> {
    magnitude(max).prop_map(Zeroizing::new)
}

fn curve() -> impl Strategy<Value = EcdsaCurve> {
    prop::sample::select(EcdsaCurve::ALL.to_vec())
}

/// A blob that starts with a key type name, as host keys must.
fn key_blob() -> impl Strategy<Value = Vec<u8>> {
    ("[a-z0-9@.-]{1,20}", bytes(40)).prop_map(|(name, rest)| {
        let mut v = (name.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(name.as_bytes());
        v.extend(rest);
        v
    })
}

fn ed25519_parts() -> impl Strategy<Value = ([u8; 32], Zeroizing<Vec<u8>>)> {
    (any::<[u8; 32]>(), vec(any::<u8>(), 64)).prop_map(|(p, k)| (p, Zeroizing::new(k)))
}

fn private_key() -> impl Strategy<Value = PrivateKeyWire> {
    let ed =
        ed25519_parts().prop_map(|(public, keypair)| PrivateKeyWire::Ed25519 { public, keypair });
    let ec = curve().prop_flat_map(|curve| {
        (
            vec(any::<u8>(), curve.point_len() - 1),
            secret_magnitude(curve.scalar_len() + 1),
        )
            .prop_map(move |(xy, scalar)| {
                let mut public_point = vec![4];
                public_point.extend(xy);
                let scalar =
                    Zeroizing::new(scalar[..scalar.len().min(curve.scalar_len())].to_vec());
                // Truncating may expose a leading zero; strip it again.
                let start = scalar.iter().position(|&b| b != 0).unwrap_or(scalar.len());
                PrivateKeyWire::Ecdsa {
                    curve,
                    public_point,
                    scalar: Zeroizing::new(scalar[start..].to_vec()),
                }
            })
    });
    let rsa = (
        magnitude(64),
        magnitude(4),
        secret_magnitude(64),
        secret_magnitude(32),
        secret_magnitude(32),
        secret_magnitude(32),
    )
        .prop_map(|(n, e, d, iqmp, p, q)| PrivateKeyWire::Rsa {
            n,
            e,
            d,
            iqmp,
            p,
            q,
        });
    let cert = (cert_private(), bytes(64)).prop_map(|((name, private), rest)| {
        let mut cert_blob = (name.len() as u32).to_be_bytes().to_vec();
        cert_blob.extend_from_slice(name.as_bytes());
        cert_blob.extend(rest);
        PrivateKeyWire::Certificate { cert_blob, private }
    });
    prop_oneof![ed, ec, rsa, cert]
}

fn cert_private() -> impl Strategy<Value = (&'static str, CertPrivate)> {
    let ed = ed25519_parts().prop_map(|(public, keypair)| {
        (
            "ssh-ed25519-cert-v01@openssh.com",
            CertPrivate::Ed25519 { public, keypair },
        )
    });
    let ec = (curve(), secret_magnitude(32))
        .prop_map(|(c, scalar)| (c.cert_type(), CertPrivate::Ecdsa { scalar }));
    let rsa = (
        secret_magnitude(32),
        secret_magnitude(16),
        secret_magnitude(16),
        secret_magnitude(16),
    )
        .prop_map(|(d, iqmp, p, q)| {
            (
                "ssh-rsa-cert-v01@openssh.com",
                CertPrivate::Rsa { d, iqmp, p, q },
            )
        });
    prop_oneof![ed, ec, rsa]
}

fn host_keys() -> impl Strategy<Value = Vec<HostKeySpec>> {
    vec(
        (key_blob(), any::<bool>()).prop_map(|(key_blob, is_ca)| HostKeySpec { key_blob, is_ca }),
        1..3,
    )
}

fn destination() -> impl Strategy<Value = DestinationConstraint> {
    let origin = Just(Hop::default()).boxed();
    let via = ("[a-z.]{1,12}", host_keys())
        .prop_map(|(hostname, keys)| Hop {
            user: String::new(),
            hostname,
            keys,
        })
        .boxed();
    let to = (text(), "[a-z.]{1,12}", host_keys()).prop_map(|(user, hostname, keys)| Hop {
        user,
        hostname,
        keys,
    });
    (prop_oneof![origin, via], to).prop_map(|(from, to)| DestinationConstraint { from, to })
}

fn constraints() -> impl Strategy<Value = Vec<Constraint>> {
    (
        prop::option::of(any::<u32>()),
        any::<bool>(),
        prop::option::of(vec(destination(), 1..4)),
    )
        .prop_flat_map(|(life, confirm, dest)| {
            let mut v = Vec::new();
            v.extend(life.map(Constraint::Lifetime));
            if confirm {
                v.push(Constraint::Confirm);
            }
            v.extend(dest.map(Constraint::RestrictDestination));
            Just(v).prop_shuffle()
        })
}

const KNOWN_REQUESTS: [u8; 12] = [11, 13, 17, 18, 19, 20, 21, 22, 23, 25, 26, 27];

fn request() -> impl Strategy<Value = Request> {
    let ext = prop_oneof![
        Just(ExtensionRequest::Query),
        (key_blob(), bytes(48), bytes(80), any::<bool>()).prop_map(|(h, s, sig, f)| {
            ExtensionRequest::SessionBind(SessionBind {
                host_key: h,
                session_id: s,
                signature: sig,
                is_forwarding: f,
            })
        }),
        ("[a-z@.-]{0,20}", bytes(32))
            .prop_filter("names with their own decoding", |(n, _)| {
                n != "query" && n != "session-bind@openssh.com"
            })
            .prop_map(|(name, contents)| ExtensionRequest::Other { name, contents }),
    ];
    prop_oneof![
        Just(Request::RequestIdentities),
        (key_blob(), bytes(64), any::<u32>()).prop_map(|(key_blob, data, flags)| {
            Request::Sign(SignRequest {
                key_blob,
                data,
                flags,
            })
        }),
        (private_key(), text(), constraints()).prop_map(|(key, comment, constraints)| {
            Request::AddIdentity(AddIdentity {
                key,
                comment,
                constraints,
            })
        }),
        key_blob().prop_map(|key_blob| Request::RemoveIdentity { key_blob }),
        Just(Request::RemoveAllIdentities),
        (text(), "[^\u{0}]{0,8}", constraints()).prop_map(|(id, pin, constraints)| {
            Request::AddSmartcardKey(SmartcardKey {
                id,
                pin: Zeroizing::new(pin.into_bytes()),
                constraints,
            })
        }),
        (text(), "[^\u{0}]{0,8}").prop_map(|(id, pin)| Request::RemoveSmartcardKey {
            id,
            pin: Zeroizing::new(pin.into_bytes()),
        }),
        secret(24).prop_map(|passphrase| Request::Lock { passphrase }),
        secret(24).prop_map(|passphrase| Request::Unlock { passphrase }),
        ext.prop_map(Request::Extension),
        any::<u8>()
            .prop_filter("unknown numbers only", |t| !KNOWN_REQUESTS.contains(t))
            .prop_map(|msg_type| Request::Unknown { msg_type }),
    ]
}

fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        Just(Response::Failure),
        Just(Response::Success),
        Just(Response::ExtensionFailure),
        vec(
            (key_blob(), text()).prop_map(|(key_blob, comment)| Identity { key_blob, comment }),
            0..5
        )
        .prop_map(Response::Identities),
        bytes(100).prop_map(Response::SignResponse),
        (text(), bytes(40))
            .prop_map(|(name, contents)| Response::ExtensionResponse { name, contents }),
    ]
}

fn userauth() -> impl Strategy<Value = UserauthRequest> {
    (
        vec(any::<u8>(), 1..64),
        text(),
        text(),
        key_blob(),
        prop::option::of(key_blob()),
    )
        .prop_map(
            |(session_id, user, algorithm, key_blob, host)| UserauthRequest {
                session_id,
                user,
                service: "ssh-connection".into(),
                method: if host.is_some() {
                    "publickey-hostbound-v00@openssh.com".into()
                } else {
                    "publickey".into()
                },
                algorithm,
                key_blob,
                server_host_key: host,
            },
        )
}

/// Returns the body of a single encoded frame, checking its header.
fn body_of(frame_bytes: &[u8]) -> &[u8] {
    let split = frame::split_frame(frame_bytes).unwrap().unwrap();
    assert!(split.rest.is_empty());
    split.body
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn request_roundtrip(req in request()) {
        let mut out = Vec::new();
        req.encode_frame(&mut out);
        prop_assert_eq!(Request::decode(body_of(&out)), Ok(req));
    }

    #[test]
    fn response_roundtrip(resp in response()) {
        let mut out = Vec::new();
        resp.encode_frame(&mut out);
        prop_assert_eq!(out.len(), resp.encoded_len() + 4);
        prop_assert_eq!(Response::decode(body_of(&out)), Ok(resp));
    }

    #[test]
    fn userauth_roundtrip(ua in userauth()) {
        prop_assert_eq!(UserauthRequest::parse(&ua.encode()), Ok(ua));
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(
        t in any::<u8>(),
        rest in bytes(600),
    ) {
        let mut body = vec![t];
        body.extend_from_slice(&rest);
        let _ = Request::decode(&body);
        let _ = Response::decode(&body);
        let _ = UserauthRequest::parse(&body);
        let _ = frame::split_frame(&body);
        let _ = Request::decode(&rest);
        let _ = Response::decode(&rest);
    }

    #[test]
    fn decoding_mutated_valid_requests_never_panics(
        req in request(),
        cut in any::<prop::sample::Index>(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let mut body = Vec::new();
        req.encode_body(&mut body);
        for (at, v) in flips {
            let i = at.index(body.len());
            body[i] ^= v;
        }
        let keep = cut.index(body.len() + 1);
        // A mutated body that still decodes must round-trip like any other.
        for b in [&body[..], &body[..keep]] {
            if let Ok(decoded) = Request::decode(b) {
                let mut again = Vec::new();
                decoded.encode_body(&mut again);
                prop_assert_eq!(Request::decode(&again), Ok(decoded));
            }
        }
    }
}
