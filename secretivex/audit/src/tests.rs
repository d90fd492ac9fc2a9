//! Writing real logs in temp directories, tampering with them, and verifying.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;

use crate::record::line_hash;
use crate::{
    log_files, verify, verify_log, AuditError, AuditHandle, AuditSpec, BreakKind, Decision, Event,
    Outcome, Reconfigured, Verdict,
};

fn decision(i: u64) -> Decision {
    let outcomes = [
        Outcome::Allow,
        Outcome::Deny,
        Outcome::ConfirmAllow,
        Outcome::ConfirmDeny,
        Outcome::ConfirmTimeout,
        Outcome::Failed,
    ];
    Decision {
        time: UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + i),
        event: if i.is_multiple_of(7) {
            Event::List
        } else {
            Event::Sign
        },
        peer_uid: 1000 + (i % 3) as u32,
        peer_pid: Some(4000 + i as i32),
        peer_exe: Some(format!("/usr/bin/ssh{}", i % 5)),
        key_fingerprint: Some(format!("SHA256:key{i:040}")),
        dest_host_key: i.is_multiple_of(2).then(|| format!("SHA256:host{i:039}")),
        dest_user: i.is_multiple_of(2).then(|| "deploy".to_owned()),
        forwarded: i.is_multiple_of(3),
        outcome: outcomes[(i % 6) as usize],
        rule: i.is_multiple_of(4).then(|| format!("rules[{}]", i % 9)),
        latency: Duration::from_micros(10 + i),
        data_sha256: Some([(i % 251) as u8; 32]),
    }
}

fn spec(dir: &Path, max_bytes: u64, keep: u32) -> AuditSpec {
    AuditSpec {
        path: dir.join("audit.jsonl"),
        max_bytes,
        keep,
        queue: 1024,
    }
}

/// Writes decisions `from..to` through a real handle and closes it.
fn write(spec: &AuditSpec, from: u64, to: u64) {
    let handle = AuditHandle::open(spec).unwrap();
    for i in from..to {
        handle.record(decision(i));
        if i % 500 == 499 {
            // Keeps the queue from overflowing: these tests are about the chain, not drops.
            handle.flush();
        }
    }
    handle.flush();
    assert_eq!(handle.stats().dropped, 0);
}

type Layout = Vec<(PathBuf, Vec<Vec<u8>>)>;

fn read_layout(active: &Path) -> Layout {
    log_files(active)
        .unwrap()
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            let lines = bytes
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec)
                .collect();
            (p, lines)
        })
        .collect()
}

fn write_layout(layout: &Layout) {
    for (path, lines) in layout {
        let mut bytes = Vec::new();
        for l in lines {
            bytes.extend_from_slice(l);
            bytes.push(b'\n');
        }
        std::fs::write(path, bytes).unwrap();
    }
}

/// (file, line number) of the `k`-th line overall (from 0).
fn location(layout: &Layout, k: usize) -> (PathBuf, u64) {
    let mut i = 0;
    for (path, lines) in layout {
        for no in 1..=lines.len() {
            if i == k {
                return (path.clone(), no as u64);
            }
            i += 1;
        }
    }
    panic!("no line {k}");
}

fn line_mut(layout: &mut Layout, k: usize) -> &mut Vec<u8> {
    let mut i = 0;
    for (_, lines) in layout.iter_mut() {
        for line in lines.iter_mut() {
            if i == k {
                return line;
            }
            i += 1;
        }
    }
    panic!("no line {k}");
}

fn total(layout: &Layout) -> usize {
    layout.iter().map(|(_, l)| l.len()).sum()
}

fn remove_line(layout: &mut Layout, k: usize) {
    let mut i = 0;
    for (_, lines) in layout.iter_mut() {
        if k < i + lines.len() {
            lines.remove(k - i);
            return;
        }
        i += lines.len();
    }
    panic!("no line {k}");
}

fn files_of(layout: &Layout) -> Vec<PathBuf> {
    layout.iter().map(|(p, _)| p.clone()).collect()
}

