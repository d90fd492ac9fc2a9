//! Issue 2, "Done when" 3: malformed frames written raw over the Unix socket get FAILURE or a
//! closed connection, other clients keep being served, the agent never dies.

mod common;

use std::io::Write;
use std::net::Shutdown;
use std::os::unix::net::UnixStream;

use common::keys::{add_identity_fields, ssh_string};
use common::wire::{self, frame, read_reply, request, Reply};
use common::{gen_key, tempdir, Agent, KeyFiles, KeyKind};

/// What a malformed request may get back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Exactly SSH_AGENT_FAILURE, and the connection keeps working.
    Failure,
    /// FAILURE (optionally EXTENSION_FAILURE) or the agent closing this connection.
    FailureOrClosed,
}

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    /// Half-close our side after writing: the frame is incomplete, only EOF can end it.
    eof_after: bool,
    expect: Expect,
}

fn case(name: &'static str, bytes: Vec<u8>, expect: Expect) -> Case {
    Case {
        name,
        bytes,
        eof_after: false,
        expect,
    }
}

fn incomplete(name: &'static str, bytes: Vec<u8>) -> Case {
    Case {
        name,
        bytes,
        eof_after: true,
        expect: Expect::FailureOrClosed,
    }
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

const ABSURD: [u8; 4] = [0xff, 0xff, 0xff, 0xf0];

fn sign_body(blob: &[u8], data: &[u8], flags: u32) -> Vec<u8> {
    cat(&[&ssh_string(blob), &ssh_string(data), &flags.to_be_bytes()])
}

/// The table. `loaded` is in the agent, `stranger` is a valid key that is not, `fields` is a
/// well-formed add-identity body (key fields + comment) for a key not in the agent.
fn cases(loaded: &KeyFiles, stranger: &KeyFiles, fields: &[u8]) -> Vec<Case> {
    use Expect::*;
    let blob = loaded.public_blob();
    let max = u32::try_from(256 * 1024).expect("const");
    let mut truncated_blob = blob.clone();
    truncated_blob.truncate(blob.len() - 5);
    let ext = |name: &str, rest: &[u8]| {
        frame(wire::EXTENSION, &cat(&[&ssh_string(name.as_bytes()), rest]))
    };
    let dest_ext = ssh_string(b"restrict-destination-v00@openssh.com");
    vec![
        incomplete("truncated body", cat(&[&20u32.to_be_bytes(), &[11, 0, 0]])),
        incomplete("truncated header", vec![0, 0]),
        incomplete("length 0", vec![0, 0, 0, 0]),
        incomplete(
            "length 256 KiB + 1",
            cat(&[&(max + 1).to_be_bytes(), &[13, 0, 0, 0]]),
        ),
        incomplete("length u32::MAX", cat(&[&u32::MAX.to_be_bytes(), &[11]])),
        case("unknown type 200", frame(200, &[]), Failure),
        case("unknown type 0", frame(0, b"junk"), Failure),
        case("legacy SSH1 type 1", frame(1, &[]), Failure),
        case("private-use type 255", frame(255, &[1, 2, 3]), Failure),
        case(
            "request-identities with trailing bytes",
            frame(11, &[0xde, 0xad]),
            FailureOrClosed,
        ),
        case(
            "sign: garbage key blob",
            frame(13, &sign_body(b"garbage", b"data", 0)),
            FailureOrClosed,
        ),
        case(
            "sign: truncated key blob",
            frame(13, &sign_body(&truncated_blob, b"data", 0)),
            FailureOrClosed,
        ),
        case(
            "sign: empty key blob",
            frame(13, &sign_body(b"", b"data", 0)),
            FailureOrClosed,
        ),
        case(
            "sign: unknown key",
            frame(13, &sign_body(&stranger.public_blob(), b"data", 0)),
            Failure,
        ),
        case(
            "sign: absurd key blob length",
            frame(13, &cat(&[&ABSURD, &blob])),
            FailureOrClosed,
        ),
        case(
            "sign: absurd data length",
            frame(13, &cat(&[&ssh_string(&blob), &ABSURD, b"data"])),
            FailureOrClosed,
        ),
        case(
            "sign: missing flags",
            frame(13, &cat(&[&ssh_string(&blob), &ssh_string(b"d")])),
            FailureOrClosed,
        ),
        case(
            "sign: trailing bytes",
            frame(13, &cat(&[&sign_body(&blob, b"data", 0), &[0]])),
            FailureOrClosed,
        ),
        case(
            "add: absurd key type length",
            frame(17, &ABSURD),
            FailureOrClosed,
        ),
        case(
            "add: unknown key type",
            frame(
                17,
                &cat(&[&ssh_string(b"ssh-unknown@example.com"), &ssh_string(b"x")]),
            ),
            FailureOrClosed,
        ),
        case(
            "add: truncated key",
            frame(17, fields.get(..fields.len() / 2).unwrap_or(&[])),
            FailureOrClosed,
        ),
        case(
            "add: unknown constraint",
            frame(25, &cat(&[fields, &[0x7e]])),
            Failure,
        ),
        case(
            "add: truncated lifetime",
            frame(25, &cat(&[fields, &[1, 0, 0]])),
            FailureOrClosed,
        ),
        case(
            "add: unknown extension constraint",
            frame(
                25,
                &cat(&[
                    fields,
                    &[255],
                    &ssh_string(b"nope@example.com"),
                    &ssh_string(b""),
                ]),
            ),
            Failure,
        ),
        case(
            "add: destination constraint with absurd inner length",
            frame(25, &cat(&[fields, &[255], &dest_ext, &ABSURD])),
            FailureOrClosed,
        ),
        case(
            "add: destination constraint with absurd hop length",
            frame(
                25,
                &cat(&[
                    fields,
                    &[255],
                    &dest_ext,
                    &ssh_string(&cat(&[&ABSURD, &[0; 8]])),
                ]),
            ),
            FailureOrClosed,
        ),
        case(
            "remove: absurd blob length",
            frame(18, &ABSURD),
            FailureOrClosed,
        ),
        case(
            "remove: unknown key",
            frame(18, &ssh_string(&stranger.public_blob())),
            Failure,
        ),
        case(
            "lock: absurd passphrase length",
            frame(22, &ABSURD),
            FailureOrClosed,
        ),
        case(
            "unlock while unlocked",
            frame(23, &ssh_string(b"pw")),
            Failure,
        ),
        case(
            "extension: absurd name length",
            frame(27, &ABSURD),
            FailureOrClosed,
        ),
        case(
            "extension: unknown name",
            ext("nope@example.com", b"\x01\x02"),
            Failure,
        ),
        case(
            "session-bind: garbage",
            ext("session-bind@openssh.com", &[0, 0, 0, 3, 1]),
            FailureOrClosed,
        ),
        case(
            "session-bind: absurd host key length",
            ext("session-bind@openssh.com", &ABSURD),
            FailureOrClosed,
        ),
        case(
            "smartcard remove (unsupported)",
            frame(21, &cat(&[&ssh_string(b"/nope.so"), &ssh_string(b"")])),
            Failure,
        ),
        case(
            "smartcard add constrained (unsupported)",
            frame(
                26,
                &cat(&[&ssh_string(b"/nope.so"), &ssh_string(b""), &[2]]),
            ),
            Failure,
        ),
        case(
            "smartcard add (unsupported)",
            frame(20, &cat(&[&ssh_string(b"/nope.so"), &ssh_string(b"")])),
            Failure,
        ),
    ]
}

/// The watcher's view must not change: one identity, and it still signs.
#[track_caller]
fn assert_served(watcher: &mut UnixStream, loaded: &KeyFiles, after: &str, agent: &Agent) {
    let ids = wire::identities_on(watcher).unwrap_or_else(|e| {
        panic!(
            "watcher not served after `{after}`: {e}\n{}",
            agent.output()
        )
    });
    assert_eq!(ids.len(), 1, "after `{after}` the agent lists {ids:?}");
    let reply = request(
        watcher,
        &frame(
            wire::SIGN_REQUEST,
            &sign_body(&loaded.public_blob(), after.as_bytes(), 0),
        ),
    )
    .unwrap_or_else(|e| panic!("watcher sign after `{after}`: {e}"));
    assert_eq!(
        reply.msg_type(),
        Some(wire::SIGN_RESPONSE),
        "after `{after}`: {reply:?}"
    );
}

#[test]
fn malformed_frames_fail_or_close_while_others_are_served() {
    let dir = tempdir();
    let loaded = gen_key(dir.path(), KeyKind::Ed25519, "id_loaded");
    let stranger = gen_key(dir.path(), KeyKind::Ed25519, "id_stranger");
    let fields = add_identity_fields(&stranger);
    let mut agent = Agent::start(dir.path());
    agent.add(&loaded.private);

    // Connected before the first bad frame and used after every one.
    let mut watcher = wire::connect(agent.sock()).expect("watcher connects");
    assert_served(&mut watcher, &loaded, "start", &agent);

    let mut problems = Vec::new();
    for c in cases(&loaded, &stranger, &fields) {
        let mut conn = wire::connect(agent.sock()).expect("connect");
        let written = conn.write_all(&c.bytes);
        if c.eof_after {
            let _ = conn.shutdown(Shutdown::Write);
        }
        let reply = match written {
            Ok(()) => read_reply(&mut conn),
            Err(_) => Ok(Reply::Closed),
        };
        let ok = match (&reply, c.expect) {
            (Ok(r), Expect::Failure) => r.msg_type() == Some(wire::FAILURE),
            (Ok(Reply::Closed), Expect::FailureOrClosed) => true,
            (Ok(r), Expect::FailureOrClosed) => {
                matches!(
                    r.msg_type(),
                    Some(wire::FAILURE) | Some(wire::EXTENSION_FAILURE)
                )
            }
            (Err(_), _) => false,
        };
        if !ok {
            problems.push(format!("{}: {reply:?}", c.name));
        }
        // A connection that got an answer and was not closed must still be in sync.
        if !c.eof_after && matches!(reply, Ok(Reply::Frame { .. })) {
            match wire::identities_on(&mut conn) {
                Ok(ids) if ids.len() == 1 => {}
                Ok(ids) => problems.push(format!("{}: then listed {ids:?}", c.name)),
                Err(e) => {
                    if c.expect == Expect::Failure {
                        problems.push(format!("{}: connection unusable afterwards: {e}", c.name));
                    }
                }
            }
        }
        assert_served(&mut watcher, &loaded, c.name, &agent);
    }
    assert!(agent.is_alive(), "agent died\n{}", agent.output());
    assert!(
        problems.is_empty(),
        "wrong answers:\n{}\n{}",
        problems.join("\n"),
        agent.output()
    );

    // Nothing malformed was added along the way.
    assert_eq!(agent.list().len(), 1);
}

#[test]
fn unknown_message_gets_failure_and_the_same_connection_goes_on() {
    let dir = tempdir();
    let key = gen_key(dir.path(), KeyKind::Ecdsa256, "id");
    let agent = Agent::start(dir.path());
    agent.add(&key.private);
    let mut conn = wire::connect(agent.sock()).expect("connect");
    for msg_type in [200u8, 1, 16, 24, 240] {
        let reply = request(&mut conn, &frame(msg_type, &[])).expect("reply");
        assert_eq!(
            reply.msg_type(),
            Some(wire::FAILURE),
            "type {msg_type}: {reply:?}"
        );
        let ids = wire::identities_on(&mut conn).expect("same connection answers");
        assert_eq!(ids.len(), 1, "{ids:?}");
        assert_eq!(ids[0].0, key.public_blob());
    }
}

#[test]
fn key_with_unknown_constraint_is_refused_whole() {
    let dir = tempdir();
    let key = gen_key(dir.path(), KeyKind::Ed25519, "id_constrained");
    let fields = add_identity_fields(&key);
    let agent = Agent::start(dir.path());
    let mut conn = wire::connect(agent.sock()).expect("connect");

    for (what, constraints) in [
        ("unknown constraint 0x7e", vec![0x7eu8]),
        (
            "known lifetime, then unknown",
            cat(&[&[1, 0, 0, 0, 60], &[0x7e]]),
        ),
        (
            "confirm, then unknown extension",
            cat(&[&[2, 255], &ssh_string(b"x@example.com"), &ssh_string(b"")]),
        ),
    ] {
        let reply = request(
            &mut conn,
            &frame(wire::ADD_ID_CONSTRAINED, &cat(&[&fields, &constraints])),
        )
        .expect("reply");
        assert_eq!(reply.msg_type(), Some(wire::FAILURE), "{what}: {reply:?}");
        assert!(
            wire::identities_on(&mut conn).expect("list").is_empty(),
            "{what}: key was added"
        );
    }

    // Control: the same key with only known constraints is accepted, so the refusals above
    // came from the constraint and not from the key encoding.
    let reply = request(
        &mut conn,
        &frame(
            wire::ADD_ID_CONSTRAINED,
            &cat(&[&fields, &[1, 0, 0, 0, 60]]),
        ),
    )
    .expect("reply");
    assert_eq!(
        reply.msg_type(),
        Some(wire::SUCCESS),
        "{reply:?}\n{}",
        agent.output()
    );
    let ids = wire::identities_on(&mut conn).expect("list");
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].0, key.public_blob());
}

