//! `tracehound audit prove|verify-proof|checkpoint` against a real in-process daemon with
//! a ledger, and `verify-proof` offline on altered and malformed bundles: every failure
//! is exit 1 with a message, never a panic (exit 101).

mod common;

use std::path::Path;

use common::*;
use serde_json::json;
use tracehound_daemon::config::{LedgerSection, QuarantineSection};
use tracehound_daemon::{Daemon, DaemonConfig, RunningDaemon};
use tracehound_ledger::{verify_inclusion_bundle, CheckpointVerifier};

fn start_with_ledger(rt: &tokio::runtime::Runtime, socket: &Path, ledger: &Path) -> RunningDaemon {
    let mut config = DaemonConfig::default();
    config.listen.socket = Some(socket.to_path_buf());
    config.reload.watch = false;
    // One piece of evidence at a time: each new one evicts the last (an audit record).
    config.quarantine = QuarantineSection {
        max_count: 1,
        ..QuarantineSection::default()
    };
    config.ledger = Some(LedgerSection {
        dir: Some(ledger.to_path_buf()),
        ..LedgerSection::default()
    });
    rt.block_on(Daemon::start(config, None))
        .expect("daemon starts")
}

/// Alphanumeric positions of `text`: changing one of them changes a value, a key or a
/// signature (whitespace and punctuation could be reformatted without meaning anything).
fn meaningful_positions(text: &str) -> Vec<usize> {
    text.bytes()
        .enumerate()
        .filter(|(_, b)| b.is_ascii_alphanumeric())
        .map(|(i, _)| i)
        .collect()
}

fn altered(text: &str, at: usize) -> String {
    let mut bytes = text.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    String::from_utf8(bytes).unwrap()
}

