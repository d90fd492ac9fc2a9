//! Request-level tests of session binds and destination constraints.

use super::*;

struct Host {
    key: KeyPair,
}

impl Host {
    fn new(seed: u8) -> Host {
        Host {
            key: KeyPair::from_wire(&ed25519_wire(seed)).unwrap(),
        }
    }
    fn blob(&self) -> Vec<u8> {
        self.key.public_blob().to_vec()
    }
    fn bind(&self, sid: &[u8], forwarding: bool) -> Request {
        Request::Extension(ExtensionRequest::SessionBind(SessionBind {
            host_key: self.blob(),
            session_id: sid.to_vec(),
            signature: self.key.sign(sid, 0).unwrap(),
            is_forwarding: forwarding,
        }))
    }
}

fn to_host(host: &Host, name: &str, user: &str) -> DestinationConstraint {
    DestinationConstraint {
        from: Hop::default(),
        to: Hop {
            user: user.to_string(),
            hostname: name.to_string(),
            keys: vec![HostKeySpec {
                key_blob: host.blob(),
                is_ca: false,
            }],
        },
    }
}

fn userauth(seed: u8, sid: &[u8], user: &str, host_key: Option<Vec<u8>>) -> Vec<u8> {
    UserauthRequest {
        session_id: sid.to_vec(),
        user: user.to_string(),
        service: "ssh-connection".to_string(),
        method: if host_key.is_some() {
            "publickey-hostbound-v00@openssh.com".to_string()
        } else {
            "publickey".to_string()
        },
        algorithm: "ssh-ed25519".to_string(),
        key_blob: blob_of(seed),
        server_host_key: host_key,
    }
    .encode()
}

#[tokio::test]
async fn session_bind_verifies_the_host_signature() {
    let agent = agent();
    let host = Host::new(50);
    let mut c = conn();
    assert_eq!(
        call(&agent, &mut c, host.bind(b"sid-1", false)).await,
        Response::Success
    );
    assert_eq!(c.binds.binds().len(), 1);

    let mut forged = conn();
    let Request::Extension(ExtensionRequest::SessionBind(mut b)) = host.bind(b"sid-2", false)
    else {
        unreachable!()
    };
    b.session_id = b"sid-3".to_vec(); // signature no longer covers the session id
    let r = call(
        &agent,
        &mut forged,
        Request::Extension(ExtensionRequest::SessionBind(b)),
    )
    .await;
    assert_eq!(r, Response::ExtensionFailure);
    assert!(forged.binds.binds().is_empty());
    assert!(
        forged.binds.is_remote(),
        "a failed bind must not look like local use"
    );

    // A connection bound for authentication cannot be bound again.
    assert_eq!(
        call(&agent, &mut c, host.bind(b"sid-4", false)).await,
        Response::ExtensionFailure
    );
}

#[tokio::test]
async fn session_bind_is_accepted_while_locked() {
    let agent = agent();
    let mut c = conn();
    let lock = Request::Lock {
        passphrase: Zeroizing::new(b"pw".to_vec()),
    };
    call(&agent, &mut c, lock).await;
    let host = Host::new(50);
    assert_eq!(
        call(&agent, &mut c, host.bind(b"sid", true)).await,
        Response::Success
    );
}

