//! Verification from a snapshot: the files are checked up to the size captured, while the
//! ledger keeps appending; what was appended after the capture (including a frame still
//! being written) is not part of the result, and damage inside the captured prefix is
//! still found.

mod common;

use common::segments;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::sync::{Arc, Mutex};

use tracehound_core::audit::RecordKind;
use tracehound_ledger::frame::{encode_frame, FRAME_OVERHEAD, SEGMENT_HEADER_LEN};
use tracehound_ledger::merkle::{empty_root, leaf_hash};
use tracehound_ledger::{FsyncPolicy, Ledger, LedgerConfig, LedgerError, NewRecord};

/// Small segments, so a few dozen entries span several files.
fn config() -> LedgerConfig {
    LedgerConfig {
        max_segment_bytes: 2048,
        fsync: FsyncPolicy::Batch(16),
    }
}

fn append_n(ledger: &mut Ledger, n: u64) {
    for _ in 0..n {
        let i = ledger.len();
        let id = format!("id-{i}-{}", "p".repeat((i % 13) as usize));
        let sig = format!("ddos:{i:064x}");
        ledger
            .append(&NewRecord {
                kind: RecordKind::Neutralization,
                id: &id,
                signature: &sig,
                timestamp: 1_700_000_000_000.0 + i as f64,
            })
            .unwrap();
    }
}

/// Byte offset of entry `index` in `seg`, whose first entry is `first`.
fn frame_offset(ledger: &Ledger, first: u64, index: u64) -> usize {
    (first..index)
        .map(|i| FRAME_OVERHEAD + ledger.entry(i).unwrap().len())
        .sum::<usize>()
        + SEGMENT_HEADER_LEN
}

#[test]
fn appends_after_the_capture_are_not_part_of_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ledger, _) = Ledger::open(dir.path(), config()).unwrap();
    append_n(&mut ledger, 30);
    // Until the active segment has room for more frames, so the next appends extend a
    // file the snapshot captures (as well as creating new ones).
    let active = || segments(dir.path()).pop().unwrap();
    while fs::metadata(active()).unwrap().len() > 1024 {
        append_n(&mut ledger, 1);
    }
    let captured_file = active();
    let captured_len = fs::metadata(&captured_file).unwrap().len();
    let files_then = segments(dir.path()).len();
    assert!(files_then >= 3, "{files_then} segments");
    let n = ledger.len();
    let snap = ledger.verify_snapshot();
    assert_eq!(snap.size(), n);
    assert_eq!(snap.root(), ledger.root(n).unwrap());
    assert_eq!(snap.last_hash(), ledger.last_hash());

    // The captured active segment grows and new segments appear before the run.
    append_n(&mut ledger, 40);
    assert!(fs::metadata(&captured_file).unwrap().len() > captured_len);
    assert!(segments(dir.path()).len() > files_then);
    let report = snap.run().unwrap();
    assert_eq!(report.entries, snap.size());
    assert_eq!(report.root, ledger.root(n).unwrap());
    assert_eq!(report.last_hash, ledger.record(n - 1).unwrap().hash);
    assert_ne!(report.root, ledger.root(n + 40).unwrap());

    // A snapshot can be run again, and a later one covers everything.
    assert_eq!(snap.run().unwrap(), report);
    let now = ledger.verify_snapshot().run().unwrap();
    assert_eq!(now, ledger.verify().unwrap());
    assert_eq!(now.entries, n + 40);
}

#[test]
fn an_empty_ledger_verifies_from_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ledger, _) = Ledger::open(dir.path(), config()).unwrap();
    let snap = ledger.verify_snapshot();
    append_n(&mut ledger, 5);
    let report = snap.run().unwrap();
    assert_eq!((report.entries, report.root), (0, empty_root()));
}

#[test]
fn a_torn_frame_past_the_captured_size_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ledger, _) = Ledger::open(dir.path(), config()).unwrap();
    append_n(&mut ledger, 10);
    let snap = ledger.verify_snapshot();
    // Half a frame after the captured end, as a write in progress (or a failed one)
    // leaves it.
    let mut frame = Vec::new();
    encode_frame(b"{\"half\":1}", &leaf_hash(b"{\"half\":1}"), &mut frame);
    let last = segments(dir.path()).pop().unwrap();
    let mut file = OpenOptions::new().append(true).open(&last).unwrap();
    file.write_all(&frame[..frame.len() / 2]).unwrap();
    drop(file);

    assert_eq!(snap.run().unwrap().entries, 10);
    // Whole-file verification reads the half frame and reports it.
    assert!(matches!(ledger.verify(), Err(LedgerError::Corrupt { .. })));
}

