use super::*;
use secretivex_proto::HostKeySpec;
use std::collections::HashMap;

fn ssh_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// A stand-in public key blob: type name plus a distinguishing body.
fn key(name: &str) -> Vec<u8> {
    let mut b = Vec::new();
    ssh_string(&mut b, b"ssh-ed25519");
    ssh_string(&mut b, name.as_bytes());
    b
}

fn cert(name: &str) -> Vec<u8> {
    let mut b = Vec::new();
    ssh_string(&mut b, b"ssh-ed25519-cert-v01@openssh.com");
    ssh_string(&mut b, name.as_bytes());
    b
}

#[derive(Default)]
struct FakeCerts {
    certs: HashMap<Vec<u8>, HostCert>,
    now: u64,
}

impl CertInspector for FakeCerts {
    fn host_cert(&self, blob: &[u8]) -> Option<HostCert> {
        self.certs.get(blob).cloned()
    }
    fn now(&self) -> u64 {
        self.now
    }
}

fn hop(host: &str, keys: &[&[u8]]) -> Hop {
    Hop {
        user: String::new(),
        hostname: host.to_string(),
        keys: keys
            .iter()
            .map(|k| HostKeySpec {
                key_blob: k.to_vec(),
                is_ca: false,
            })
            .collect(),
    }
}

fn origin() -> Hop {
    Hop::default()
}

fn constraint(from: Hop, to: Hop) -> DestinationConstraint {
    DestinationConstraint { from, to }
}

fn bind(host_key: &[u8], sid: &[u8], forwarded: bool) -> Bind {
    Bind {
        host_key: host_key.to_vec(),
        session_id: sid.to_vec(),
        forwarded,
    }
}

fn binds(list: &[Bind]) -> SessionBinds {
    let mut b = SessionBinds::default();
    for x in list {
        b.record(x.clone()).unwrap();
    }
    b
}

#[test]
fn unconstrained_keys_are_always_permitted() {
    let certs = FakeCerts::default();
    let mut b = SessionBinds::default();
    b.mark_attempted();
    assert_eq!(identity_permitted(&[], &b, None, &certs), Ok(()));
    assert_eq!(identity_permitted(&[], &b, Some("root"), &certs), Ok(()));
}

#[test]
fn local_use_sees_constrained_keys_but_failed_bind_does_not() {
    let certs = FakeCerts::default();
    let a = key("host-a");
    let cs = vec![constraint(origin(), hop("a", &[&a]))];
    let local = SessionBinds::default();
    assert!(!local.is_remote());
    assert_eq!(identity_permitted(&cs, &local, None, &certs), Ok(()));
    let mut failed = SessionBinds::default();
    failed.mark_attempted();
    assert!(failed.is_remote());
    assert_eq!(
        identity_permitted(&cs, &failed, None, &certs),
        Err(Denied::FailedBind)
    );
}

#[test]
fn direct_login_to_allowed_host_only() {
    let certs = FakeCerts::default();
    let a = key("host-a");
    let b = key("host-b");
    let cs = vec![constraint(origin(), hop("a", &[&a]))];
    let to_a = binds(&[bind(&a, b"sid-1", false)]);
    assert_eq!(identity_permitted(&cs, &to_a, None, &certs), Ok(()));
    assert_eq!(
        identity_permitted(&cs, &to_a, Some("alice"), &certs),
        Ok(())
    );
    let to_b = binds(&[bind(&b, b"sid-2", false)]);
    assert_eq!(
        identity_permitted(&cs, &to_b, Some("alice"), &certs),
        Err(Denied::NoMatchingConstraint { hop: 0 })
    );
    assert_eq!(
        identity_permitted(&cs, &to_b, None, &certs),
        Err(Denied::NoMatchingConstraint { hop: 0 })
    );
}

#[test]
fn user_is_matched_with_patterns_at_the_last_hop() {
    let certs = FakeCerts::default();
    let a = key("host-a");
    let mut to = hop("a", &[&a]);
    to.user = "deploy-*".to_string();
    let cs = vec![constraint(origin(), to)];
    let b = binds(&[bind(&a, b"sid", false)]);
    assert_eq!(
        identity_permitted(&cs, &b, Some("deploy-web"), &certs),
        Ok(())
    );
    assert!(identity_permitted(&cs, &b, Some("root"), &certs).is_err());
    // Listing does not name a user, so the key stays visible.
    assert_eq!(identity_permitted(&cs, &b, None, &certs), Ok(()));
}

#[test]
fn forwarding_chain_needs_every_hop() {
    let certs = FakeCerts::default();
    let a = key("host-a");
    let c = key("host-c");
    let chain = binds(&[bind(&a, b"sid-a", true), bind(&c, b"sid-c", false)]);
    let only_first = vec![constraint(origin(), hop("a", &[&a]))];
    assert_eq!(
        identity_permitted(&only_first, &chain, Some("u"), &certs),
        Err(Denied::NoMatchingConstraint { hop: 1 })
    );
    let both = vec![
        constraint(origin(), hop("a", &[&a])),
        constraint(hop("a", &[&a]), hop("c", &[&c])),
    ];
    assert_eq!(identity_permitted(&both, &chain, Some("u"), &certs), Ok(()));
}