fn expect_broken(layout: &Layout, kinds: &[BreakKind], at: (PathBuf, u64)) {
    match verify(&files_of(layout)).unwrap() {
        Verdict::Broken(b) => {
            assert!(kinds.contains(&b.kind), "{b:?}");
            assert_eq!((b.file.clone(), b.line), at, "{b:?}");
        }
        Verdict::Intact(i) => panic!("tampering not detected: {i:?}"),
    }
}

#[test]
fn an_untouched_rotated_log_is_intact_and_chains_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), 4096, 1000);
    write(&spec, 0, 200);
    let layout = read_layout(&spec.path);
    assert!(
        layout.len() > 5,
        "expected rotation, got {} files",
        layout.len()
    );
    for (path, _) in &layout {
        assert!(std::fs::metadata(path).unwrap().len() <= 4096, "{path:?}");
    }
    // The first line of each file chains to the last line of the file before.
    for pair in layout.windows(2) {
        let last = pair[0].1.last().unwrap();
        let first: serde_json::Value = serde_json::from_slice(&pair[1].1[0]).unwrap();
        let want = hex::encode(line_hash(last));
        assert_eq!(first["prev"], want.as_str());
    }
    match verify_log(&spec.path).unwrap() {
        Verdict::Intact(i) => {
            assert_eq!(i.lines, 200);
            assert_eq!(i.first_seq, Some(1));
            assert_eq!(i.last_seq, Some(200));
            assert_eq!(i.files, layout.len());
            let last = layout.last().unwrap().1.last().unwrap();
            assert_eq!(i.head, hex::encode(line_hash(last)));
        }
        Verdict::Broken(b) => panic!("{b:?}"),
    }
}

#[test]
fn lines_carry_the_decision_and_never_more() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), 1 << 20, 3);
    write(&spec, 4, 5);
    let text = std::fs::read_to_string(&spec.path).unwrap();
    let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(v["time"], "2023-11-14T22:13:20.004Z");
    assert_eq!(v["seq"], 1);
    assert_eq!(v["event"], "sign");
    assert_eq!(v["decision"], "confirm_timeout");
    assert_eq!(v["rule"], "rules[4]");
    assert_eq!(v["peer_uid"], 1001);
    assert_eq!(v["peer_pid"], 4004);
    assert_eq!(v["peer_exe"], "/usr/bin/ssh4");
    assert_eq!(v["dest_user"], "deploy");
    assert_eq!(v["forwarded"], false);
    assert_eq!(v["latency_us"], 14);
    assert_eq!(v["data_sha256"], "04".repeat(32));
    assert_eq!(v["prev"], crate::GENESIS);
    assert_eq!(v.as_object().unwrap().len(), 15);
}

#[test]
fn reopening_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), 4096, 1000);
    write(&spec, 0, 30);
    write(&spec, 30, 45);
    write(&spec, 45, 46);
    match verify_log(&spec.path).unwrap() {
        Verdict::Intact(i) => assert_eq!((i.lines, i.last_seq), (46, Some(46))),
        Verdict::Broken(b) => panic!("{b:?}"),
    }
}

#[test]
fn an_empty_current_file_continues_the_newest_rotated_one() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), 1 << 20, 1000);
    write(&spec, 0, 5);
    // A stop right after a rotation: the current file is renamed and a new one is empty.
    std::fs::rename(&spec.path, dir.path().join("audit.jsonl.1")).unwrap();
    std::fs::write(&spec.path, b"").unwrap();
    write(&spec, 5, 8);
    match verify_log(&spec.path).unwrap() {
        Verdict::Intact(i) => assert_eq!((i.files, i.last_seq), (2, Some(8))),
        Verdict::Broken(b) => panic!("{b:?}"),
    }
}

#[test]
fn a_torn_last_line_is_cut_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), 1 << 20, 3);
    write(&spec, 0, 5);
    let mut bytes = std::fs::read(&spec.path).unwrap();
    bytes.extend_from_slice(b"{\"time\":");
    std::fs::write(&spec.path, &bytes).unwrap();
    // Before reopening, verify names the cut line.
    match verify_log(&spec.path).unwrap() {
        Verdict::Broken(b) => assert_eq!((b.kind, b.line), (BreakKind::BadLine, 6)),
        Verdict::Intact(i) => panic!("{i:?}"),
    }
    write(&spec, 5, 6);
    let text = std::fs::read_to_string(&spec.path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7);
    assert_eq!(lines[5]["event"], "torn_tail");
    assert_eq!(lines[5]["torn_bytes"], 8);
    assert!(matches!(
        verify_log(&spec.path).unwrap(),
        Verdict::Intact(_)
    ));
}

