//! `secretivex audit verify` on real logs written by `secretivex-audit`'s writer, before and
//! after tampering.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use common::{cli_bin, run, tempdir, Out};
use secretivex_audit::{AuditHandle, AuditSpec, Decision, Event, Outcome};

fn decision(i: u64) -> Decision {
    Decision {
        time: SystemTime::now(),
        event: Event::Sign,
        peer_uid: 1000,
        peer_pid: Some(100 + i as i32),
        peer_exe: Some("/usr/bin/ssh".to_owned()),
        key_fingerprint: Some(format!("SHA256:k{i}")),
        dest_host_key: None,
        dest_user: Some("git".to_owned()),
        forwarded: i.is_multiple_of(2),
        outcome: if i.is_multiple_of(5) {
            Outcome::Deny
        } else {
            Outcome::Allow
        },
        rule: i.is_multiple_of(5).then(|| "no-prod".to_owned()),
        latency: Duration::from_micros(30 + i),
        data_sha256: Some([i as u8; 32]),
    }
}

/// A log of `n` decisions rotated every 4 KiB: several files.
fn make_log(dir: &Path, n: u64) -> PathBuf {
    let spec = AuditSpec {
        max_bytes: 4096,
        ..AuditSpec::new(dir.join("audit.jsonl"))
    };
    let handle = AuditHandle::open(&spec).expect("open audit log");
    for i in 0..n {
        handle.record(decision(i));
    }
    drop(handle);
    spec.path
}

fn verify(args: &[&Path], json: bool) -> Out {
    let mut cmd = Command::new(cli_bin());
    cmd.args(["audit", "verify"]);
    if json {
        cmd.arg("--json");
    }
    cmd.args(args);
    run(&mut cmd)
}

/// All files of the log, oldest first, as lists of lines.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<String>)> {
    secretivex_audit::log_files(&dir.join("audit.jsonl"))
        .unwrap()
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text.lines().map(str::to_owned).collect())
        })
        .collect()
}

fn store(file: &(PathBuf, Vec<String>)) {
    let mut text = file.1.join("\n");
    text.push('\n');
    std::fs::write(&file.0, text).unwrap();
}

#[test]
fn an_untouched_log_passes() {
    let dir = tempdir();
    let active = make_log(dir.path(), 100);
    assert!(
        files(dir.path()).len() > 3,
        "the log should span several files"
    );
    let out = verify(&[dir.path()], false);
    out.ok();
    assert!(out.stdout.starts_with("intact: 100 lines in "), "{out}");
    let json = verify(&[dir.path()], true);
    json.ok();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(v["ok"], true);
    assert_eq!(v["lines"], 100);
    assert_eq!(v["last_seq"], 100);
    // The files named one by one, in shell-glob order (`.10` before `.2`), verify too.
    let mut named: Vec<PathBuf> = files(dir.path()).into_iter().map(|f| f.0).collect();
    named.sort();
    let args: Vec<&Path> = named.iter().map(PathBuf::as_path).collect();
    verify(&args, false).ok();
    assert!(args.contains(&active.as_path()));
}

#[test]
fn an_edited_line_is_named() {
    let dir = tempdir();
    make_log(dir.path(), 100);
    let mut log = files(dir.path());
    // Third line of the second file: a denial rewritten as an allow.
    let line = &mut log[1].1[2];
    *line = line.replacen("\"peer_uid\":1000", "\"peer_uid\":0", 1);
    store(&log[1]);
    let out = verify(&[dir.path()], false);
    out.code_is(1);
    let want = format!("{}:3: edited:", log[1].0.display());
    assert!(out.stdout.starts_with(&want), "want {want}\n{out}");
    let json = verify(&[dir.path()], true);
    json.code_is(1);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(v["ok"], false);
    assert_eq!(v["reason"], "edited");
    assert_eq!(v["line"], 3);
    assert_eq!(v["file"], log[1].0.display().to_string());
}

#[test]
fn a_deleted_line_is_named() {
    let dir = tempdir();
    make_log(dir.path(), 100);
    let mut log = files(dir.path());
    log[2].1.remove(4);
    store(&log[2]);
    let out = verify(&[dir.path()], false);
    out.code_is(1);
    let want = format!("{}:5: missing: 1 line", log[2].0.display());
    assert!(out.stdout.starts_with(&want), "want {want}\n{out}");
}

#[test]
fn swapped_lines_are_named() {
    let dir = tempdir();
    make_log(dir.path(), 100);
    let mut log = files(dir.path());
    log[0].1.swap(6, 7);
    store(&log[0]);
    let out = verify(&[dir.path()], false);
    out.code_is(1);
    let want = format!("{}:7: reordered:", log[0].0.display());
    assert!(out.stdout.starts_with(&want), "want {want}\n{out}");
}

#[test]
fn a_deleted_rotated_file_is_named() {
    let dir = tempdir();
    make_log(dir.path(), 100);
    let log = files(dir.path());
    std::fs::remove_file(&log[1].0).unwrap();
    let out = verify(&[dir.path()], false);
    out.code_is(1);
    let want = format!("{}:1: missing:", log[2].0.display());
    assert!(out.stdout.starts_with(&want), "want {want}\n{out}");
}

#[test]
fn unreadable_input_exits_2() {
    let dir = tempdir();
    let out = verify(&[&dir.path().join("absent.jsonl")], false);
    out.code_is(2);
    assert!(out.stderr.contains("absent.jsonl"), "{out}");
    // An empty directory holds no log.
    verify(&[dir.path()], false).code_is(2);
}
