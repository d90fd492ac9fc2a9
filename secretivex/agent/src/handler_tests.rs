//! Request-level tests of the handler with real keys (aws-lc-rs) and real encodings.

use super::*;
use crate::Config;
use secretivex_keys::KeyPair;
use secretivex_proto::sign_flags;
use secretivex_proto::{
    DestinationConstraint, Hop, HostKeySpec, Identity as WireIdentity, SignRequest, UserauthRequest,
};

use crate::test_support::ed25519_wire;

fn blob_of(seed: u8) -> Vec<u8> {
    KeyPair::from_wire(&ed25519_wire(seed))
        .unwrap()
        .public_blob()
        .to_vec()
}

fn agent_with(config: Config) -> Arc<Agent> {
    Agent::try_new(Config {
        signer_threads: 1,
        ..config
    })
    .unwrap()
}

fn agent() -> Arc<Agent> {
    agent_with(Config::default())
}

fn conn() -> ConnState {
    ConnState::new(Peer {
        uid: 0,
        gid: 0,
        pid: None,
    })
}

async fn call(agent: &Arc<Agent>, conn: &mut ConnState, request: Request) -> Response {
    let mut frame = Vec::new();
    request.encode_frame(&mut frame);
    call_raw(agent, conn, &frame[4..]).await
}

async fn call_raw(agent: &Arc<Agent>, conn: &mut ConnState, body: &[u8]) -> Response {
    match handle(agent, conn, body).await {
        Reply::Response(r) => r,
        Reply::Shared(frame) => Response::decode(&frame[4..]).unwrap(),
    }
}

fn add(seed: u8, comment: &str, constraints: Vec<Constraint>) -> Request {
    Request::AddIdentity(AddIdentity {
        key: ed25519_wire(seed),
        comment: comment.to_string(),
        constraints,
    })
}

fn sign(seed: u8, data: &[u8]) -> Request {
    Request::Sign(SignRequest {
        key_blob: blob_of(seed),
        data: data.to_vec(),
        flags: 0,
    })
}

fn listed(r: Response) -> Vec<WireIdentity> {
    match r {
        Response::Identities(ids) => ids,
        other => panic!("expected identities, got {other:?}"),
    }
}

#[tokio::test]
async fn add_list_sign_remove() {
    let agent = agent();
    let mut c = conn();
    assert!(listed(call(&agent, &mut c, Request::RequestIdentities).await).is_empty());
    assert_eq!(
        call(&agent, &mut c, add(1, "one", vec![])).await,
        Response::Success
    );
    assert_eq!(
        call(&agent, &mut c, add(2, "two", vec![])).await,
        Response::Success
    );
    let ids = listed(call(&agent, &mut c, Request::RequestIdentities).await);
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0].comment, "one");
    assert_eq!(ids[0].key_blob, blob_of(1));
    assert_eq!(ids[1].comment, "two");

    let Response::SignResponse(sig) = call(&agent, &mut c, sign(1, b"data")).await else {
        panic!("sign failed");
    };
    secretivex_keys::verify_signature(&blob_of(1), b"data", &sig).unwrap();
    assert!(secretivex_keys::verify_signature(&blob_of(2), b"data", &sig).is_err());

    // Unknown key.
    assert_eq!(
        call(&agent, &mut c, sign(3, b"data")).await,
        Response::Failure
    );

    let remove = Request::RemoveIdentity {
        key_blob: blob_of(1),
    };
    assert_eq!(
        call(&agent, &mut c, remove.clone()).await,
        Response::Success
    );
    assert_eq!(call(&agent, &mut c, remove).await, Response::Failure);
    assert_eq!(
        call(&agent, &mut c, sign(1, b"data")).await,
        Response::Failure
    );
    assert_eq!(
        call(&agent, &mut c, Request::RemoveAllIdentities).await,
        Response::Success
    );
    assert!(agent.keys().is_empty());
}

#[tokio::test]
async fn rsa_signs_sha2_on_request_and_legacy_sha1_without_flags() {
    let agent = agent();
    let mut c = conn();
    let rsa = crate::test_support::rsa_components();
    let wire = crate::test_support::rsa_wire(&rsa);
    let blob = KeyPair::from_wire(&wire).unwrap().public_blob().to_vec();
    let add = Request::AddIdentity(AddIdentity {
        key: wire,
        comment: "rsa".to_string(),
        constraints: vec![],
    });
    assert_eq!(call(&agent, &mut c, add).await, Response::Success);
    for (flags, alg) in [
        (0u32, &b"ssh-rsa"[..]),
        (sign_flags::RSA_SHA2_256, b"rsa-sha2-256"),
        (sign_flags::RSA_SHA2_512, b"rsa-sha2-512"),
    ] {
        let req = Request::Sign(SignRequest {
            key_blob: blob.clone(),
            data: b"payload".to_vec(),
            flags,
        });
        let Response::SignResponse(sig) = call(&agent, &mut c, req).await else {
            panic!("RSA signature with flags {flags} refused");
        };
        assert_eq!(&sig[4..4 + alg.len()], alg, "flags {flags}");
        secretivex_keys::verify_signature(&blob, b"payload", &sig).unwrap();
    }
}