#[test]
fn a_log_that_does_not_end_in_an_audit_line_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), 1 << 20, 3);
    std::fs::write(&spec.path, b"hello\n").unwrap();
    let err = AuditHandle::open(&spec).unwrap_err();
    assert!(matches!(err, AuditError::Corrupt { .. }), "{err}");
}

#[test]
fn a_second_writer_on_one_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), 1 << 20, 3);
    let first = AuditHandle::open(&spec).unwrap();
    let err = AuditHandle::open(&spec).unwrap_err();
    assert!(matches!(err, AuditError::Busy { .. }), "{err}");
    drop(first);
    AuditHandle::open(&spec).unwrap();
}

#[test]
fn pruned_files_are_recorded_and_a_deleted_oldest_file_is_not_mistaken_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), 4096, 2);
    write(&spec, 0, 300);
    let layout = read_layout(&spec.path);
    assert_eq!(layout.len(), 3, "two rotated files and the current one");
    let first: serde_json::Value = serde_json::from_slice(&layout[0].1[0]).unwrap();
    assert!(first["seq"].as_u64().unwrap() > 1);
    let pruned = layout
        .iter()
        .flat_map(|(_, l)| l.iter())
        .filter(|l| l.windows(16).any(|w| w == b"\"event\":\"pruned\""))
        .count();
    assert!(pruned > 0, "no pruned line kept");
    match verify_log(&spec.path).unwrap() {
        // `seq` counts the pruned lines too: more lines than decisions.
        Verdict::Intact(i) => assert!(i.last_seq.unwrap() > 300, "{i:?}"),
        Verdict::Broken(b) => panic!("{b:?}"),
    }
    // Deleting the oldest kept file is not what `keep` did: the start is unexplained.
    let rest: Vec<PathBuf> = files_of(&layout)[1..].to_vec();
    match verify(&rest).unwrap() {
        Verdict::Broken(b) => {
            assert_eq!(b.kind, BreakKind::Missing);
            assert_eq!((b.file, b.line), (rest[0].clone(), 1));
        }
        Verdict::Intact(i) => panic!("{i:?}"),
    }
}

#[test]
fn keep_zero_leaves_only_the_current_file_and_it_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), 4096, 0);
    write(&spec, 0, 100);
    let layout = read_layout(&spec.path);
    assert_eq!(layout.len(), 1);
    assert!(matches!(
        verify_log(&spec.path).unwrap(),
        Verdict::Intact(_)
    ));
}

#[test]
fn a_full_queue_drops_counts_and_reports_the_drops() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec(dir.path(), 1 << 20, 3);
    spec.queue = 4;
    let (gate_tx, gate_rx) = mpsc::channel();
    let handle = AuditHandle::open_gated(&spec, Some(gate_rx)).unwrap();
    // The writer waits at the gate, so exactly `queue` decisions fit.
    for i in 0..10 {
        handle.record(decision(i));
    }
    assert_eq!(handle.stats().dropped, 6);
    gate_tx.send(()).unwrap();
    handle.flush();
    let stats = handle.stats();
    assert_eq!((stats.written, stats.dropped, stats.lines), (4, 6, 5));
    drop(handle);
    let text = std::fs::read_to_string(&spec.path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[4]["event"], "dropped");
    assert_eq!(lines[4]["dropped"], 6);
    assert!(matches!(
        verify_log(&spec.path).unwrap(),
        Verdict::Intact(_)
    ));
}