#[test]
fn forwarded_listing_hides_keys_that_cannot_go_further() {
    let certs = FakeCerts::default();
    let a = key("host-a");
    let c = key("host-c");
    let fwd = binds(&[bind(&a, b"sid-a", true)]);
    let only_to_a = vec![constraint(origin(), hop("a", &[&a]))];
    assert_eq!(
        identity_permitted(&only_to_a, &fwd, None, &certs),
        Err(Denied::NotPermittedBeyond)
    );
    let onward = vec![
        constraint(origin(), hop("a", &[&a])),
        constraint(hop("a", &[&a]), hop("c", &[&c])),
    ];
    assert_eq!(identity_permitted(&onward, &fwd, None, &certs), Ok(()));
    // Signing on the forwarding hop itself is never allowed.
    assert_eq!(
        identity_permitted(&onward, &fwd, Some("u"), &certs),
        Err(Denied::SignOnForwardingHop)
    );
}

#[test]
fn bind_records_follow_openssh_rules() {
    let a = key("host-a");
    let b = key("host-b");
    let mut s = SessionBinds::default();
    assert_eq!(s.record(bind(&a, b"sid-1", true)), Ok(true));
    assert_eq!(s.record(bind(&a, b"sid-1", true)), Ok(false));
    assert_eq!(
        s.record(bind(&b, b"sid-1", true)),
        Err(BindError::SessionIdReused)
    );
    assert_eq!(s.record(bind(&a, b"sid-2", false)), Ok(true));
    assert_eq!(
        s.record(bind(&b, b"sid-3", true)),
        Err(BindError::BoundForAuthentication)
    );
    assert_eq!(s.binds().len(), 2);
    assert_eq!(
        SessionBinds::default().record(bind(&a, b"", false)),
        Err(BindError::BadSessionId)
    );
    assert_eq!(
        SessionBinds::default().record(bind(&a, &[7u8; 129], false)),
        Err(BindError::BadSessionId)
    );
}

#[test]
fn at_most_sixteen_binds() {
    let a = key("host-a");
    let mut s = SessionBinds::default();
    for i in 0..MAX_SESSION_BINDS {
        assert_eq!(
            s.record(bind(&a, format!("sid-{i}").as_bytes(), true)),
            Ok(true)
        );
    }
    assert_eq!(
        s.record(bind(&a, b"one-too-many", true)),
        Err(BindError::TooMany)
    );
    assert_eq!(s.binds().len(), MAX_SESSION_BINDS);
}

#[test]
fn host_certificates_match_ca_hops() {
    let ca = key("ca");
    let other_ca = key("other-ca");
    let host_cert = cert("host-a-cert");
    let mut certs = FakeCerts {
        now: 1_000,
        ..Default::default()
    };
    certs.certs.insert(
        host_cert.clone(),
        HostCert {
            signature_key: ca.clone(),
            is_host: true,
            principals: vec!["*.example.com".to_string()],
            valid_after: 0,
            valid_before: 2_000,
        },
    );
    let mut to = hop("a.example.com", &[]);
    to.keys.push(HostKeySpec {
        key_blob: ca.clone(),
        is_ca: true,
    });
    assert!(match_key_hop(&host_cert, &to, &certs));
    // Wrong host name for the principals.
    to.hostname = "a.example.org".to_string();
    assert!(!match_key_hop(&host_cert, &to, &certs));
    to.hostname = "a.example.com".to_string();
    // A CA entry never matches a plain key, and a plain entry never matches a cert.
    assert!(!match_key_hop(&ca, &to, &certs));
    let plain = hop("a.example.com", &[&host_cert]);
    assert!(!match_key_hop(&host_cert, &plain, &certs));
    // Another CA.
    let mut to_other = hop("a.example.com", &[]);
    to_other.keys.push(HostKeySpec {
        key_blob: other_ca,
        is_ca: true,
    });
    assert!(!match_key_hop(&host_cert, &to_other, &certs));
    // Expired.
    certs.now = 2_000;
    assert!(!match_key_hop(&host_cert, &to, &certs));
}

#[test]
fn patterns() {
    assert!(match_pattern("alice", "alice"));
    assert!(match_pattern("alice", "*"));
    assert!(match_pattern("alice", "a*e"));
    assert!(match_pattern("alice", "al?ce"));
    assert!(match_pattern("", "*"));
    assert!(match_pattern("abcabc", "*abc"));
    assert!(!match_pattern("alice", "bob"));
    assert!(!match_pattern("alice", "alic"));
    assert!(!match_pattern("alice", "?"));
    assert!(!match_pattern("", "?"));
    assert!(!match_pattern("Alice", "alice"));
}

#[test]
fn key_type_of_blobs() {
    assert_eq!(blob_key_type(&key("x")), Some("ssh-ed25519"));
    assert!(is_certificate_blob(&cert("x")));
    assert!(!is_certificate_blob(&key("x")));
    assert_eq!(blob_key_type(&[0, 0, 0, 9, b'a']), None);
    assert_eq!(blob_key_type(&[]), None);
}

#[test]
fn constraint_validation() {
    let a = key("a");
    assert_eq!(
        validate_constraints(&[constraint(origin(), hop("a", &[&a]))]),
        Ok(())
    );
    assert_eq!(
        validate_constraints(&[constraint(origin(), hop("a", &[]))]),
        Err(ConstraintError::BadTo)
    );
    assert_eq!(
        validate_constraints(&[constraint(origin(), hop("", &[&a]))]),
        Err(ConstraintError::BadTo)
    );
    assert_eq!(
        validate_constraints(&[constraint(hop("x", &[]), hop("a", &[&a]))]),
        Err(ConstraintError::BadFrom)
    );
    let mut from = origin();
    from.user = "u".to_string();
    assert_eq!(
        validate_constraints(&[constraint(from, hop("a", &[&a]))]),
        Err(ConstraintError::BadFrom)
    );
}
