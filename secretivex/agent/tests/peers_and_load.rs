//! Issue 2, "Done when" 4 and 5: a peer with another uid is refused; 200 concurrent clients,
//! each connecting per request and signing for 3 s, see zero failures.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use common::cmd::{require_tool, running_as_root};
use common::{gen_key, run, tempdir, tool, Agent, KeyKind};
use secretivex_proto::{frame, Request, Response, SignRequest};

/// The group to drop to with `nobody`: `nogroup` where it exists, else nobody's own group.
fn nobody_group() -> String {
    let out = run(tool("getent").args(["group", "nogroup"]));
    if out.success() {
        return "nogroup".into();
    }
    let out = run(tool("id").args(["-g", "nobody"]));
    out.assert_ok();
    out.stdout.trim().to_string()
}

#[test]
fn peer_with_another_uid_is_refused() {
    assert!(
        running_as_root(),
        "peer_with_another_uid_is_refused must run as root: it runs ssh-add as `nobody` via \
         setpriv (CI runs the suite as root)"
    );
    require_tool("setpriv");
    let dir = tempdir();
    let key = gen_key(dir.path(), KeyKind::Ed25519, "id");
    let agent = Agent::start(dir.path());
    agent.add(&key.private);

    // Open the file-system path so the kernel lets `nobody` connect: what must stop it is the
    // agent's peer-credential check, not permissions.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod dir");
    std::fs::set_permissions(agent.sock(), std::fs::Permissions::from_mode(0o666))
        .expect("chmod socket");

    let group = nobody_group();
    let as_nobody = |args: &[&str]| {
        run(agent
            .cmd("setpriv")
            .args([
                "--reuid=nobody",
                &format!("--regid={group}"),
                "--clear-groups",
            ])
            .args(args))
    };
    // Control: nobody can reach the socket (connect succeeds), so a refusal is the agent's.
    let probe = as_nobody(&[
        "sh",
        "-c",
        "id -un; test -w \"$SSH_AUTH_SOCK\" && echo socket-writable",
    ]);
    probe.assert_ok();
    assert!(
        probe.stdout.contains("nobody") && probe.stdout.contains("socket-writable"),
        "{probe}"
    );

    let out = as_nobody(&["ssh-add", "-l"]);
    assert!(
        !out.success(),
        "nobody listed the agent's keys: {out}\n{}",
        agent.output()
    );
    assert!(!out.stdout.contains(&key.fingerprint()), "{out}");
    assert!(
        !out.stderr.contains("Permission denied"),
        "nobody could not even connect, so the test proves nothing: {out}"
    );

    // The owner is still served.
    let listed = agent.list();
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert!(listed[0].contains(&key.fingerprint()));
}

const CLIENTS: usize = 200;
const RUN_FOR: Duration = Duration::from_secs(3);
/// Every client verifies its first signature and then one in `VERIFY_EVERY`.
const VERIFY_EVERY: u64 = 25;

/// One sign request on a fresh connection; returns the signature blob.
fn sign_once(sock: &Path, request: &[u8]) -> Result<Vec<u8>, String> {
    let mut s = UnixStream::connect(sock).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| format!("timeout: {e}"))?;
    s.write_all(request).map_err(|e| format!("write: {e}"))?;
    let mut header = [0u8; 4];
    s.read_exact(&mut header)
        .map_err(|e| format!("read header: {e}"))?;
    let len = frame::body_len(header).map_err(|e| format!("reply header: {e}"))?;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)
        .map_err(|e| format!("read body: {e}"))?;
    match Response::decode(&body).map_err(|e| format!("decode: {e}"))? {
        Response::SignResponse(sig) => Ok(sig),
        other => Err(format!("unexpected reply {other:?}")),
    }
}

#[test]
fn two_hundred_concurrent_clients_signing_see_zero_failures() {
    let dir = tempdir();
    let ed = gen_key(dir.path(), KeyKind::Ed25519, "id_ed");
    let ec = gen_key(dir.path(), KeyKind::Ecdsa256, "id_ec");
    let agent = Agent::start(dir.path());
    agent.add(&ed.private);
    agent.add(&ec.private);
    let blobs = [ed.public_blob(), ec.public_blob()];

    let ops = Arc::new(AtomicU64::new(0));
    let verified = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let first_errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let start = Arc::new(Barrier::new(CLIENTS));
    let sock = agent.sock().to_path_buf();

    let handles: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let key_blob = blobs[i % blobs.len()].clone();
            let data = format!("client {i}: data to sign").into_bytes();
            let mut request = Vec::new();
            Request::Sign(SignRequest {
                key_blob: key_blob.clone(),
                data: data.clone(),
                flags: 0,
            })
            .encode_frame(&mut request);
            let (ops, verified, failures, first_errors, start, sock) = (
                Arc::clone(&ops),
                Arc::clone(&verified),
                Arc::clone(&failures),
                Arc::clone(&first_errors),
                Arc::clone(&start),
                sock.clone(),
            );
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    start.wait();
                    let stop_at = Instant::now() + RUN_FOR;
                    let mut mine = 0u64;
                    while Instant::now() < stop_at {
                        let result = sign_once(&sock, &request).and_then(|sig| {
                            if mine.checked_rem(VERIFY_EVERY) == Some(0) {
                                secretivex_keys::verify_signature(&key_blob, &data, &sig)
                                    .map_err(|e| format!("bad signature: {e}"))?;
                                verified.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(())
                        });
                        match result {
                            Ok(()) => {
                                mine += 1;
                                ops.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                failures.fetch_add(1, Ordering::Relaxed);
                                if let Ok(mut errs) = first_errors.lock() {
                                    if errs.len() < 10 {
                                        errs.push(format!("client {i}: {e}"));
                                    }
                                }
                            }
                        }
                    }
                })
                .expect("spawn client thread")
        })
        .collect();
    for h in handles {
        h.join().expect("client thread panicked");
    }

    let (ops, verified, failures) = (
        ops.load(Ordering::Relaxed),
        verified.load(Ordering::Relaxed),
        failures.load(Ordering::Relaxed),
    );
    eprintln!("{CLIENTS} clients: {ops} signatures, {verified} verified, {failures} failures");
    assert_eq!(
        failures,
        0,
        "failures: {:#?}\n{}",
        first_errors.lock().map(|e| e.clone()).unwrap_or_default(),
        agent.output()
    );
    assert!(ops > 0, "no signature at all");
    assert!(
        verified >= CLIENTS as u64,
        "every client verifies at least its first signature: {verified}"
    );
    // The agent is still healthy afterwards.
    assert_eq!(agent.list().len(), 2);
}
