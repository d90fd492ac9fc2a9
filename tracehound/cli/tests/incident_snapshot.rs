//! `tracehound incident record|verify` and `tracehound snapshot export|verify` against a
//! real in-process daemon with a ledger, through the real binary: a record verifies
//! offline (exit 0), each altered field is exit 1 with a reason (never a panic), and two
//! exports of the same state are byte-identical while a state change changes the hash.

mod common;

use std::path::Path;

use common::*;
use serde_json::json;
use tracehound_daemon::config::{LedgerSection, QuarantineSection};
use tracehound_daemon::{Daemon, DaemonConfig, RunningDaemon};

fn start_with_ledger(rt: &tokio::runtime::Runtime, socket: &Path, ledger: &Path) -> RunningDaemon {
    let mut config = DaemonConfig::default();
    config.listen.socket = Some(socket.to_path_buf());
    config.reload.watch = false;
    // One piece of evidence at a time: each new one evicts the last, so the ledger holds
    // eviction records before the incident and its inclusion path is not empty.
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

/// Replaces the first occurrence of `from` after `anchor` with `to`.
fn replace_after(text: &str, anchor: &str, from: &str, to: &str) -> String {
    let start = text.find(anchor).unwrap_or_else(|| panic!("no {anchor}")) + anchor.len();
    let at = start
        + text[start..]
            .find(from)
            .unwrap_or_else(|| panic!("no {from}"));
    format!("{}{to}{}", &text[..at], &text[at + from.len()..])
}

/// Flips the hex or base64 character at `at` to another one of the same alphabet.
fn flip_char(text: &str, at: usize) -> String {
    let mut bytes = text.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    String::from_utf8(bytes).unwrap()
}

#[test]
fn incident_record_verifies_offline_and_every_alteration_fails() {
    let rt = runtime();
    let (dir, socket) = socket_dir();
    let daemon = start_with_ledger(&rt, &socket, &dir.path().join("ledger"));
    let sock = socket.to_str().unwrap();
    let scents = (0..4)
        .map(|i| {
            scent(
                &format!("s{i}"),
                &json!({"n": i}),
                Some(("injection", "high")),
            )
        })
        .collect();
    let replies = intercept_all(&rt, &socket, scents);
    let held = replies.last().unwrap();
    assert_eq!(held.status(), tracehound_rpc::pb::Status::Quarantined);
    let signature = held.signature.clone();

    let file = dir.path().join("incident.json");
    let f = file.to_str().unwrap();
    let o = tracehound(
        &[
            "--socket", sock, "incident", "record", &signature, "--out", f,
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("incident recorded: audit entry 3 of 4"),
        "{}",
        stdout(&o)
    );
    let record = std::fs::read_to_string(&file).unwrap();
    assert!(!record.contains("\"n\":3"), "no payload in the record");

    // The key comes out of band; here from `audit checkpoint`, which also shows the
    // checkpoint the incident forced.
    let (o, cp) = json(&["--socket", sock, "audit", "checkpoint", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(num(&cp, &["size"]), 4);
    let vkey = cp["verifier_key"].as_str().unwrap().to_owned();

    let ok = tracehound(&["incident", "verify", f, "--key", &vkey], &[]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(
        stdout(&ok).starts_with(&format!("OK: incident for {signature} (high injection")),
        "{}",
        stdout(&ok)
    );
    let key_file = dir.path().join("vkey");
    std::fs::write(&key_file, format!("{vkey}\n")).unwrap();
    let ok = tracehound(
        &[
            "incident",
            "verify",
            f,
            "--key-file",
            key_file.to_str().unwrap(),
        ],
        &[],
    );
    assert!(ok.status.success(), "{}", stderr(&ok));

    // Without a daemon (offline): the same verdict from standard input is not needed;
    // stop the daemon now so nothing below can reach it.
    rt.block_on(daemon.shutdown());

    let hash = signature.split_once(':').unwrap().1;
    let sig_line = record.find("\u{2014} ").expect("a signature line");
    let mut altered = vec![
        (
            "severity",
            record.replace("\"severity\":\"high\"", "\"severity\":\"critical\""),
        ),
        (
            "hash",
            replace_after(&record, "\"hash\":\"", hash, &flip_char(hash, 0)),
        ),
        ("index", record.replace("\"index\":3", "\"index\":2")),
        ("size", replace_after(&record, "\"size\":", "", "1")),
        (
            "proof byte",
            flip_char(&record, record.find("\"inclusion_path\":[\"").unwrap() + 19),
        ),
        (
            "checkpoint signature",
            flip_char(&record, sig_line + "\u{2014} tracehoundd ".len() + 10),
        ),
        (
            "recorded time",
            replace_after(&record, "\"recorded_ms\":", "", "9"),
        ),
    ];
    altered.push(("truncated", record[..record.len() / 2].to_owned()));
    for (what, text) in altered {
        assert_ne!(
            text, record,
            "{what}: the alteration must change the record"
        );
        std::fs::write(&file, &text).unwrap();
        let bad = tracehound(&["incident", "verify", f, "--key", &vkey], &[]);
        assert_eq!(bad.status.code(), Some(1), "{what}: {}", stderr(&bad));
        assert!(
            stderr(&bad).contains("does not verify"),
            "{what}: {}",
            stderr(&bad)
        );
    }

    // Another key, a malformed key, no key, garbage input: exit 1, never a panic.
    std::fs::write(&file, &record).unwrap();
    let other = tracehound_ledger::CheckpointSigner::from_seed("tracehoundd", &[7; 32])
        .unwrap()
        .verifier()
        .to_verifier_key();
    for args in [
        vec!["incident", "verify", f, "--key", &other],
        vec!["incident", "verify", f, "--key", "nope"],
        vec!["incident", "verify", f],
    ] {
        let o = tracehound(&args, &[]);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
    }
    for garbage in [
        &b""[..],
        b"{",
        b"\xff\xfe",
        b"[]",
        b"{\"format\":\"tracehound-incident-v1\"}",
    ] {
        std::fs::write(&file, garbage).unwrap();
        let o = tracehound(&["incident", "verify", f, "--key", &vkey], &[]);
        assert_eq!(o.status.code(), Some(1), "{garbage:?}: {}", stderr(&o));
        assert!(stderr(&o).starts_with("tracehound: error:"), "{garbage:?}");
    }
}

#[test]
fn incident_record_refuses_unknown_evidence() {
    let rt = runtime();
    let (dir, socket) = socket_dir();
    let daemon = start_with_ledger(&rt, &socket, &dir.path().join("ledger"));
    let sock = socket.to_str().unwrap();
    let unknown = format!("injection:{}", "ab".repeat(32));
    let o = tracehound(&["--socket", sock, "incident", "record", &unknown], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("no evidence"), "{}", stderr(&o));
    let o = tracehound(
        &["--socket", sock, "incident", "record", "not-a-signature"],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    rt.block_on(daemon.shutdown());
}

#[test]
fn snapshot_export_is_byte_identical_for_the_same_state() {
    let rt = runtime();
    let (dir, socket) = socket_dir();
    let daemon = start_with_ledger(&rt, &socket, &dir.path().join("ledger"));
    let sock = socket.to_str().unwrap();
    let threats = (0..3)
        .map(|i| {
            scent(
                &format!("t{i}"),
                &json!({"q": i}),
                Some(("malware", "critical")),
            )
        })
        .collect();
    let replies = intercept_all(&rt, &socket, threats);
    // A checkpoint covering every entry, so the export's ledger part is settled.
    let o = tracehound(
        &[
            "--socket",
            sock,
            "incident",
            "record",
            &replies[2].signature,
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));

    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    let (o, first) = json(&[
        "--socket",
        sock,
        "snapshot",
        "export",
        "--out",
        a.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Reads and clean traffic in between: neither is forensic state.
    let clean = (0..5)
        .map(|i| scent(&format!("c{i}"), &json!({"ok": i}), None))
        .collect();
    intercept_all(&rt, &socket, clean);
    for args in [
        vec!["--socket", sock, "stats"],
        vec!["--socket", sock, "verify-chain"],
        vec!["--socket", sock, "snapshot"],
        vec!["--socket", sock, "inspect", &replies[2].signature],
        vec!["--socket", sock, "audit", "checkpoint"],
    ] {
        let o = tracehound(&args, &[]);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    }
    let o = tracehound(
        &[
            "--socket",
            sock,
            "snapshot",
            "export",
            "--out",
            b.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let (bytes_a, bytes_b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_eq!(bytes_a, bytes_b, "two exports of one state differ");
    let sha = first["sha256"].as_str().unwrap().to_owned();
    assert_eq!(sha, tracehound_core::hash::sha256_hex(&bytes_a));
    assert!(
        stdout(&o).starts_with(&format!("sha256 {sha}\n")),
        "{}",
        stdout(&o)
    );
    // The evidence metadata is there, the payload is not.
    let text = String::from_utf8(bytes_a.clone()).unwrap();
    assert!(text.contains(&replies[2].signature) && !text.contains("\"q\":"));

    // Offline verification, with and without the expected hash.
    let af = a.to_str().unwrap();
    let o = tracehound(&["snapshot", "verify", af, "--sha256", &sha], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with(&format!("OK: sha256 {sha}")),
        "{}",
        stdout(&o)
    );
    let o = tracehound(
        &["snapshot", "verify", af, "--sha256", &"0".repeat(64)],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    std::fs::write(&b, text.replacen("\"critical\"", "\"low\"", 1)).unwrap();
    let o = tracehound(
        &["snapshot", "verify", b.to_str().unwrap(), "--sha256", &sha],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    std::fs::write(&b, format!("{text} ")).unwrap();
    let o = tracehound(&["snapshot", "verify", b.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    snapshot_verify_needs_an_anchor(&dir, sock, &text, &sha);

    // A change of state changes the export.
    intercept_all(
        &rt,
        &socket,
        vec![scent("t9", &json!({"q": 9}), Some(("spam", "low")))],
    );
    let o = tracehound(&["--socket", sock, "snapshot", "export", "--out", af], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ne!(std::fs::read(&a).unwrap(), bytes_b);
    rt.block_on(daemon.shutdown());
}

/// `text` canonicalized again after `edit` (so only consistency checks can refuse it),
/// written to `path`.
fn write_edited(path: &Path, text: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut doc: serde_json::Value = serde_json::from_str(text).unwrap();
    edit(&mut doc);
    let canonical = tracehound_core::canonical::canonical_json(&doc).unwrap();
    std::fs::write(path, canonical).unwrap();
}

/// Without `--sha256` or `--key` a consistent file is not `OK` (exit 3); a consistent
/// forgery is still caught by either anchor; inconsistent edits fail (exit 1).
fn snapshot_verify_needs_an_anchor(dir: &tempfile::TempDir, sock: &str, text: &str, sha: &str) {
    let (o, cp) = json(&["--socket", sock, "audit", "checkpoint", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let vkey = cp["verifier_key"].as_str().unwrap().to_owned();
    let f = dir.path().join("c.json");
    let fs = f.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["snapshot", "verify", fs];
        args.extend_from_slice(extra);
        tracehound(&args, &[])
    };

    std::fs::write(&f, text).unwrap();
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("CONSISTENT, NOT ANCHORED: sha256"),
        "{}",
        stdout(&o)
    );
    let o = run(&["--key", &vkey]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("OK: "), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("ledger checkpoint at size"),
        "{}",
        stdout(&o)
    );
    let (o, v) = json(&["snapshot", "verify", fs, "--sha256", sha, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        (v["ok"].as_bool(), v["anchored"].as_bool()),
        (Some(true), Some(true))
    );

    // A consistent forgery: one severity and its total, edited together.
    write_edited(&f, text, |d| {
        d["evidence"][0]["severity"] = json!("low");
        d["quarantine"]["by_severity"]["critical"] = json!(0);
        d["quarantine"]["by_severity"]["low"] = json!(1);
    });
    let o = run(&[]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "not OK without an anchor: {}",
        stdout(&o)
    );
    assert!(!stdout(&o).starts_with("OK"), "{}", stdout(&o));
    let o = run(&["--sha256", sha]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));

    // Inconsistent edits fail with or without an anchor.
    type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
    let edits: Vec<(Edit, &str)> = vec![
        (
            Box::new(|d| d["evidence"][0]["severity"] = json!("low")),
            "by_severity",
        ),
        (
            Box::new(|d| d["quarantine"]["bytes"] = json!(1)),
            "quarantine.bytes",
        ),
        (
            Box::new(|d| d["evidence"][0]["category"] = json!("spam")),
            "category:hash",
        ),
        (
            Box::new(|d| {
                let e = d["evidence"][0].clone();
                d["evidence"].as_array_mut().unwrap().push(e);
                d["quarantine"]["count"] = json!(2);
            }),
            "twice",
        ),
        (
            Box::new(|d| d["ledger"]["checkpoint"]["size"] = json!(99)),
            "checkpoint",
        ),
    ];
    for (edit, why) in edits {
        write_edited(&f, text, edit);
        let o = run(&[]);
        assert_eq!(o.status.code(), Some(1), "{why}: {}", stdout(&o));
        assert!(stderr(&o).contains(why), "{why}: {}", stderr(&o));
    }

    // The key: a tampered note, and another log's key.
    write_edited(&f, text, |d| {
        let note = d["ledger"]["checkpoint"]["note"]
            .as_str()
            .unwrap()
            .to_owned();
        let at = note.rfind(' ').unwrap() + 3;
        d["ledger"]["checkpoint"]["note"] = json!(flip_char(&note, at));
    });
    let o = run(&["--key", &vkey]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    std::fs::write(&f, text).unwrap();
    let other = tracehound_ledger::CheckpointSigner::from_seed("other", &[7; 32])
        .unwrap()
        .verifier()
        .to_verifier_key();
    let o = run(&["--key", &other]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("not signed by this key"),
        "{}",
        stderr(&o)
    );
}
