//! `session-bind@openssh.com` with OpenSSH's rules: the host key's signature over the session
//! id is verified, a session id belongs to one host key per connection, at most 16 binds per
//! connection, and a connection bound for authentication cannot be bound again.

mod common;

use std::os::unix::net::UnixStream;

use common::keys::{ssh_string, Reader};
use common::wire::{self, frame, request, Reply};
use common::{gen_keys, tempdir, Agent, KeyKind};

/// Signs `data` with `key_blob` through the agent (the host key lives in the agent only to
/// produce real host-key signatures for the test).
fn agent_sign(agent: &Agent, key_blob: &[u8], data: &[u8]) -> Vec<u8> {
    let mut conn = wire::connect(agent.sock()).expect("connect");
    let body = [ssh_string(key_blob), ssh_string(data), vec![0, 0, 0, 0]].concat();
    match request(&mut conn, &frame(wire::SIGN_REQUEST, &body)).expect("reply") {
        Reply::Frame {
            msg_type: wire::SIGN_RESPONSE,
            body,
        } => Reader::new(&body).string().to_vec(),
        other => panic!("host key signature: {other:?}"),
    }
}

fn bind(conn: &mut UnixStream, host: &[u8], session_id: &[u8], sig: &[u8], fwd: bool) -> Reply {
    let body = [
        ssh_string(b"session-bind@openssh.com"),
        ssh_string(host),
        ssh_string(session_id),
        ssh_string(sig),
        vec![u8::from(fwd)],
    ]
    .concat();
    request(conn, &frame(wire::EXTENSION, &body)).expect("bind reply")
}

fn ok(r: &Reply) -> bool {
    r.msg_type() == Some(wire::SUCCESS)
}

fn refused(r: &Reply) -> bool {
    matches!(
        r.msg_type(),
        Some(wire::FAILURE) | Some(wire::EXTENSION_FAILURE)
    )
}

#[test]
fn session_bind_follows_openssh_rules() {
    let dir = tempdir();
    let keys = gen_keys(
        dir.path(),
        &[(KeyKind::Ed25519, "host_a"), (KeyKind::Ecdsa256, "host_b")],
    );
    let (host, other) = (keys[0].public_blob(), keys[1].public_blob());
    let agent = Agent::start(dir.path());
    for k in &keys {
        agent.add(&k.private);
    }
    let sid = |i: u8| vec![i; 32];

    // A valid forwarding bind is accepted; the connection still answers normally.
    let mut conn = wire::connect(agent.sock()).expect("connect");
    let sig0 = agent_sign(&agent, &host, &sid(0));
    let r = bind(&mut conn, &host, &sid(0), &sig0, true);
    assert!(ok(&r), "valid bind: {r:?}\n{}", agent.output());
    assert_eq!(wire::identities_on(&mut conn).expect("list").len(), 2);

    // The same session id and key again is accepted without being recorded twice (it does
    // not count towards the limit below); the same id with another host key is refused.
    let r = bind(&mut conn, &host, &sid(0), &sig0, true);
    assert!(ok(&r), "repeated identical bind: {r:?}");
    let r = bind(
        &mut conn,
        &other,
        &sid(0),
        &agent_sign(&agent, &other, &sid(0)),
        true,
    );
    assert!(
        refused(&r),
        "session id re-bound to another host key: {r:?}"
    );

    // Bad signatures are refused: tampered, over other data, by another key.
    let mut tampered = agent_sign(&agent, &host, &sid(1));
    if let Some(last) = tampered.last_mut() {
        *last ^= 1;
    }
    let r = bind(&mut conn, &host, &sid(1), &tampered, true);
    assert!(refused(&r), "tampered signature: {r:?}");
    let r = bind(
        &mut conn,
        &host,
        &sid(1),
        &agent_sign(&agent, &host, &sid(2)),
        true,
    );
    assert!(refused(&r), "signature over another session id: {r:?}");
    let r = bind(
        &mut conn,
        &host,
        &sid(1),
        &agent_sign(&agent, &other, &sid(1)),
        true,
    );
    assert!(refused(&r), "signature by another key: {r:?}");

    // At most 16 binds per connection: 15 more succeed, the 17th is refused.
    for i in 1..16u8 {
        let r = bind(
            &mut conn,
            &host,
            &sid(i),
            &agent_sign(&agent, &host, &sid(i)),
            true,
        );
        assert!(ok(&r), "bind {i}: {r:?}");
    }
    let r = bind(
        &mut conn,
        &host,
        &sid(16),
        &agent_sign(&agent, &host, &sid(16)),
        true,
    );
    assert!(refused(&r), "17th bind accepted: {r:?}");
    assert_eq!(wire::identities_on(&mut conn).expect("list").len(), 2);

    // A connection bound for authentication (not forwarding) cannot be bound again.
    let mut auth = wire::connect(agent.sock()).expect("connect");
    let r = bind(
        &mut auth,
        &host,
        &sid(20),
        &agent_sign(&agent, &host, &sid(20)),
        false,
    );
    assert!(ok(&r), "auth bind: {r:?}");
    let r = bind(
        &mut auth,
        &host,
        &sid(21),
        &agent_sign(&agent, &host, &sid(21)),
        true,
    );
    assert!(refused(&r), "re-bind after an authentication bind: {r:?}");
}