#[test]
fn frame_size_limit_is_256_kib() {
    let dir = tempdir();
    let key = gen_key(dir.path(), KeyKind::Ed25519, "id");
    let mut agent = Agent::start(dir.path());
    agent.add(&key.private);
    let blob = key.public_blob();
    // body = type + string blob + string data + u32 flags
    let data_len_at_limit = 256 * 1024 - (1 + 4 + blob.len() + 4 + 4);

    let mut conn = wire::connect(agent.sock()).expect("connect");
    let at_limit = frame(
        wire::SIGN_REQUEST,
        &sign_body(&blob, &vec![7u8; data_len_at_limit], 0),
    );
    assert_eq!(at_limit.len(), 4 + 256 * 1024);
    let reply = request(&mut conn, &at_limit).expect("reply");
    assert_eq!(
        reply.msg_type(),
        Some(wire::SIGN_RESPONSE),
        "frame of exactly 256 KiB: {reply:?}"
    );

    let mut conn = wire::connect(agent.sock()).expect("connect");
    let over = frame(
        wire::SIGN_REQUEST,
        &sign_body(&blob, &vec![7u8; data_len_at_limit + 1], 0),
    );
    let reply = request(&mut conn, &over).expect("reply");
    assert!(
        matches!(reply, Reply::Closed) || reply.msg_type() == Some(wire::FAILURE),
        "frame over 256 KiB answered {reply:?}"
    );
    assert!(agent.is_alive());
    assert_eq!(wire::list_count(agent.sock()).expect("list"), 1);
}