#[test]
fn reconfigure_applies_in_place_for_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let spec1 = spec(dir.path(), 1 << 20, 3);
    let handle = AuditHandle::open(&spec1).unwrap();
    for i in 0..40 {
        handle.record(decision(i));
    }
    handle.flush();
    assert_eq!(log_files(&spec1.path).unwrap().len(), 1);
    let smaller = AuditSpec {
        max_bytes: 4096,
        ..spec1.clone()
    };
    assert_eq!(handle.reconfigure(&smaller), Reconfigured::InPlace);
    handle.record(decision(40));
    handle.flush();
    assert_eq!(
        log_files(&spec1.path).unwrap().len(),
        2,
        "rotated at the new size"
    );
    let bigger_queue = AuditSpec {
        queue: 9,
        ..smaller.clone()
    };
    assert_eq!(handle.reconfigure(&bigger_queue), Reconfigured::QueueKept);
    let other = AuditSpec {
        path: dir.path().join("other.jsonl"),
        ..smaller
    };
    assert_eq!(handle.reconfigure(&other), Reconfigured::OtherPath);
    drop(handle);
    assert!(matches!(
        verify_log(&spec1.path).unwrap(),
        Verdict::Intact(_)
    ));
}

#[test]
fn named_tampering_is_reported_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), 4096, 1000);
    write(&spec, 0, 40);
    let pristine = read_layout(&spec.path);

    // Edited: a field of line 20 (0-based 19) changed.
    let mut layout = pristine.clone();
    let line = line_mut(&mut layout, 19);
    let text = String::from_utf8(line.clone()).unwrap();
    *line = text
        .replace("\"decision\":\"", "\"decision\":\"x")
        .into_bytes();
    write_layout(&layout);
    expect_broken(&layout, &[BreakKind::Edited], location(&layout, 19));

    // Missing: line 20 deleted; the break is where the gap is.
    let mut layout = pristine.clone();
    remove_line(&mut layout, 19);
    write_layout(&layout);
    expect_broken(&layout, &[BreakKind::Missing], location(&layout, 19));

    // Reordered: lines 20 and 21 swapped.
    let mut layout = pristine.clone();
    let a = line_mut(&mut layout, 19).clone();
    let b = std::mem::replace(line_mut(&mut layout, 20), a);
    *line_mut(&mut layout, 19) = b;
    write_layout(&layout);
    expect_broken(&layout, &[BreakKind::Reordered], location(&layout, 19));

    // Not JSON.
    let mut layout = pristine.clone();
    *line_mut(&mut layout, 5) = b"garbage".to_vec();
    write_layout(&layout);
    expect_broken(&layout, &[BreakKind::BadLine], location(&layout, 5));
}

#[derive(Debug, Clone)]
enum Tamper {
    Edit { pos: usize, byte: u8 },
    Delete,
    Swap,
}

fn tamper() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        (any::<usize>(), 0x20u8..0x7f).prop_map(|(pos, byte)| Tamper::Edit { pos, byte }),
        Just(Tamper::Delete),
        Just(Tamper::Swap),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any single edit, deletion or swap of lines in a multi-file log (pruned or not) is found
    /// at its line. (The newest line is left alone: nothing after it vouches for it.)
    #[test]
    fn any_single_tampering_is_found_at_its_line(
        n in 3u64..90,
        keep in prop_oneof![Just(1000u32), Just(2), Just(0)],
        pick in any::<prop::sample::Index>(),
        op in tamper(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        // Small files; `keep` 2 and 0 prune, so the log starts with a recorded gap.
        let spec = spec(dir.path(), 4096, keep);
        write(&spec, 0, n);
        let mut layout = read_layout(&spec.path);
        let lines = total(&layout);
        // Every line but the newest may be edited or deleted; a swap needs a following line.
        let k = pick.index(lines - 1);
        let (kinds, at): (&[BreakKind], _) = match op {
            Tamper::Edit { pos, byte } => {
                let line = line_mut(&mut layout, k);
                let pos = pos % line.len();
                let byte = if line[pos] == byte { if byte == b'a' { b'b' } else { b'a' } } else { byte };
                line[pos] = byte;
                (&[BreakKind::Edited, BreakKind::BadLine], location(&layout, k))
            }
            Tamper::Delete => {
                remove_line(&mut layout, k);
                (&[BreakKind::Missing], location(&layout, k))
            }
            Tamper::Swap => {
                let a = line_mut(&mut layout, k).clone();
                let b = std::mem::replace(line_mut(&mut layout, k + 1), a);
                *line_mut(&mut layout, k) = b;
                (&[BreakKind::Reordered], location(&layout, k))
            }
        };
        write_layout(&layout);
        expect_broken(&layout, kinds, at);
    }
}
