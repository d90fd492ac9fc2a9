//! Issue 7, done-when 1: the real `tracehoundd` with `fsync = "every"` is SIGKILLed in the
//! middle of heavy quarantining from several clients (unary calls and batch streams),
//! restarted on the same ledger directory, and then:
//!
//! * the ledger re-reads clean (framing, v1's chain from genesis, the Merkle tree);
//! * for every acknowledged intercept — a reply that reported its records durable —
//!   the entry it named is in the restarted log with the chain hash the reply carried,
//!   proved by an inclusion proof checked against the signed checkpoint (a chain hash
//!   commits to every record before it, so the whole acknowledged prefix is there);
//! * the restarted daemon continues the chain and the tree: new entries follow, and a
//!   consistency proof shows the log before the restart is a prefix of the log after it.
//!
//! A SIGKILL leaves the page cache alone, so this shows what the daemon acknowledges is
//! written and recovered, and that a kill at any moment leaves a log that reopens; power
//! loss is the fsync's job, which the ledger crate's tests and the policy cover.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tracehound_ledger::{verify_consistency_bundle, verify_inclusion_bundle, CheckpointVerifier};
use tracehound_rpc::pb;
use tracehound_rpc::pb::tracehound_client::TracehoundClient;

type Client = TracehoundClient<tonic::transport::Channel>;

const UNARY_CLIENTS: usize = 3;
const BATCH_CLIENTS: usize = 2;
const BATCH: usize = 32;
/// Acknowledged quarantining intercepts before the kill.
const KILL_AFTER: usize = 600;

/// Kills the daemon if the test fails half-way.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn write_config(dir: &Path) -> (PathBuf, PathBuf) {
    let socket = dir.join("run").join("d.sock");
    let file = dir.join("tracehoundd.toml");
    // A small quarantine: every new piece of evidence evicts one, so every quarantining
    // intercept adds an audit record.
    let text = format!(
        "[listen]\nsocket = {:?}\n[reload]\nwatch = false\n[quarantine]\nmax_count = 4\n\
         [ledger]\ndir = {:?}\nfsync = \"every\"\ncheckpoint_interval_ms = 100\n\
         max_segment_bytes = 65536\n",
        socket.display().to_string(),
        dir.join("ledger").display().to_string()
    );
    std::fs::write(&file, text).unwrap();
    (file, socket)
}

fn spawn(config: &Path, log: &Path) -> Daemon {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Daemon(
        Command::new(env!("CARGO_BIN_EXE_tracehoundd"))
            .arg("--config")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("tracehoundd starts"),
    )
}