/// One `restrict-destination-v00@openssh.com` hop: local host to `host` with one host key.
fn dest_constraint(host: &str, host_key: &[u8]) -> Vec<u8> {
    let from = ssh_string(&cat(&[
        &ssh_string(b""),
        &ssh_string(b""),
        &ssh_string(b""),
    ]));
    let to = ssh_string(&cat(&[
        &ssh_string(b""),
        &ssh_string(host.as_bytes()),
        &ssh_string(b""),
        &ssh_string(host_key),
        &[0],
    ]));
    ssh_string(&cat(&[&from, &to, &ssh_string(b"")]))
}

/// `ADD_ID_CONSTRAINED` with a destination constraint of `hops` hops.
fn add_with_hops(fields: &[u8], hops: usize, host_key: &[u8]) -> Vec<u8> {
    let all: Vec<u8> = (0..hops)
        .flat_map(|i| dest_constraint(&format!("host{i}"), host_key))
        .collect();
    frame(
        wire::ADD_ID_CONSTRAINED,
        &cat(&[
            fields,
            &[255],
            &ssh_string(b"restrict-destination-v00@openssh.com"),
            &ssh_string(&all),
        ]),
    )
}

#[test]
fn absurd_destination_constraint_count_is_refused() {
    let dir = tempdir();
    let key = gen_key(dir.path(), KeyKind::Ed25519, "id");
    let host = gen_key(dir.path(), KeyKind::Ed25519, "host");
    let fields = add_identity_fields(&key);
    let mut agent = Agent::start(dir.path());
    let mut conn = wire::connect(agent.sock()).expect("connect");

    // OpenSSH allows at most 1024 destination constraints per key.
    let request_bytes = add_with_hops(&fields, 2000, &host.public_blob());
    assert!(request_bytes.len() < 256 * 1024, "must fit in a frame");
    let reply = request(&mut conn, &request_bytes).expect("reply");
    assert!(
        matches!(reply, Reply::Closed) || reply.msg_type() == Some(wire::FAILURE),
        "2000 hops: {reply:?}"
    );
    assert_eq!(
        wire::list_count(agent.sock()).expect("list"),
        0,
        "key added"
    );

    // Control: the same encoding with two hops is accepted.
    let mut conn = wire::connect(agent.sock()).expect("connect");
    let reply = request(&mut conn, &add_with_hops(&fields, 2, &host.public_blob())).expect("reply");
    assert_eq!(
        reply.msg_type(),
        Some(wire::SUCCESS),
        "2 hops: {reply:?}\n{}",
        agent.output()
    );
    assert_eq!(wire::list_count(agent.sock()).expect("list"), 1);
    assert!(agent.is_alive());
}