#[test]
fn prove_checkpoint_and_verify_offline() {
    let rt = runtime();
    let (dir, socket) = socket_dir();
    let daemon = start_with_ledger(&rt, &socket, &dir.path().join("ledger"));
    let sock = socket.to_str().unwrap();
    let scents = (0..6)
        .map(|i| {
            scent(
                &format!("s{i}"),
                &json!({"n": i}),
                Some(("malware", "critical")),
            )
        })
        .collect();
    let replies = intercept_all(&rt, &socket, scents);
    // Under fsync = "every", replies after the first carry the durable size (one eviction
    // each) and the head hash.
    let sizes: Vec<u64> = replies.iter().map(|r| r.audit_durable_size).collect();
    assert_eq!(sizes, vec![0, 1, 2, 3, 4, 5]);

    // A checkpoint: the daemon signs at start, then every 10 s by default, and at
    // shutdown; its key verifies it.
    let (o, cp) = json(&["--socket", sock, "audit", "checkpoint", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let vkey = cp["verifier_key"].as_str().unwrap().to_owned();
    let verifier = CheckpointVerifier::from_verifier_key(&vkey).unwrap();
    let note = verifier.verify(cp["checkpoint"].as_str().unwrap()).unwrap();
    assert_eq!(note.size, num(&cp, &["size"]));

    // A proof of entry 3, kept as a file and checked offline with the key.
    let o = tracehound(&["--socket", sock, "audit", "prove", "3", "--json"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bundle = stdout(&o);
    let v = verify_inclusion_bundle(&bundle, Some(&verifier)).unwrap();
    assert_eq!((v.index, v.tree_size), (3, 5));
    assert_eq!(v.record.hash.to_hex(), replies[4].audit_durable_head);
    let file = dir.path().join("proof.json");
    std::fs::write(&file, &bundle).unwrap();
    let f = file.to_str().unwrap();
    let ok = tracehound(&["audit", "verify-proof", f, "--key", &vkey], &[]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(stdout(&ok).starts_with("OK: entry 3 is in the log of 5 entries"));
    let key_file = dir.path().join("vkey");
    std::fs::write(&key_file, format!("{vkey}\n")).unwrap();
    let ok = tracehound(
        &[
            "audit",
            "verify-proof",
            f,
            "--key-file",
            key_file.to_str().unwrap(),
        ],
        &[],
    );
    assert!(ok.status.success(), "{}", stderr(&ok));

    // The summary form verifies what the daemon sent.
    let o = tracehound(&["--socket", sock, "audit", "prove", "2"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("entry 2 of 5 (evacuation")
            || stdout(&o).starts_with("entry 2 of 5 (neutralization")
    );

    // Past the acknowledged entries: an error naming the size, exit 1.
    let o = tracehound(&["--socket", sock, "audit", "prove", "99"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("the log has 5"), "{}", stderr(&o));

    // Every alphanumeric byte altered: the library refuses each one...
    for at in meaningful_positions(&bundle) {
        assert!(
            verify_inclusion_bundle(&altered(&bundle, at), Some(&verifier)).is_err(),
            "altering byte {at} went unnoticed"
        );
    }
    // ...and the CLI exits 1 (not 101) for alterations in each part of the bundle.
    for field in [
        "\"entry\"",
        "\"leaf_hash\"",
        "\"inclusion_path\"",
        "\"root_hash\"",
        "\"checkpoint\"",
    ] {
        let start = bundle.find(field).unwrap() + field.len();
        let at = meaningful_positions(&bundle)
            .into_iter()
            .find(|&i| i > start + 3)
            .unwrap();
        std::fs::write(&file, altered(&bundle, at)).unwrap();
        let bad = tracehound(&["audit", "verify-proof", f, "--key", &vkey], &[]);
        assert_eq!(bad.status.code(), Some(1), "{field}: {}", stderr(&bad));
        assert!(
            stderr(&bad).contains("does not verify"),
            "{field}: {}",
            stderr(&bad)
        );
    }
    // `verify-chain` asks the daemon to re-read the ledger; `stats` shows its counters.
    let (o, v) = json(&["--socket", sock, "verify-chain", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(v["ledger"]["ok"], true);
    assert_eq!(num(&v, &["ledger", "entries"]), 5);
    let (o, s) = json(&["--socket", sock, "stats", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(num(&s, &["ledger", "acknowledged"]), 5);
    assert_eq!(s["ledger"]["fsync"], "every");

    // A different key: the checkpoint is not signed by it.
    let other = tracehound_ledger::CheckpointSigner::from_seed("tracehoundd", &[7; 32])
        .unwrap()
        .verifier()
        .to_verifier_key();
    std::fs::write(&file, &bundle).unwrap();
    let bad = tracehound(&["audit", "verify-proof", f, "--key", &other], &[]);
    assert_eq!(bad.status.code(), Some(1), "{}", stderr(&bad));
    drop(daemon);
}

#[test]
fn verify_proof_refuses_garbage_with_exit_1() {
    let (dir, _) = socket_dir();
    let file = dir.path().join("bundle.json");
    let f = file.to_str().unwrap();
    let key = tracehound_ledger::CheckpointSigner::from_seed("k", &[1; 32])
        .unwrap()
        .verifier()
        .to_verifier_key();
    let cases: [&[u8]; 7] = [
        b"",
        b"{",
        b"\xff\xfe",
        b"[]",
        b"{\"format\":\"tracehound-inclusion-v1\"}",
        b"{\"format\":\"tracehound-inclusion-v1\",\"index\":18446744073709551615,\"tree_size\":0,\"entry\":\"\",\"leaf_hash\":\"\",\"inclusion_path\":[],\"root_hash\":\"\"}",
        b"{\"format\":\"tracehound-consistency-v1\",\"first_size\":5,\"first_root\":\"00\",\"second_size\":2,\"second_root\":\"00\",\"consistency_path\":[]}",
    ];
    for case in cases {
        std::fs::write(&file, case).unwrap();
        let o = tracehound(&["audit", "verify-proof", f, "--key", &key], &[]);
        assert_eq!(o.status.code(), Some(1), "{case:?}: {}", stderr(&o));
        assert!(stderr(&o).starts_with("tracehound: error:"), "{case:?}");
    }
    // A malformed key and a missing key are refusals too.
    std::fs::write(&file, b"{\"format\":\"tracehound-inclusion-v1\"}").unwrap();
    for args in [
        vec!["audit", "verify-proof", f, "--key", "nope"],
        vec!["audit", "verify-proof", f],
    ] {
        let o = tracehound(&args, &[]);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
    }
    let o = tracehound(
        &[
            "audit",
            "verify-proof",
            "/nonexistent/bundle.json",
            "--key",
            &key,
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
}