#[tokio::test]
async fn re_adding_a_key_replaces_it_in_place() {
    let agent = agent();
    let mut c = conn();
    call(&agent, &mut c, add(1, "first", vec![])).await;
    call(&agent, &mut c, add(2, "second", vec![])).await;
    assert_eq!(
        call(&agent, &mut c, add(1, "renamed", vec![])).await,
        Response::Success
    );
    let ids = listed(call(&agent, &mut c, Request::RequestIdentities).await);
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0].comment, "renamed");
}

#[tokio::test]
async fn identities_answer_is_cached_until_a_change() {
    let agent = agent();
    let mut c = conn();
    call(&agent, &mut c, add(1, "one", vec![])).await;
    let Reply::Shared(a) = handle(&agent, &mut c, &[msg::REQUEST_IDENTITIES]).await else {
        panic!("listing must be a shared frame");
    };
    let Reply::Shared(b) = handle(&agent, &mut c, &[msg::REQUEST_IDENTITIES]).await else {
        panic!("listing must be a shared frame");
    };
    assert!(Arc::ptr_eq(&a, &b));
    call(&agent, &mut c, add(2, "two", vec![])).await;
    let Reply::Shared(d) = handle(&agent, &mut c, &[msg::REQUEST_IDENTITIES]).await else {
        panic!("listing must be a shared frame");
    };
    assert!(!Arc::ptr_eq(&a, &d));
    assert_eq!(listed(Response::decode(&d[4..]).unwrap()).len(), 2);
}

#[tokio::test]
async fn unknown_and_malformed_requests_fail_without_harm() {
    let agent = agent();
    let mut c = conn();
    call(&agent, &mut c, add(1, "one", vec![])).await;
    assert_eq!(call_raw(&agent, &mut c, &[200]).await, Response::Failure);
    assert_eq!(
        call_raw(&agent, &mut c, &[msg::SIGN_REQUEST, 0, 0]).await,
        Response::Failure
    );
    assert_eq!(
        call_raw(&agent, &mut c, &[msg::ADD_IDENTITY, 0, 0, 0, 99]).await,
        Response::Failure
    );
    // Smartcards are not supported.
    let smartcard = Request::RemoveSmartcardKey {
        id: "/usr/lib/p11.so".to_string(),
        pin: Zeroizing::new(b"1234".to_vec()),
    };
    assert_eq!(call(&agent, &mut c, smartcard).await, Response::Failure);
    // Unsupported extension.
    let other = Request::Extension(ExtensionRequest::Other {
        name: "nope@example.com".to_string(),
        contents: vec![],
    });
    assert_eq!(call(&agent, &mut c, other).await, Response::Failure);
    // The key is untouched and still usable.
    assert!(matches!(
        call(&agent, &mut c, sign(1, b"x")).await,
        Response::SignResponse(_)
    ));
}

#[tokio::test]
async fn repeated_constraints_refuse_the_key() {
    let agent = agent();
    let mut c = conn();
    let twice = vec![Constraint::Lifetime(10), Constraint::Lifetime(20)];
    assert_eq!(
        call(&agent, &mut c, add(1, "k", twice)).await,
        Response::Failure
    );
    let confirm_twice = vec![Constraint::Confirm, Constraint::Confirm];
    assert_eq!(
        call(&agent, &mut c, add(1, "k", confirm_twice)).await,
        Response::Failure
    );
    assert!(agent.keys().is_empty());
}

