//! Erasure (GDPR) end to end: a real daemon with a small quarantine (evictions go to local
//! cold storage), a key vault and a ledger in a temp dir. Two sources send threats with
//! distinctive random payloads; one source is erased; then every file under the daemon's
//! directories is scanned for that source's payload bytes (canonical and gzip forms),
//! its secret, its scent ids and its address. The other source's evidence must still be
//! retrievable and verified, the erased evidence must read as erased, and the audit chain
//! and the ledger must still verify.

mod cold_support;

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};

use cold_support::{client, start, wait_stats, Client, Running};
use sha2::{Digest, Sha256};
use tracehound_core::canonical::canonical_json_from_text;
use tracehound_core::codec::GzipCodec;
use tracehound_rpc::pb;

const A: &str = "198.51.100.23";
const B: &str = "203.0.113.77";

/// One intercepted threat and every form its payload can take on disk.
struct Sent {
    source: &'static str,
    scent_id: String,
    secret: String,
    canonical: Vec<u8>,
    gzip: Vec<u8>,
    signature: String,
}

/// 32 random bytes as hex (std's randomly keyed hasher: no extra dependency).
fn random_hex() -> String {
    (0..4)
        .map(|i: u64| format!("{:016x}", RandomState::new().hash_one(i)))
        .collect()
}