#[tokio::test]
async fn destination_constraints_on_list_sign_and_remove() {
    let agent = agent();
    let allowed = Host::new(60);
    let other = Host::new(61);
    let mut local = conn();
    let constraint = Constraint::RestrictDestination(vec![to_host(&allowed, "allowed", "")]);
    assert_eq!(
        call(&agent, &mut local, add(1, "restricted", vec![constraint])).await,
        Response::Success
    );
    call(&agent, &mut local, add(2, "free", vec![])).await;

    // Local use: both listed, but the restricted key does not sign on an unbound socket.
    assert_eq!(
        listed(call(&agent, &mut local, Request::RequestIdentities).await).len(),
        2
    );
    assert_eq!(
        call(&agent, &mut local, sign(1, b"anything")).await,
        Response::Failure
    );

    // Bound to the allowed host: listed, signs a matching userauth request only.
    let mut good = conn();
    call(&agent, &mut good, allowed.bind(b"sid-good", false)).await;
    assert_eq!(
        listed(call(&agent, &mut good, Request::RequestIdentities).await).len(),
        2
    );
    let data = userauth(1, b"sid-good", "alice", Some(allowed.blob()));
    let Response::SignResponse(sig) = call(&agent, &mut good, sign(1, &data)).await else {
        panic!("permitted signature refused");
    };
    secretivex_keys::verify_signature(&blob_of(1), &data, &sig).unwrap();
    let plain = userauth(1, b"sid-good", "alice", None);
    assert!(matches!(
        call(&agent, &mut good, sign(1, &plain)).await,
        Response::SignResponse(_)
    ));
    assert_eq!(
        call(&agent, &mut good, sign(1, b"not a userauth")).await,
        Response::Failure
    );
    let stale_sid = userauth(1, b"sid-other", "alice", None);
    assert_eq!(
        call(&agent, &mut good, sign(1, &stale_sid)).await,
        Response::Failure
    );
    let wrong_host = userauth(1, b"sid-good", "alice", Some(other.blob()));
    assert_eq!(
        call(&agent, &mut good, sign(1, &wrong_host)).await,
        Response::Failure
    );
    let wrong_key = userauth(2, b"sid-good", "alice", None);
    assert_eq!(
        call(&agent, &mut good, sign(1, &wrong_key)).await,
        Response::Failure
    );

    // Bound to another host: the restricted key is invisible, unusable and unremovable.
    let mut bad = conn();
    call(&agent, &mut bad, other.bind(b"sid-bad", false)).await;
    let ids = listed(call(&agent, &mut bad, Request::RequestIdentities).await);
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].comment, "free");
    let data = userauth(1, b"sid-bad", "alice", None);
    assert_eq!(
        call(&agent, &mut bad, sign(1, &data)).await,
        Response::Failure
    );
    let remove = Request::RemoveIdentity {
        key_blob: blob_of(1),
    };
    assert_eq!(
        call(&agent, &mut bad, remove.clone()).await,
        Response::Failure
    );
    // Re-adding over an invisible key is refused too.
    assert_eq!(
        call(&agent, &mut bad, add(1, "hijack", vec![])).await,
        Response::Failure
    );
    assert_eq!(agent.keys().len(), 2);
    // The local connection may remove it.
    assert_eq!(call(&agent, &mut local, remove).await, Response::Success);
}

#[tokio::test]
async fn destination_user_is_enforced_when_signing() {
    let agent = agent();
    let host = Host::new(70);
    let mut local = conn();
    let constraint = Constraint::RestrictDestination(vec![to_host(&host, "h", "deploy")]);
    call(&agent, &mut local, add(1, "k", vec![constraint])).await;
    let mut c = conn();
    call(&agent, &mut c, host.bind(b"sid", false)).await;
    let ok = userauth(1, b"sid", "deploy", None);
    assert!(matches!(
        call(&agent, &mut c, sign(1, &ok)).await,
        Response::SignResponse(_)
    ));
    let root = userauth(1, b"sid", "root", None);
    assert_eq!(
        call(&agent, &mut c, sign(1, &root)).await,
        Response::Failure
    );
}

#[tokio::test]
async fn invalid_destination_constraints_refuse_the_key() {
    let agent = agent();
    let host = Host::new(80);
    let mut c = conn();
    let mut no_host = to_host(&host, "", "");
    no_host.to.hostname.clear();
    let r = call(
        &agent,
        &mut c,
        add(1, "k", vec![Constraint::RestrictDestination(vec![no_host])]),
    )
    .await;
    assert_eq!(r, Response::Failure);
    assert!(agent.keys().is_empty());
}
