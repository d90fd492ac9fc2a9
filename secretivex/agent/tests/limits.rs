//! Issue 4, "Agent, tuned for fan-out": `--max-connections`, `--sign-timeout` and
//! `--idle-timeout`. Whatever the limit, every client gets an answer or a closed
//! connection, never silence. Checked by counting replies, never by timing them.

mod common;

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::agent::AgentImpl;
use common::wire::{self, Reply, FAILURE, IDENTITIES_ANSWER, SIGN_RESPONSE};
use common::{poll, run, tempdir, tool, AgentBuilder};
use secretivex_proto::{Request, SignRequest};

fn list_on(s: &mut UnixStream) -> Reply {
    wire::request(s, &wire::frame(wire::REQUEST_IDENTITIES, &[])).expect("request")
}

#[test]
fn connection_beyond_max_connections_is_closed_not_left_waiting() {
    let dir = tempdir();
    let agent = AgentBuilder::with_impl(AgentImpl::SecretiveX, dir.path())
        .args(["--max-connections", "2"])
        .start();

    // Two connections, each proven to be served (so both hold a place). The start-up
    // probe's connection may still hold one until the agent sees it closed: retry.
    let served_connection = || {
        poll(500, Duration::from_millis(20), || {
            let mut s = wire::connect(agent.sock()).ok()?;
            (list_on(&mut s).msg_type() == Some(IDENTITIES_ANSWER)).then_some(s)
        })
        .unwrap_or_else(|| panic!("no connection served\n{}", agent.output()))
    };
    let mut first = served_connection();
    let mut second = served_connection();

    // The third is closed at once: its request sees EOF, not a hang (the helper's read
    // timeout is a 60 s safety net that would fail the test).
    let mut third = wire::connect(agent.sock()).expect("connect 3");
    assert_eq!(list_on(&mut third), Reply::Closed, "{}", agent.output());

    // The two served connections are unaffected.
    assert_eq!(list_on(&mut first).msg_type(), Some(IDENTITIES_ANSWER));
    assert_eq!(list_on(&mut second).msg_type(), Some(IDENTITIES_ANSWER));

    // Closing one gives its place back: a new client is served again.
    drop(first);
    let mut again = served_connection();
    assert_eq!(list_on(&mut again).msg_type(), Some(IDENTITIES_ANSWER));
}

/// An RSA-4096 key made by `ssh-keygen`, for slow signatures.
fn rsa_4096(dir: &Path) -> (std::path::PathBuf, Vec<u8>) {
    let path = dir.join("id_rsa4096");
    let out = run(tool("ssh-keygen")
        .args(["-q", "-t", "rsa", "-b", "4096", "-N", "", "-f"])
        .arg(&path));
    out.assert_ok();
    let line = std::fs::read_to_string(format!("{}.pub", path.display())).expect("read public key");
    let b64 = line.split_whitespace().nth(1).expect("public key line");
    let blob = base64_decode(b64);
    (path, blob)
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64 public key")
}

#[test]
fn sign_timeout_fails_some_requests_and_answers_every_one() {
    const CLIENTS: usize = 48;
    const PER_CLIENT: usize = 2;
    let dir = tempdir();
    let (key, blob) = rsa_4096(dir.path());
    let agent = AgentBuilder::with_impl(AgentImpl::SecretiveX, dir.path())
        .args(["--max-signers", "1", "--sign-timeout", "1"])
        .start();
    agent.add(&key);

    let start = Arc::new(Barrier::new(CLIENTS));
    let handles: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (start, sock, blob) = (start.clone(), agent.sock().to_path_buf(), blob.clone());
            std::thread::spawn(move || {
                let mut s = wire::connect(&sock).expect("connect");
                start.wait();
                let mut replies = Vec::new();
                for j in 0..PER_CLIENT {
                    let mut req = Vec::new();
                    Request::Sign(SignRequest {
                        key_blob: blob.clone(),
                        data: format!("client {i} request {j}").into_bytes(),
                        flags: 2, // rsa-sha2-256
                    })
                    .encode_frame(&mut req);
                    replies.push(wire::request(&mut s, &req).expect("reply or close"));
                }
                replies
            })
        })
        .collect();
    let replies: Vec<Reply> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("client thread"))
        .collect();

    let signed = replies
        .iter()
        .filter(|r| r.msg_type() == Some(SIGN_RESPONSE))
        .count();
    let failed = replies
        .iter()
        .filter(|r| r.msg_type() == Some(FAILURE))
        .count();
    eprintln!("{signed} signed, {failed} failed of {}", replies.len());
    // Every request got an answer (no close, nothing else).
    assert_eq!(signed + failed, CLIENTS * PER_CLIENT, "{replies:?}");
    // The first request finds the signer free; with one signer, a 1 ms limit and 96
    // RSA-4096 requests at once, some cannot get it in time.
    assert!(signed >= 1, "nothing signed\n{}", agent.output());
    assert!(failed >= 1, "no request timed out\n{}", agent.output());
    // The agent is healthy afterwards.
    assert_eq!(wire::list_count(agent.sock()).expect("list"), 1);
}

#[test]
fn idle_connection_is_closed_after_idle_timeout() {
    let dir = tempdir();
    let agent = AgentBuilder::with_impl(AgentImpl::SecretiveX, dir.path())
        .args(["--idle-timeout", "1"])
        .start();
    let mut s = wire::connect(agent.sock()).expect("connect");
    assert_eq!(list_on(&mut s).msg_type(), Some(IDENTITIES_ANSWER));
    // Send nothing more: the agent closes the connection (EOF), well before the helper's
    // 60 s safety timeout.
    assert_eq!(wire::read_reply(&mut s).expect("read"), Reply::Closed);

    // Without the option, the same idle connection stays open: a later request works.
    let other_dir = tempdir();
    let patient = AgentBuilder::with_impl(AgentImpl::SecretiveX, other_dir.path()).start();
    let mut s = wire::connect(patient.sock()).expect("connect");
    assert_eq!(list_on(&mut s).msg_type(), Some(IDENTITIES_ANSWER));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(list_on(&mut s).msg_type(), Some(IDENTITIES_ANSWER));
}