#[tokio::test]
async fn lock_hides_keys_and_refuses_everything_but_unlock() {
    let agent = agent();
    let mut c = conn();
    call(&agent, &mut c, add(1, "one", vec![])).await;
    let lock = |p: &[u8]| Request::Lock {
        passphrase: Zeroizing::new(p.to_vec()),
    };
    let unlock = |p: &[u8]| Request::Unlock {
        passphrase: Zeroizing::new(p.to_vec()),
    };
    assert_eq!(call(&agent, &mut c, unlock(b"pw")).await, Response::Failure);
    assert_eq!(call(&agent, &mut c, lock(b"")).await, Response::Failure);
    assert_eq!(call(&agent, &mut c, lock(b"pw")).await, Response::Success);
    assert!(agent.is_locked());
    assert_eq!(call(&agent, &mut c, lock(b"pw")).await, Response::Failure);
    assert!(listed(call(&agent, &mut c, Request::RequestIdentities).await).is_empty());
    assert_eq!(call(&agent, &mut c, sign(1, b"x")).await, Response::Failure);
    assert_eq!(
        call(&agent, &mut c, add(2, "two", vec![])).await,
        Response::Failure
    );
    let remove = Request::RemoveIdentity {
        key_blob: blob_of(1),
    };
    assert_eq!(call(&agent, &mut c, remove).await, Response::Failure);
    assert_eq!(agent.keys().len(), 1, "keys are kept while locked");
    assert_eq!(
        call(&agent, &mut c, unlock(b"wrong")).await,
        Response::Failure
    );
    assert!(agent.is_locked());
    assert_eq!(agent.lock.failures(), 1);
    assert_eq!(call(&agent, &mut c, unlock(b"pw")).await, Response::Success);
    assert!(!agent.is_locked());
    assert_eq!(
        listed(call(&agent, &mut c, Request::RequestIdentities).await).len(),
        1
    );
    assert!(matches!(
        call(&agent, &mut c, sign(1, b"x")).await,
        Response::SignResponse(_)
    ));
}

#[tokio::test]
async fn lock_drops_parsed_keys_and_unlock_restores_them() {
    let agent = agent();
    let mut c = conn();
    call(&agent, &mut c, add(1, "one", vec![])).await;
    let rsa_free_cert = vec![Constraint::Confirm];
    call(&agent, &mut c, add(2, "two", rsa_free_cert)).await;
    let weak1 = Arc::downgrade(
        agent
            .keys()
            .find(&blob_of(1))
            .unwrap()
            .key
            .as_ref()
            .unwrap(),
    );
    let weak2 = Arc::downgrade(
        agent
            .keys()
            .find(&blob_of(2))
            .unwrap()
            .key
            .as_ref()
            .unwrap(),
    );
    let lock = Request::Lock {
        passphrase: Zeroizing::new(b"pw".to_vec()),
    };
    assert_eq!(call(&agent, &mut c, lock).await, Response::Success);
    // No parsed key pair survives the lock: only sealed copies remain.
    assert!(weak1.upgrade().is_none());
    assert!(weak2.upgrade().is_none());
    assert!(agent.keys().is_locked());
    assert!(agent.keys().snapshot().iter().all(|i| i.key.is_none()));
    let wrong = Request::Unlock {
        passphrase: Zeroizing::new(b"nope".to_vec()),
    };
    assert_eq!(call(&agent, &mut c, wrong).await, Response::Failure);
    assert!(agent.keys().snapshot().iter().all(|i| i.key.is_none()));
    let unlock = Request::Unlock {
        passphrase: Zeroizing::new(b"pw".to_vec()),
    };
    assert_eq!(call(&agent, &mut c, unlock).await, Response::Success);
    let ids = agent.keys().snapshot();
    assert_eq!(ids.len(), 2);
    assert!(ids.iter().all(|i| i.key.is_some()));
    // Constraints and order survive the round trip.
    assert_eq!(ids[0].comment, "one");
    assert!(!ids[0].confirm);
    assert!(ids[1].confirm);
    let Response::SignResponse(sig) = call(&agent, &mut c, sign(1, b"after")).await else {
        panic!("restored key does not sign");
    };
    secretivex_keys::verify_signature(&blob_of(1), b"after", &sig).unwrap();
    // Lock and unlock again: the re-sealed copies still open.
    let lock = Request::Lock {
        passphrase: Zeroizing::new(b"pw2".to_vec()),
    };
    assert_eq!(call(&agent, &mut c, lock).await, Response::Success);
    let unlock = Request::Unlock {
        passphrase: Zeroizing::new(b"pw2".to_vec()),
    };
    assert_eq!(call(&agent, &mut c, unlock).await, Response::Success);
    assert!(matches!(
        call(&agent, &mut c, sign(1, b"again")).await,
        Response::SignResponse(_)
    ));
}

#[tokio::test]
async fn lifetime_expiry_still_removes_keys_while_locked() {
    let agent = agent();
    let mut c = conn();
    call(
        &agent,
        &mut c,
        add(1, "brief", vec![Constraint::Lifetime(0)]),
    )
    .await;
    call(&agent, &mut c, add(2, "kept", vec![])).await;
    let lock = Request::Lock {
        passphrase: Zeroizing::new(b"pw".to_vec()),
    };
    call(&agent, &mut c, lock).await;
    call(&agent, &mut c, Request::RequestIdentities).await; // sweeps
    assert_eq!(agent.keys().len(), 1);
    let unlock = Request::Unlock {
        passphrase: Zeroizing::new(b"pw".to_vec()),
    };
    assert_eq!(call(&agent, &mut c, unlock).await, Response::Success);
    let ids = listed(call(&agent, &mut c, Request::RequestIdentities).await);
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].comment, "kept");
}