async fn send(c: &mut Client, source: &'static str, n: u64) -> Sent {
    let secret = random_hex();
    let scent_id = format!("scent-{}-{n}", random_hex().get(..12).unwrap_or("x"));
    let payload = format!(r#"{{"n":{n},"secret":"{secret}","who":"{source}"}}"#);
    let canonical = canonical_json_from_text(payload.as_bytes())
        .unwrap()
        .into_bytes();
    let reply = c
        .intercept(pb::InterceptRequest {
            id: scent_id.clone(),
            source: source.into(),
            payload_json: payload,
            threat: Some(pb::Threat {
                category: "injection".into(),
                severity: "high".into(),
            }),
            sequence: n,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.status(), pb::Status::Quarantined, "{reply:?}");
    assert_eq!(reply.hash, hex::encode(Sha256::digest(&canonical)));
    Sent {
        source,
        scent_id,
        secret,
        gzip: GzipCodec::new().encode(&canonical).unwrap(),
        canonical,
        signature: reply.signature,
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else if p.is_file() {
            out.push(p);
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// The files under `dir` that contain `needle`.
fn holding(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    files_under(dir, &mut files);
    files
        .into_iter()
        .filter(|f| std::fs::read(f).is_ok_and(|b| contains(&b, needle)))
        .collect()
}

/// Every trace of `s` still stored under `dir`, by kind.
fn traces(dir: &Path, s: &Sent) -> Vec<(String, Vec<PathBuf>)> {
    [
        ("canonical payload", s.canonical.as_slice()),
        ("gzip payload", s.gzip.as_slice()),
        ("secret", s.secret.as_bytes()),
        ("scent id", s.scent_id.as_bytes()),
        ("source address", s.source.as_bytes()),
    ]
    .into_iter()
    .map(|(what, needle)| (what.to_owned(), holding(dir, needle)))
    .filter(|(_, files)| !files.is_empty())
    .collect()
}

fn config(dir: &Path, vault: bool) -> String {
    let mut toml = format!(
        "[quarantine]\nmax_count = 2\n[cold.local]\npath = \"{}\"\n[ledger]\ndir = \"{}\"\n",
        dir.join("cold").display(),
        dir.join("ledger").display()
    );
    if vault {
        toml.push_str(&format!(
            "[erasure]\nvault_dir = \"{}\"\n",
            dir.join("vault").display()
        ));
    }
    toml
}

/// Three threats from each source, interleaved; with two quarantine slots, four are
/// evicted to cold storage. Returns them once cold storage is idle.
async fn populate(c: &mut Client) -> Vec<Sent> {
    let mut sent = Vec::new();
    for n in 0..6 {
        let source = if n % 2 == 0 { A } else { B };
        sent.push(send(c, source, n).await);
    }
    wait_stats(c, "4 objects written", |s| {
        s.cold
            .as_ref()
            .is_some_and(|c| c.objects_written == 4 && c.queued == 0)
    })
    .await;
    sent
}

async fn erase(c: &mut Client, target: pb::erase_request::Target) -> pb::EraseReply {
    c.erase(pb::EraseRequest {
        target: Some(target),
    })
    .await
    .unwrap()
    .into_inner()
}

async fn retrieve(c: &mut Client, sig: &str) -> Result<pb::ColdRetrieveReply, tonic::Status> {
    c.cold_retrieve(pb::ColdRetrieveRequest {
        signature: sig.to_owned(),
    })
    .await
    .map(|r| r.into_inner())
}

async fn assert_chain_and_ledger_verify(c: &mut Client) -> pb::VerifyChainReply {
    let v = c
        .verify_chain(pb::VerifyChainRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(v.ok, "{v:?}");
    let ledger = v.ledger.clone().unwrap();
    assert!(ledger.ok, "{ledger:?}");
    assert_eq!(ledger.entries, v.length, "the ledger holds every record");
    v
}

/// The in-quarantine one of `sent` (evictions take the oldest: the last two stay).
fn in_memory(sent: &[Sent]) -> &[Sent] {
    &sent[4..]
}

async fn erase_source_and_check(r: &Running, vault: bool) {
    let dir = r.dir.path();
    let mut c = client(r).await;
    let sent = populate(&mut c).await;
    let (a, b): (Vec<&Sent>, Vec<&Sent>) = sent.iter().partition(|s| s.source == A);
    // The scan can see what it looks for: before the erasure, A is on disk (its plaintext
    // objects, or its key files' metadata with the vault).
    let before: Vec<_> = a.iter().flat_map(|s| traces(dir, s)).collect();
    if vault {
        assert!(
            before.iter().any(|(w, _)| w == "source address"),
            "{before:?}"
        );
        assert!(
            !before.iter().any(|(w, _)| w.contains("payload")),
            "sealed: {before:?}"
        );
    } else {
        assert!(
            before.iter().any(|(w, _)| w == "gzip payload"),
            "{before:?}"
        );
    }
    // A copy of one of A's cold objects, as a backup or an object version would keep it.
    let evicted_a = a
        .iter()
        .find(|s| !in_memory(&sent).iter().any(|m| m.signature == s.signature))
        .unwrap();
    let object = object_path(&dir.join("cold"), &evicted_a.signature);
    let copy = std::fs::read(&object).unwrap();

    let reply = erase(&mut c, pb::erase_request::Target::Source(A.into())).await;
    let mut want: Vec<String> = a.iter().map(|s| s.signature.clone()).collect();
    want.sort();
    assert_eq!(reply.signatures, want, "{reply:?}");
    assert_eq!(
        (
            reply.quarantine_removed,
            reply.cold_deleted,
            reply.keys_destroyed
        ),
        (1, 2, if vault { 2 } else { 0 }),
        "{reply:?}"
    );
    assert!(reply.errors.is_empty(), "{reply:?}");
    assert!(reply.coverage_complete, "{reply:?}");
    assert_eq!(reply.audit_indexes.len(), 3);
    assert!(reply.ledger_durable, "{reply:?}");

    // Nothing of A is left in any file the daemon wrote.
    for s in &a {
        assert_eq!(traces(dir, s), Vec::new(), "traces of {}", s.signature);
    }
    // B is untouched: in memory, or in cold storage and verified.
    let mut b_cold = 0;
    for s in &b {
        let got = retrieve(&mut c, &s.signature).await.unwrap();
        if got.found {
            assert!(got.verified, "{got:?}");
            assert_eq!(got.size, s.canonical.len() as u64);
            b_cold += 1;
        }
        let held = c
            .inspect(pb::InspectRequest {
                signature: s.signature.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(held.found || got.found, "{} is gone", s.signature);
    }
    assert_eq!(b_cold, 2);
    for s in &a {
        let got = retrieve(&mut c, &s.signature).await.unwrap();
        assert!(!got.found, "{got:?}");
    }
    // The tables forgot A.
    let s = c
        .stats(pb::StatsRequest { top: 100 })
        .await
        .unwrap()
        .into_inner();
    assert!(
        s.top_sources.iter().all(|t| t.source != A),
        "{:?}",
        s.top_sources
    );
    assert!(s
        .recent_threats
        .iter()
        .all(|t| !want.contains(&t.signature)));
    let e = s.erasure.unwrap();
    assert_eq!((e.vault, e.erasures, e.signatures_erased), (vault, 1, 3));
    assert_eq!(e.vault_keys, if vault { 2 } else { 0 });

    let v = assert_chain_and_ledger_verify(&mut c).await;
    assert_eq!(v.length, 4 + 3, "4 evictions and 3 erasure records");

    // The surviving copy: sealed under a destroyed key, it reads as erased; a plaintext
    // copy (no vault) is of course still readable, which is why the vault exists.
    // (The store removed the emptied directories with the object.)
    std::fs::create_dir_all(object.parent().unwrap()).unwrap();
    std::fs::write(&object, &copy).unwrap();
    let got = retrieve(&mut c, &evicted_a.signature).await;
    if vault {
        let got = got.unwrap();
        assert!(got.found && got.erased && !got.verified, "{got:?}");
        assert!(
            got.corrupt_reason.is_empty(),
            "erased is not corrupt: {got:?}"
        );
    } else {
        assert!(got.unwrap().verified);
    }
    std::fs::remove_file(&object).unwrap();
}

/// The cold object file of `signature` (`.../{hash}.thcs`).
fn object_path(cold: &Path, signature: &str) -> PathBuf {
    let name = format!("{}.thcs", signature.split_once(':').unwrap().1);
    let mut files = Vec::new();
    files_under(cold, &mut files);
    files
        .into_iter()
        .find(|f| f.file_name().is_some_and(|n| n.to_string_lossy() == name))
        .expect("object file")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_by_scent_id_and_by_signature() {
    let dir = tempfile::tempdir().unwrap();
    let toml = config(dir.path(), true);
    let r = start(dir, &toml).await;
    let dir = r.dir.path();
    let mut c = client(&r).await;
    let sent = populate(&mut c).await;
    // By scent id: one evicted evidence (cold object and key) and one held in memory.
    for (s, in_cold) in [(&sent[0], true), (&sent[5], false)] {
        let reply = erase(
            &mut c,
            pb::erase_request::Target::ScentId(s.scent_id.clone()),
        )
        .await;
        assert_eq!(reply.signatures, vec![s.signature.clone()], "{reply:?}");
        let counts = (
            reply.quarantine_removed,
            reply.cold_deleted,
            reply.keys_destroyed,
        );
        assert_eq!(
            counts,
            if in_cold { (0, 1, 1) } else { (1, 0, 0) },
            "{reply:?}"
        );
        assert_eq!(
            traces(dir, s)
                .into_iter()
                .filter(|(w, _)| w != "source address")
                .count(),
            0
        );
    }
    // By signature: an evicted one.
    let s = &sent[1];
    let reply = erase(
        &mut c,
        pb::erase_request::Target::Signature(s.signature.clone()),
    )
    .await;
    assert_eq!(
        (reply.cold_deleted, reply.keys_destroyed),
        (1, 1),
        "{reply:?}"
    );
    assert_eq!(
        traces(dir, s)
            .into_iter()
            .filter(|(w, _)| w != "source address")
            .count(),
        0
    );
    assert!(!retrieve(&mut c, &s.signature).await.unwrap().found);
    // Erasing again finds nothing and records nothing.
    let again = erase(
        &mut c,
        pb::erase_request::Target::Signature(s.signature.clone()),
    )
    .await;
    assert!(
        again.signatures.is_empty() && again.audit_indexes.is_empty(),
        "{again:?}"
    );
    // Unknown selectors erase nothing; malformed ones are refused.
    let none = erase(
        &mut c,
        pb::erase_request::Target::ScentId("no-such-scent".into()),
    )
    .await;
    assert!(none.signatures.is_empty());
    let bad = c
        .erase(pb::EraseRequest {
            target: Some(pb::erase_request::Target::Signature("spam:../x".into())),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    let empty = c
        .erase(pb::EraseRequest { target: None })
        .await
        .unwrap_err();
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);
    // The others are intact.
    for s in [&sent[2], &sent[3]] {
        let got = retrieve(&mut c, &s.signature).await.unwrap();
        assert!(got.found && got.verified, "{got:?}");
    }
    let v = assert_chain_and_ledger_verify(&mut c).await;
    assert_eq!(v.length, 4 + 3);
    r.daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_source_removes_its_plaintext_cold_objects() {
    let dir = tempfile::tempdir().unwrap();
    let toml = config(dir.path(), false);
    let r = start(dir, &toml).await;
    erase_source_and_check(&r, false).await;
    r.daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_source_shreds_its_keys_and_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let toml = config(dir.path(), true);
    let r = start(dir, &toml).await;
    erase_source_and_check(&r, true).await;
    r.daemon.shutdown().await;
}

/// Pending notifications about the erased source (a webhook sink that cannot deliver, so
/// they wait for their retry) are purged; the other source's stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_notifications_of_an_erased_source_are_purged() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback refuses connections: every delivery waits for a retry.
    let toml = format!(
        "{}[[notify.sinks]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/hook\"\n\
         secret = \"s3cret\"\nmax_attempts = 100\nretry_base_ms = 600000\nretry_max_ms = 600000\n",
        config(dir.path(), true)
    );
    let r = start(dir, &toml).await;
    let mut c = client(&r).await;
    for n in 0..2 {
        send(&mut c, A, n).await;
    }
    send(&mut c, B, 2).await;
    let reply = erase(&mut c, pb::erase_request::Target::Source(A.into())).await;
    // Two per intercept (threat detected, evidence quarantined), nothing of B's.
    assert_eq!(reply.notifications_purged, 4, "{reply:?}");
    assert!(reply.coverage_complete, "{reply:?}");
    // B's pending notifications survived A's erasure: they are still there to purge.
    let reply_b = erase(&mut c, pb::erase_request::Target::Source(B.into())).await;
    assert_eq!(reply_b.notifications_purged, 2, "{reply_b:?}");
    assert_chain_and_ledger_verify(&mut c).await;
    r.daemon.shutdown().await;
}

/// After a restart the in-memory index is empty: a source erasure finds the source's cold
/// objects through the key vault's metadata, deletes them and shreds their keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_daemon_erases_a_source_through_the_vault() {
    let dir = tempfile::tempdir().unwrap();
    let toml = config(dir.path(), true);
    let r = start(dir, &toml).await;
    let mut c = client(&r).await;
    let sent = populate(&mut c).await;
    drop(c);
    let Running { daemon, dir, .. } = r;
    daemon.shutdown().await;

    let r = start(dir, &toml).await;
    let mut c = client(&r).await;
    let cold_a: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.source == A)
        .filter(|s| !in_memory(&sent).iter().any(|m| m.signature == s.signature))
        .collect();
    assert_eq!(cold_a.len(), 2);
    let reply = erase(&mut c, pb::erase_request::Target::Source(A.into())).await;
    let mut want: Vec<String> = cold_a.iter().map(|s| s.signature.clone()).collect();
    want.sort();
    assert_eq!(reply.signatures, want, "{reply:?}");
    assert_eq!(
        (reply.cold_deleted, reply.keys_destroyed),
        (2, 2),
        "{reply:?}"
    );
    assert!(
        reply.errors.is_empty() && reply.coverage_complete,
        "{reply:?}"
    );
    for s in &cold_a {
        assert_eq!(
            traces(r.dir.path(), s),
            Vec::new(),
            "traces of {}",
            s.signature
        );
        assert!(!retrieve(&mut c, &s.signature).await.unwrap().found);
    }
    for s in sent.iter().filter(|s| s.source == B) {
        if in_memory(&sent).iter().all(|m| m.signature != s.signature) {
            assert!(retrieve(&mut c, &s.signature).await.unwrap().verified);
        }
    }
    // The ledger spans both runs (the helper's one-run count does not apply).
    let v = c
        .verify_chain(pb::VerifyChainRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(v.ok && v.ledger.as_ref().is_some_and(|l| l.ok), "{v:?}");
    r.daemon.shutdown().await;
}

/// A scent erasure purges that scent's pending `threat.detected` record (it carries the
/// scent id but no signature) as well as its `evidence.quarantined` one; the other
/// scent's records stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_notifications_of_an_erased_scent_are_purged() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback refuses connections: every delivery waits for a retry. No
    // coalescing, so each event is one record.
    let toml = format!(
        "{}[notify.coalesce]\nwindow_ms = 0\n[[notify.sinks]]\nkind = \"webhook\"\n\
         url = \"http://127.0.0.1:1/hook\"\nsecret = \"s3cret\"\nmax_attempts = 100\n\
         retry_base_ms = 600000\nretry_max_ms = 600000\n",
        config(dir.path(), true)
    );
    let r = start(dir, &toml).await;
    let mut c = client(&r).await;
    let first = send(&mut c, A, 0).await;
    let second = send(&mut c, A, 1).await;
    // Every record has reached the sink (queued or awaiting its retry), so only the
    // notifier, not the emitter's queue, can purge them.
    wait_stats(&mut c, "4 records at the sink", |s| {
        s.notify_sinks
            .iter()
            .map(|k| k.queued + k.inflight)
            .sum::<u64>()
            == 4
    })
    .await;
    let reply = erase(
        &mut c,
        pb::erase_request::Target::ScentId(first.scent_id.clone()),
    )
    .await;
    assert_eq!(reply.signatures, vec![first.signature.clone()], "{reply:?}");
    // Its threat detected (by scent id) and its evidence quarantined (by signature).
    assert_eq!(reply.notifications_purged, 2, "{reply:?}");
    let again = erase(
        &mut c,
        pb::erase_request::Target::ScentId(second.scent_id.clone()),
    )
    .await;
    assert_eq!(again.notifications_purged, 2, "{again:?}");
    r.daemon.shutdown().await;
}

/// A vault key whose cold object was deleted behind the daemon's back is an orphan: the
/// next lifecycle run destroys it, and only it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lifecycle_run_destroys_orphan_keys() {
    let dir = tempfile::tempdir().unwrap();
    // A policy that moves nothing: the run only does its orphan pass.
    let toml = format!(
        "{}[lifecycle]\ninterval_ms = 3600000\n",
        config(dir.path(), true)
    );
    let r = start(dir, &toml).await;
    let mut c = client(&r).await;
    let sent = populate(&mut c).await;
    let vault_keys = |s: &pb::StatsReply| s.erasure.as_ref().map_or(0, |e| e.vault_keys);
    let stats = c
        .stats(pb::StatsRequest { top: 1 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(vault_keys(&stats), 4);
    let gone = &sent[0];
    std::fs::remove_file(object_path(&r.dir.path().join("cold"), &gone.signature)).unwrap();

    let run = c
        .run_lifecycle(pb::RunLifecycleRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(run.orphan_keys_destroyed, 1, "{run:?}");
    assert_eq!(run.failures, 0, "{run:?}");
    let stats = c
        .stats(pb::StatsRequest { top: 1 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(vault_keys(&stats), 3);
    assert_eq!(
        stats.lifecycle.as_ref().map(|l| l.orphan_keys_destroyed),
        Some(1)
    );
    // The keys of the objects still stored were kept: they still open and verify.
    for s in sent[1..4].iter() {
        let got = retrieve(&mut c, &s.signature).await.unwrap();
        assert!(got.found && got.verified, "{got:?}");
    }
    let again = c
        .run_lifecycle(pb::RunLifecycleRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.orphan_keys_destroyed, 0, "{again:?}");
    r.daemon.shutdown().await;
}