#[test]
fn an_altered_byte_inside_the_captured_prefix_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ledger, _) = Ledger::open(dir.path(), config()).unwrap();
    append_n(&mut ledger, 30);
    let snap = ledger.verify_snapshot();
    append_n(&mut ledger, 10);
    let first = segments(dir.path()).remove(0);
    let clean = fs::read(&first).unwrap();
    let start = frame_offset(&ledger, 0, 1);
    let e1 = ledger.entry(1).unwrap();

    // A payload byte of entry 1: its checksum no longer matches, more frames follow.
    let mut bytes = clean.clone();
    bytes[start + FRAME_OVERHEAD + 2] ^= 0x01;
    fs::write(&first, &bytes).unwrap();
    let err = snap.run().unwrap_err();
    assert!(
        matches!(err, LedgerError::Corrupt { offset, .. } if offset as usize == start),
        "{err}"
    );

    // A re-framed forgery of entry 1 (valid checksum, changed record): the chain breaks.
    let mut forged = e1.clone();
    let pos = forged.iter().position(|&b| b == b'p').unwrap();
    forged[pos] = b'q';
    let mut frame = Vec::new();
    encode_frame(&forged, &leaf_hash(&forged), &mut frame);
    let mut bytes = clean.clone();
    bytes.splice(start..start + FRAME_OVERHEAD + e1.len(), frame);
    fs::write(&first, &bytes).unwrap();
    let err = snap.run().unwrap_err();
    assert!(matches!(err, LedgerError::Chain { index: 1, .. }), "{err}");

    // The header of a captured segment.
    let mut bytes = clean.clone();
    bytes[0] ^= 0xff;
    fs::write(&first, &bytes).unwrap();
    assert!(matches!(
        snap.run(),
        Err(LedgerError::Corrupt { offset: 0, .. })
    ));

    fs::write(&first, &clean).unwrap();
    assert_eq!(snap.run().unwrap().entries, 30);
}

#[test]
fn damage_at_the_end_of_the_captured_prefix_is_not_taken_for_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    // One segment: the appends after the capture go to the captured file.
    let one_segment = LedgerConfig {
        max_segment_bytes: 1 << 20,
        ..config()
    };
    let (mut ledger, _) = Ledger::open(dir.path(), one_segment).unwrap();
    append_n(&mut ledger, 30);
    let snap = ledger.verify_snapshot();
    let active = segments(dir.path()).pop().unwrap();
    let captured_len = fs::metadata(&active).unwrap().len();
    // The last captured byte (inside entry 29's payload) changes; more entries follow
    // in the same file after the capture.
    append_n(&mut ledger, 2);
    let mut bytes = fs::read(&active).unwrap();
    assert!(bytes.len() as u64 > captured_len);
    bytes[captured_len as usize - 2] ^= 0x01;
    fs::write(&active, &bytes).unwrap();
    assert!(matches!(snap.run(), Err(LedgerError::Corrupt { .. })));

    // A captured segment cut short is damage too.
    bytes[captured_len as usize - 2] ^= 0x01;
    fs::write(&active, &bytes[..captured_len as usize - 1]).unwrap();
    let err = snap.run().unwrap_err();
    assert!(
        matches!(err, LedgerError::Corrupt { offset, .. } if offset == captured_len - 1),
        "{err}"
    );
}

#[test]
fn snapshots_taken_between_concurrent_appends_all_verify_at_their_size() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(dir.path(), config()).unwrap();
    let ledger = Arc::new(Mutex::new(ledger));
    let writer = {
        let ledger = Arc::clone(&ledger);
        std::thread::spawn(move || {
            for _ in 0..400 {
                append_n(&mut ledger.lock().unwrap(), 1);
            }
        })
    };
    let mut sizes = Vec::new();
    loop {
        // Only the capture holds the lock; the files are read while the writer appends.
        let (snap, root) = {
            let l = ledger.lock().unwrap();
            (l.verify_snapshot(), l.root(l.len()).unwrap())
        };
        let report = snap.run().unwrap();
        assert_eq!((report.entries, report.root), (snap.size(), root));
        sizes.push(report.entries);
        if report.entries == 400 {
            break;
        }
    }
    writer.join().unwrap();
    assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "{sizes:?}");
}