#[tokio::test]
async fn remove_all_works_while_locked() {
    let agent = agent();
    let mut c = conn();
    call(&agent, &mut c, add(1, "one", vec![])).await;
    let lock = Request::Lock {
        passphrase: Zeroizing::new(b"pw".to_vec()),
    };
    assert_eq!(call(&agent, &mut c, lock).await, Response::Success);
    assert_eq!(
        call(&agent, &mut c, Request::RemoveAllIdentities).await,
        Response::Success
    );
    assert!(agent.keys().is_empty());
}

#[tokio::test]
async fn zero_lifetime_key_is_gone_at_the_next_request() {
    let agent = agent();
    let mut c = conn();
    assert_eq!(
        call(
            &agent,
            &mut c,
            add(1, "brief", vec![Constraint::Lifetime(0)])
        )
        .await,
        Response::Success
    );
    assert!(listed(call(&agent, &mut c, Request::RequestIdentities).await).is_empty());
    assert_eq!(call(&agent, &mut c, sign(1, b"x")).await, Response::Failure);
}

#[tokio::test]
async fn lifetime_timer_drops_the_key_from_memory() {
    let agent = agent();
    let mut c = conn();
    assert_eq!(
        call(
            &agent,
            &mut c,
            add(1, "timed", vec![Constraint::Lifetime(5)])
        )
        .await,
        Response::Success
    );
    call(&agent, &mut c, add(2, "forever", vec![])).await;
    let weak = Arc::downgrade(
        agent
            .keys()
            .find(&blob_of(1))
            .unwrap()
            .key
            .as_ref()
            .unwrap(),
    );
    // Freeze the clock only now: key parsing ran on real threads.
    tokio::time::pause();
    tokio::time::advance(std::time::Duration::from_secs(4)).await;
    tokio::task::yield_now().await;
    assert_eq!(agent.keys().len(), 2);
    tokio::time::advance(std::time::Duration::from_secs(2)).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    // Removed by the timer, without any request sweeping it (real time has not moved).
    assert_eq!(agent.keys().len(), 1);
    assert!(
        weak.upgrade().is_none(),
        "expired key pair still referenced"
    );
}

#[tokio::test]
async fn default_lifetime_applies_to_keys_without_one() {
    let agent = agent_with(Config {
        default_lifetime: Some(std::time::Duration::from_secs(3)),
        ..Config::default()
    });
    let mut c = conn();
    call(&agent, &mut c, add(1, "default", vec![])).await;
    call(
        &agent,
        &mut c,
        add(2, "own", vec![Constraint::Lifetime(100)]),
    )
    .await;
    tokio::time::pause();
    tokio::time::advance(std::time::Duration::from_secs(4)).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let ids = listed(call(&agent, &mut c, Request::RequestIdentities).await);
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].comment, "own");
}

#[tokio::test]
async fn query_answers_supported_extensions() {
    let agent = agent();
    let mut c = conn();
    let r = call(&agent, &mut c, Request::Extension(ExtensionRequest::Query)).await;
    let Response::ExtensionResponse { name, contents } = r else {
        panic!("query must answer EXTENSION_RESPONSE");
    };
    assert_eq!(name, "query");
    let text = String::from_utf8_lossy(&contents);
    assert!(text.contains("session-bind@openssh.com"));
}

fn askpass_script(dir: &std::path::Path, body: &str) -> std::path::PathBuf {
    crate::test_support::write_script(dir, "askpass", body)
}

#[tokio::test]
async fn confirm_constraint_asks_before_every_signature() {
    let tmp = tempfile::tempdir().unwrap();
    let count = tmp.path().join("count");
    let script = askpass_script(
        tmp.path(),
        &format!(
            "echo asked >> '{}'; [ -e '{}/deny' ] && exit 1; echo yes",
            count.display(),
            tmp.path().display()
        ),
    );
    let agent = agent_with(Config {
        askpass: Some(script),
        ..Config::default()
    });
    let mut c = conn();
    call(&agent, &mut c, add(1, "careful", vec![Constraint::Confirm])).await;
    assert!(matches!(
        call(&agent, &mut c, sign(1, b"a")).await,
        Response::SignResponse(_)
    ));
    assert!(matches!(
        call(&agent, &mut c, sign(1, b"b")).await,
        Response::SignResponse(_)
    ));
    std::fs::write(tmp.path().join("deny"), b"").unwrap();
    assert_eq!(call(&agent, &mut c, sign(1, b"c")).await, Response::Failure);
    let asked = std::fs::read_to_string(&count).unwrap();
    assert_eq!(asked.lines().count(), 3);
}

/// Session binds and destination constraints.
#[path = "handler_dest_tests.rs"]
mod dest;
