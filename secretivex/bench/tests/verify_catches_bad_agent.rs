//! A fake agent that lists a real public key but answers every sign request with a
//! well-formed, wrong signature: `--verify` must count every sampled reply as a
//! verification failure and the run must fail; without `--verify` the bench cannot tell.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use secretivex_proto::{frame, Identity, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

/// Serves list and sign on `sock` until the test ends; counts sign requests.
fn spawn_fake_agent(sock: &Path, public_blob: Vec<u8>, signs: Arc<AtomicU64>) {
    let listener = UnixListener::bind(sock).unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(serve(stream, public_blob.clone(), Arc::clone(&signs)));
        }
    });
}

async fn serve(mut s: UnixStream, blob: Vec<u8>, signs: Arc<AtomicU64>) {
    loop {
        let mut header = [0u8; 4];
        if s.read_exact(&mut header).await.is_err() {
            return;
        }
        let len = frame::body_len(header).unwrap();
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).await.unwrap();
        let reply = match Request::decode(&body).unwrap() {
            Request::RequestIdentities => Response::Identities(vec![Identity {
                key_blob: blob.clone(),
                comment: "fake".into(),
            }]),
            Request::Sign(_) => {
                signs.fetch_add(1, Ordering::Relaxed);
                // Right algorithm and length, garbage bytes.
                let mut sig = Vec::new();
                for part in [&b"ssh-ed25519"[..], &[0x42; 64][..]] {
                    sig.extend_from_slice(&u32::try_from(part.len()).unwrap().to_be_bytes());
                    sig.extend_from_slice(part);
                }
                Response::SignResponse(sig)
            }
            _ => Response::Failure,
        };
        let mut out = Vec::new();
        reply.encode_frame(&mut out);
        if s.write_all(&out).await.is_err() {
            return;
        }
    }
}

async fn bench(dir: PathBuf, tag: &'static str, args: Vec<String>) -> common::BenchRun {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        common::run_bench(&dir, tag, &args)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_signatures_are_counted_and_fail_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let key = common::keygen(dir.path(), "ed", &["-t", "ed25519"]);
    let text = std::fs::read_to_string(&key).unwrap();
    let (pair, _) = secretivex_keys::KeyPair::from_openssh_file(&text, None).unwrap();
    let sock = dir.path().join("fake.sock");
    let signs = Arc::new(AtomicU64::new(0));
    spawn_fake_agent(&sock, pair.public_blob().to_vec(), Arc::clone(&signs));
    let sock = sock.to_str().unwrap().to_owned();

    let base = |extra: &[&str]| -> Vec<String> {
        ["--socket", &sock, "--requests", "40"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };

    // Without --verify the garbage passes as 40 successful signatures.
    let blind = bench(dir.path().to_owned(), "blind", base(&["--clients", "4"])).await;
    assert!(blind.output.status.success(), "{}", blind.describe());
    assert_eq!(blind.count("ops"), 40);
    assert_eq!(blind.count("verify_failures"), 0);

    // With every reply verified, all 40 are failures and the run exits 3.
    let checked = bench(
        dir.path().to_owned(),
        "checked",
        base(&["--clients", "4", "--verify", "--verify-every", "1"]),
    )
    .await;
    assert_eq!(
        checked.output.status.code(),
        Some(3),
        "{}",
        checked.describe()
    );
    assert_eq!(
        checked.count("verify_failures"),
        40,
        "{}",
        checked.describe()
    );
    assert_eq!(checked.count("failures"), 40);
    assert_eq!(checked.count("ops"), 0);
    assert_eq!(checked.count("verified"), 0);
    assert!(checked.json["errors"][0]
        .as_str()
        .unwrap()
        .contains("verification failed"));

    // Sampled: one client checks its 1st, 6th, 11th, … signature: 8 of 40.
    let sampled = bench(
        dir.path().to_owned(),
        "sampled",
        base(&["--verify", "--verify-every", "5", "--clients", "1"]),
    )
    .await;
    assert_eq!(sampled.output.status.code(), Some(3));
    assert_eq!(
        sampled.count("verify_failures"),
        8,
        "{}",
        sampled.describe()
    );
    assert_eq!(sampled.count("ops"), 32);
    assert_eq!(signs.load(Ordering::Relaxed), 120);
}
