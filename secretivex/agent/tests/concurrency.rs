//! Concurrency: replies on one connection come back in request order (any agent); and what
//! OpenSSH's single-threaded agent cannot do and ours must (these always run ours): a pending
//! confirmation prompt or a failed-unlock back-off holds up only the client it concerns, the
//! listen backlog is large and configurable, running out of descriptors does not stop it.

mod common;

use std::path::Path;
use std::thread;
use std::time::Duration;

use common::cmd::{poll, require_tool, write_script};
use common::keys::ssh_string;
use common::wire::{self, frame, request};
use common::{gen_key, run, tempdir, tool, AgentBuilder, AgentImpl, KeyKind};

fn ours(dir: &Path) -> AgentBuilder {
    AgentBuilder::with_impl(AgentImpl::SecretiveX, dir)
}

#[test]
fn pending_confirmation_does_not_hold_up_other_clients() {
    let dir = tempdir();
    let confirm = gen_key(dir.path(), KeyKind::Ed25519, "id_confirm");
    let plain = gen_key(dir.path(), KeyKind::Ecdsa256, "id_plain");
    let called = dir.path().join("askpass-called");
    let release = dir.path().join("askpass-release");
    // The "user" answers only once the test creates the release file (bounded to ~60 s so a
    // broken run cannot hang).
    let askpass = dir.path().join("askpass");
    write_script(
        &askpass,
        &format!(
            "touch '{}'\ni=0\nwhile [ ! -e '{}' ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\nexit 0",
            called.display(),
            release.display()
        ),
    );
    let agent = ours(dir.path()).askpass(&askpass).start();
    agent
        .ssh_add(["-c".as_ref(), confirm.private.as_os_str()])
        .assert_ok();
    agent.add(&plain.private);

    thread::scope(|scope| {
        let waiting = scope.spawn(|| agent.ssh_add(["-T".as_ref(), confirm.public.as_os_str()]));
        let prompt_up = poll(1000, Duration::from_millis(20), || {
            called.exists().then_some(())
        });
        assert!(prompt_up.is_some(), "askpass never ran\n{}", agent.output());

        // While the prompt is open, everyone else is served.
        assert_eq!(agent.list().len(), 2);
        agent
            .ssh_add(["-T".as_ref(), plain.public.as_os_str()])
            .assert_ok();
        let mut conn = wire::connect(agent.sock()).expect("connect");
        let data = b"signed while a prompt is open";
        let reply = request(
            &mut conn,
            &frame(
                wire::SIGN_REQUEST,
                &[
                    ssh_string(&plain.public_blob()),
                    ssh_string(data),
                    0u32.to_be_bytes().to_vec(),
                ]
                .concat(),
            ),
        )
        .expect("sign reply");
        assert_eq!(reply.msg_type(), Some(wire::SIGN_RESPONSE), "{reply:?}");
        assert!(
            !waiting.is_finished() && !release.exists(),
            "the confirmation finished before it was answered"
        );

        std::fs::write(&release, b"yes").expect("release");
        let out = waiting.join().expect("ssh-add -T thread");
        assert!(
            out.success(),
            "confirmed sign failed: {out}\n{}",
            agent.output()
        );
    });
}

#[test]
fn failed_unlock_delay_holds_up_only_that_connection() {
    let dir = tempdir();
    let key = gen_key(dir.path(), KeyKind::Ed25519, "id");
    let agent = ours(dir.path()).start();
    agent.add(&key.private);

    let mut owner = wire::connect(agent.sock()).expect("connect");
    let lock = request(&mut owner, &frame(22, &ssh_string(b"right"))).expect("lock");
    assert_eq!(lock.msg_type(), Some(wire::SUCCESS));
    let wrong_unlock = frame(23, &ssh_string(b"wrong"));
    // Build up the back-off: each failure adds to the delay of the next one.
    let mut guesser = wire::connect(agent.sock()).expect("connect");
    for _ in 0..5 {
        let r = request(&mut guesser, &wrong_unlock).expect("unlock reply");
        assert_eq!(r.msg_type(), Some(wire::FAILURE));
    }

    thread::scope(|scope| {
        // The sixth wrong guess owes the longest delay so far; while its answer is pending,
        // another client is answered. (Ordering is what is asserted: another client gets its
        // answer before the guesser does. The delay is the agent's, hundreds of milliseconds
        // by design; one list request takes far less.)
        let slow = scope.spawn(|| request(&mut guesser, &wrong_unlock));
        let mut served_meanwhile = 0;
        let mut other = wire::connect(agent.sock()).expect("connect");
        while !slow.is_finished() {
            let ids = wire::identities_on(&mut other).expect("list while locked");
            assert!(ids.is_empty(), "keys listed while locked");
            if !slow.is_finished() {
                served_meanwhile += 1;
            }
        }
        let r = slow.join().expect("guesser").expect("unlock reply");
        assert_eq!(r.msg_type(), Some(wire::FAILURE));
        assert!(
            served_meanwhile > 0,
            "no other client was answered while a failed unlock was delayed\n{}",
            agent.output()
        );
    });

    let r = request(&mut owner, &frame(23, &ssh_string(b"right"))).expect("unlock");
    assert_eq!(r.msg_type(), Some(wire::SUCCESS));
    assert_eq!(agent.list().len(), 1);
}