/// Connects once the daemon answers (bounded retries, not a timing assertion).
async fn connect(socket: &Path, daemon: &mut Daemon) -> Client {
    let target = format!("unix:{}", socket.display());
    for _ in 0..600 {
        if let Ok(Some(status)) = daemon.0.try_wait() {
            panic!("tracehoundd exited at start: {status}");
        }
        if let Ok(mut c) = tracehound_rpc::connect(&target).await {
            if c.stats(pb::StatsRequest { top: 1 }).await.is_ok() {
                return c;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("tracehoundd never answered on {target}");
}

fn threat(client: usize, n: u64, run: &str) -> pb::InterceptRequest {
    pb::InterceptRequest {
        source: format!("{run}-{client}-{n}"),
        payload_json: format!("{{\"run\":\"{run}\",\"client\":{client},\"n\":{n}}}"),
        threat: Some(pb::Threat {
            category: "injection".into(),
            severity: "high".into(),
        }),
        sequence: n,
        ..Default::default()
    }
}

/// What the clients saw.
#[derive(Default)]
struct Seen {
    /// `(audit_durable_size, audit_durable_head)` of every acknowledged reply.
    acks: Mutex<Vec<(u64, String)>>,
    acked: AtomicUsize,
    /// Quarantining replies that reported the ledger failed (must stay 0).
    ledger_failures: AtomicUsize,
}

impl Seen {
    fn record(&self, r: &pb::InterceptReply) {
        if r.error_code == tracehound_daemon::audit_log::LEDGER_FAILED {
            self.ledger_failures.fetch_add(1, Ordering::Relaxed);
        }
        if r.status() == pb::Status::Quarantined && r.audit_durable_size > 0 {
            self.acks
                .lock()
                .push((r.audit_durable_size, r.audit_durable_head.clone()));
            self.acked.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Quarantines until the daemon goes away.
async fn unary_client(mut c: Client, id: usize, seen: Arc<Seen>) {
    for n in 0.. {
        match c.intercept(threat(id, n, "a")).await {
            Ok(r) => seen.record(&r.into_inner()),
            Err(_) => return,
        }
    }
}

/// Quarantines in batch streams of `BATCH` until the daemon goes away.
async fn batch_client(mut c: Client, id: usize, seen: Arc<Seen>) {
    for round in 0u64.. {
        let reqs: Vec<_> = (0..BATCH as u64)
            .map(|i| threat(id, round * BATCH as u64 + i, "b"))
            .collect();
        let Ok(replies) = c.intercept_batch(tokio_stream::iter(reqs)).await else {
            return;
        };
        let mut replies = replies.into_inner();
        loop {
            match replies.message().await {
                Ok(Some(r)) => seen.record(&r),
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_append_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let (config, socket) = write_config(dir.path());
    let log = dir.path().join("daemon.log");

    // Run 1: heavy quarantining from several clients, then SIGKILL.
    let mut daemon = spawn(&config, &log);
    connect(&socket, &mut daemon).await;
    let seen = Arc::new(Seen::default());
    let mut tasks = Vec::new();
    for id in 0..UNARY_CLIENTS + BATCH_CLIENTS {
        let c = connect(&socket, &mut daemon).await;
        let seen = Arc::clone(&seen);
        tasks.push(if id < UNARY_CLIENTS {
            tokio::spawn(unary_client(c, id, seen))
        } else {
            tokio::spawn(batch_client(c, id, seen))
        });
    }
    let mut polls = 0;
    while seen.acked.load(Ordering::Relaxed) < KILL_AFTER {
        polls += 1;
        assert!(
            polls < 6000,
            "only {} acknowledged intercepts; daemon log: {}",
            seen.acked.load(Ordering::Relaxed),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    daemon.0.kill().expect("SIGKILL"); // std's kill is SIGKILL
    let status = daemon.0.wait().unwrap();
    assert!(!status.success(), "the daemon was killed, not stopped");
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(seen.ledger_failures.load(Ordering::Relaxed), 0);
    let acks = std::mem::take(&mut *seen.acks.lock());
    assert!(acks.len() >= KILL_AFTER);
    let max_acked = acks.iter().map(|(size, _)| *size).max().unwrap();

    // Run 2 on the same ledger directory.
    let mut daemon = spawn(&config, &log);
    let mut c = connect(&socket, &mut daemon).await;
    let verified = c
        .verify_chain(pb::VerifyChainRequest {})
        .await
        .unwrap()
        .into_inner()
        .ledger
        .expect("ledger verification");
    assert!(verified.ok, "ledger does not verify: {}", verified.error);
    assert!(
        verified.entries >= max_acked,
        "{} entries after the restart, {max_acked} acknowledged before",
        verified.entries
    );
    eprintln!(
        "{} acknowledged intercepts (largest durable size {max_acked}); {} entries after the \
         restart",
        acks.len(),
        verified.entries
    );
    let checkpoint = c
        .audit_checkpoint(pb::AuditCheckpointRequest {})
        .await
        .unwrap()
        .into_inner();
    let verifier = CheckpointVerifier::from_verifier_key(&checkpoint.verifier_key).unwrap();
    let cp = verifier.verify(&checkpoint.checkpoint).unwrap();
    assert_eq!(
        cp.size, verified.entries,
        "start-up checkpoint covers the log"
    );
    assert_eq!(hex::encode(cp.root), verified.root_hash);

    // Every acknowledged reply's entry is there, with the hash it was acknowledged with.
    let mut distinct = acks.clone();
    distinct.sort();
    distinct.dedup();
    for (size, head) in &distinct {
        let index = size - 1;
        let proof = c
            .audit_prove(pb::AuditProveRequest {
                index,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let v = verify_inclusion_bundle(&proof.inclusion_bundle, Some(&verifier))
            .unwrap_or_else(|e| panic!("entry {index}: {e}"));
        assert!(v.checkpoint_verified);
        assert_eq!(v.index, index);
        assert_eq!(&v.record.hash.to_hex(), head, "entry {index} changed");
    }

    // The restarted daemon continues the chain and the tree.
    let before = verified.entries;
    let mut acked_after = 0;
    for n in 0..40 {
        let r = c
            .intercept(threat(9, n, "after"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status(), pb::Status::Quarantined);
        if r.audit_durable_size > before {
            acked_after += 1;
        }
    }
    assert!(acked_after >= 30, "{acked_after} new entries acknowledged");
    let again = c
        .verify_chain(pb::VerifyChainRequest {})
        .await
        .unwrap()
        .into_inner()
        .ledger
        .unwrap();
    assert!(again.ok, "{}", again.error);
    assert!(again.entries >= before + 30);
    let proof = c
        .audit_prove(pb::AuditProveRequest {
            index: 0,
            consistency: true,
            first_size: before,
            second_size: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let consistency = verify_consistency_bundle(&proof.consistency_bundle).unwrap();
    assert_eq!(consistency.first_root, verified.root_hash);
    assert!(consistency.second_size >= before + 30);
}