/// The listen backlog (`Send-Q` of a listening Unix socket in `ss -xl`).
fn listen_backlog(sock: &Path) -> u64 {
    require_tool("ss");
    let out = run(tool("ss").args(["-xlH"]));
    out.assert_ok();
    let path = sock.display().to_string();
    let line = out
        .stdout
        .lines()
        .find(|l| l.split_whitespace().any(|f| f == path))
        .unwrap_or_else(|| panic!("{path} not listening: {out}"));
    // Netid State Recv-Q Send-Q Local ...
    line.split_whitespace()
        .nth(3)
        .and_then(|q| q.parse().ok())
        .unwrap_or_else(|| panic!("no Send-Q in `{line}`"))
}

#[test]
fn listen_backlog_defaults_high_and_is_configurable() {
    let somaxconn: u64 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .expect("somaxconn")
        .trim()
        .parse()
        .expect("number");
    let dir = tempdir();
    let agent = ours(dir.path()).start();
    // The kernel caps the backlog at net.core.somaxconn.
    assert!(
        listen_backlog(agent.sock()) >= 4096.min(somaxconn),
        "default backlog {} (somaxconn {somaxconn})",
        listen_backlog(agent.sock())
    );
    let dir2 = tempdir();
    let small = ours(dir2.path()).args(["--backlog", "77"]).start();
    assert_eq!(listen_backlog(small.sock()), 77);
}

#[test]
fn running_out_of_file_descriptors_does_not_stop_the_agent() {
    require_tool("prlimit");
    let dir = tempdir();
    // Room for the runtime's own descriptors and a handful of clients only.
    let agent = ours(dir.path())
        .wrapper(["prlimit", "--nofile=48:48", "--"])
        .start();
    // Far more clients than descriptors: the surplus waits in the listen backlog while the
    // agent keeps hitting EMFILE on accept.
    let mut held = Vec::new();
    for _ in 0..200 {
        let mut s = wire::connect(agent.sock()).expect("connect (backlog)");
        std::io::Write::write_all(&mut s, &frame(wire::REQUEST_IDENTITIES, &[])).expect("write");
        held.push(s);
    }
    // The agent is at its descriptor limit (so accept() is failing with EMFILE).
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", agent.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let saturated = poll(500, Duration::from_millis(20), || {
        (fds() >= 46).then_some(())
    });
    assert!(
        saturated.is_some(),
        "agent never reached its fd limit: {} open",
        fds()
    );
    let mut first = held.swap_remove(0);
    let answered = wire::read_reply(&mut first).expect("first client answered");
    assert_eq!(answered.msg_type(), Some(wire::IDENTITIES_ANSWER));
    drop(first);
    drop(held);
    // Once the clients are gone, new ones are served again.
    let served = poll(500, Duration::from_millis(20), || {
        wire::list_count(agent.sock()).ok()
    });
    assert_eq!(
        served,
        Some(0),
        "agent stopped serving after EMFILE\n{}",
        agent.output()
    );
    let key = gen_key(dir.path(), KeyKind::Ed25519, "id");
    agent.add(&key.private);
    assert_eq!(agent.list().len(), 1);
}

#[test]
fn pipelined_requests_on_one_connection_are_answered_in_order() {
    let dir = tempdir();
    let ed = gen_key(dir.path(), KeyKind::Ed25519, "id_ed");
    let rsa = gen_key(dir.path(), KeyKind::Rsa3072, "id_rsa");
    let agent = common::Agent::start(dir.path());
    agent.add(&ed.private);
    agent.add(&rsa.private);

    // 60 requests written in one go before reading anything: slow RSA signatures, fast
    // Ed25519 ones, lists and unknown messages interleaved. Replies must come back in the
    // order of the requests even though the agent may work on them concurrently.
    enum Want {
        Sig(Vec<u8>, Vec<u8>),
        List,
        Failure,
    }
    let mut bytes = Vec::new();
    let mut wants = Vec::new();
    for i in 0..60u32 {
        match i % 4 {
            0 | 1 => {
                let key = if i % 4 == 0 { &rsa } else { &ed };
                let data = format!("request {i}").into_bytes();
                let flags = if i % 4 == 0 {
                    secretivex_proto::sign_flags::RSA_SHA2_512
                } else {
                    0
                };
                bytes.extend(frame(
                    wire::SIGN_REQUEST,
                    &[
                        ssh_string(&key.public_blob()),
                        ssh_string(&data),
                        u32::to_be_bytes(flags).to_vec(),
                    ]
                    .concat(),
                ));
                wants.push(Want::Sig(key.public_blob(), data));
            }
            2 => {
                bytes.extend(frame(wire::REQUEST_IDENTITIES, &[]));
                wants.push(Want::List);
            }
            _ => {
                bytes.extend(frame(200, &[]));
                wants.push(Want::Failure);
            }
        }
    }
    let mut conn = wire::connect(agent.sock()).expect("connect");
    std::io::Write::write_all(&mut conn, &bytes).expect("write all requests");
    for (i, want) in wants.iter().enumerate() {
        let reply = wire::read_reply(&mut conn).expect("reply");
        match (want, &reply) {
            (
                Want::Sig(blob, data),
                wire::Reply::Frame {
                    msg_type: wire::SIGN_RESPONSE,
                    body,
                },
            ) => {
                let sig = common::keys::Reader::new(body).string().to_vec();
                secretivex_keys::verify_signature(blob, data, &sig).unwrap_or_else(|e| {
                    panic!("reply {i} is not the signature of request {i}: {e}")
                });
            }
            (
                Want::List,
                wire::Reply::Frame {
                    msg_type: wire::IDENTITIES_ANSWER,
                    body,
                },
            ) => assert_eq!(wire::parse_identities(body).len(), 2),
            (Want::Failure, r) if r.msg_type() == Some(wire::FAILURE) => {}
            (_, other) => panic!("reply {i} out of order or wrong: {other:?}"),
        }
    }
}
