//! Segment files on disk: reopen, rolling, torn tails at every byte offset, corruption in
//! the middle, fsync policy acknowledgements, and tampering found by `verify`.

mod common;

use common::segments;
use std::fs;
use std::path::Path;
use std::time::Duration;

use tracehound_core::audit::{AuditChain, ChainHash, RecordKind};
use tracehound_ledger::frame::{encode_frame, encode_segment_header, FRAME_OVERHEAD};
use tracehound_ledger::merkle::leaf_hash;
use tracehound_ledger::record::{chain_record, encode_entry};
use tracehound_ledger::{FsyncPolicy, Ledger, LedgerConfig, LedgerError, NewRecord};

fn config(max_segment_bytes: u64, fsync: FsyncPolicy) -> LedgerConfig {
    LedgerConfig {
        max_segment_bytes,
        fsync,
    }
}

fn record(i: u64) -> (String, String, f64) {
    (
        format!("id-{i}-{}", "p".repeat((i % 13) as usize)),
        format!("ddos:{i:064x}"),
        1_700_000_000_000.0 + i as f64,
    )
}

fn append_n(ledger: &mut Ledger, n: u64) {
    for _ in 0..n {
        let (id, sig, ts) = record(ledger.len());
        ledger
            .append(&NewRecord {
                kind: RecordKind::Neutralization,
                id: &id,
                signature: &sig,
                timestamp: ts,
            })
            .unwrap();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for p in segments(from) {
        fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

#[test]
fn entries_survive_reopen_across_rolled_segments_and_match_the_core_chain() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(4096, FsyncPolicy::Batch(50));
    let (mut ledger, report) = Ledger::open(dir.path(), cfg).unwrap();
    assert!(report.created);
    append_n(&mut ledger, 500);
    ledger.sync().unwrap();
    let (root, last, segs) = (
        ledger.root(500).unwrap(),
        ledger.last_hash(),
        ledger.segment_count(),
    );
    assert!(segs > 10, "4 KiB segments must roll: {segs}");
    drop(ledger);

    let (ledger, report) = Ledger::open(dir.path(), cfg).unwrap();
    assert_eq!(
        (report.entries, report.segments, report.truncated.clone()),
        (500, segs, None)
    );
    assert_eq!((ledger.len(), ledger.acknowledged()), (500, 500));
    assert_eq!(ledger.root(500).unwrap(), root);
    assert_eq!(ledger.last_hash(), last);
    let verified = ledger.verify().unwrap();
    assert_eq!(
        (verified.entries, verified.root, verified.last_hash),
        (500, root, last)
    );

    // The same records through v1's in-memory chain give the same hashes, and the
    // entries, as a JSON array, are a v1 export that the core imports and verifies.
    let mut chain = AuditChain::new();
    let mut export = String::from("[");
    for i in 0..500 {
        let (id, sig, ts) = record(i);
        chain.append(RecordKind::Neutralization, &id, &sig, ts);
        if i > 0 {
            export.push(',');
        }
        export.push_str(std::str::from_utf8(&ledger.entry(i).unwrap()).unwrap());
    }
    export.push(']');
    assert_eq!(chain.last_hash(), last);
    assert_eq!(export, chain.export_json());
    let imported = AuditChain::import_json(&export).unwrap();
    assert_eq!(imported.verify(), Ok(()));
    assert_eq!(ledger.record(123).unwrap().id, record(123).0);
    assert!(matches!(
        ledger.entry(500),
        Err(LedgerError::NoSuchEntry {
            index: 500,
            len: 500
        })
    ));
}

#[test]
fn a_torn_last_frame_is_truncated_at_every_byte_offset() {
    let master = tempfile::tempdir().unwrap();
    let cfg = config(1 << 20, FsyncPolicy::EveryAppend);
    let (mut ledger, _) = Ledger::open(master.path(), cfg).unwrap();
    append_n(&mut ledger, 6);
    let root5 = ledger.root(5).unwrap();
    let last_len = (FRAME_OVERHEAD + ledger.entry(5).unwrap().len()) as u64;
    drop(ledger);
    let seg = segments(master.path()).pop().unwrap();
    let full = fs::read(&seg).unwrap();
    let last_start = full.len() as u64 - last_len;

    let mut cases = 0;
    for cut in last_start..full.len() as u64 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(seg.file_name().unwrap());
        fs::write(&path, &full[..cut as usize]).unwrap();
        let (mut ledger, report) = Ledger::open(dir.path(), cfg).unwrap();
        assert_eq!(ledger.len(), 5, "cut at {cut}");
        if cut == last_start {
            assert_eq!(report.truncated, None);
        } else {
            let torn = report.truncated.expect("torn tail reported");
            assert_eq!(
                (torn.offset, torn.bytes_removed),
                (last_start, cut - last_start),
                "cut at {cut}"
            );
        }
        assert_eq!(fs::metadata(&path).unwrap().len(), last_start);
        assert_eq!(ledger.root(5).unwrap(), root5);
        ledger.verify().unwrap();
        // The log continues where it was cut, and reopens clean.
        append_n(&mut ledger, 2);
        drop(ledger);
        let (ledger, report) = Ledger::open(dir.path(), cfg).unwrap();
        assert_eq!((ledger.len(), report.truncated), (7, None));
        ledger.verify().unwrap();
        cases += 1;
    }
    assert_eq!(cases, last_len);

    // Damage inside the last frame (its payload never fully reached the disk) and a
    // zero-filled tail are torn tails too.
    for (what, bytes) in [
        ("flipped payload byte", {
            let mut b = full.clone();
            let n = b.len();
            b[n - 3] ^= 0x20;
            b
        }),
        ("zero tail", {
            let mut b = full.clone();
            b.extend_from_slice(&[0; 4096]);
            b
        }),
    ] {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(seg.file_name().unwrap()), &bytes).unwrap();
        let (ledger, report) = Ledger::open(dir.path(), cfg).unwrap();
        let torn = report.truncated.expect(what);
        let expect_len = if what == "zero tail" { 6 } else { 5 };
        assert_eq!(ledger.len(), expect_len, "{what}: {torn:?}");
        ledger.verify().unwrap();
    }
}

#[test]
fn corruption_in_the_middle_is_an_error_never_dropped() {
    let master = tempfile::tempdir().unwrap();
    let cfg = config(2048, FsyncPolicy::EveryAppend);
    let (mut ledger, _) = Ledger::open(master.path(), cfg).unwrap();
    append_n(&mut ledger, 60);
    drop(ledger);
    let segs = segments(master.path());
    assert!(segs.len() >= 3);

    let corrupt_open = |mutate: &dyn Fn(&Path)| -> LedgerError {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(master.path(), dir.path());
        mutate(dir.path());
        let before: Vec<Vec<u8>> = segments(dir.path())
            .iter()
            .map(|p| fs::read(p).unwrap())
            .collect();
        let err = Ledger::open(dir.path(), cfg).unwrap_err();
        let after: Vec<Vec<u8>> = segments(dir.path())
            .iter()
            .map(|p| fs::read(p).unwrap())
            .collect();
        assert_eq!(before, after, "a failed open must not modify any file");
        err
    };
    let name = |p: &Path| p.file_name().unwrap().to_owned();
    let first = name(&segs[0]);
    let last = name(segs.last().unwrap());

    // A payload byte of the first frame of the first segment.
    let err = corrupt_open(&|d| {
        let p = d.join(&first);
        let mut b = fs::read(&p).unwrap();
        b[16 + FRAME_OVERHEAD + 30] ^= 1;
        fs::write(&p, b).unwrap();
    });
    assert!(matches!(err, LedgerError::Corrupt { .. }), "{err}");

    // The last frame of a segment that is not the last one: not a torn tail.
    let err = corrupt_open(&|d| {
        let p = d.join(&first);
        let mut b = fs::read(&p).unwrap();
        let n = b.len();
        b[n - 1] ^= 1;
        fs::write(&p, b).unwrap();
    });
    assert!(matches!(err, LedgerError::Corrupt { .. }), "{err}");

    // A cut-short earlier segment.
    let err = corrupt_open(&|d| {
        let p = d.join(&first);
        let b = fs::read(&p).unwrap();
        fs::write(&p, &b[..b.len() - 10]).unwrap();
    });
    assert!(matches!(err, LedgerError::Corrupt { .. }), "{err}");

    // A length field in the middle of the last segment.
    let err = corrupt_open(&|d| {
        let p = d.join(&last);
        let mut b = fs::read(&p).unwrap();
        b[16] ^= 0x01;
        fs::write(&p, b).unwrap();
    });
    assert!(matches!(err, LedgerError::Corrupt { .. }), "{err}");

    // A missing middle segment.
    let err = corrupt_open(&|d| fs::remove_file(d.join(name(&segs[1]))).unwrap());
    assert!(matches!(err, LedgerError::Corrupt { .. }), "{err}");

    // A header that is not ours.
    let err = corrupt_open(&|d| {
        let p = d.join(&last);
        let mut b = fs::read(&p).unwrap();
        b[0] = b'X';
        fs::write(&p, b).unwrap();
    });
    assert!(matches!(err, LedgerError::Corrupt { .. }), "{err}");
}

#[test]
fn a_segment_whose_header_was_cut_short_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(1 << 20, FsyncPolicy::EveryAppend);
    let (mut ledger, _) = Ledger::open(dir.path(), cfg).unwrap();
    append_n(&mut ledger, 3);
    drop(ledger);
    let torn = dir.path().join("00000000000000000003.seg");
    fs::write(&torn, &encode_segment_header(3)[..5]).unwrap();
    let (mut ledger, report) = Ledger::open(dir.path(), cfg).unwrap();
    assert_eq!(
        report.removed_segment.as_deref(),
        Some("00000000000000000003.seg")
    );
    assert!(!torn.exists());
    assert_eq!(ledger.len(), 3);
    append_n(&mut ledger, 1);
    ledger.verify().unwrap();
}

#[test]
fn fsync_policies_acknowledge_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ledger, _) = Ledger::open(dir.path(), config(1 << 20, FsyncPolicy::Batch(4))).unwrap();
    let acks: Vec<bool> = (0..9)
        .map(|i| {
            let id = format!("b{i}");
            ledger
                .append(&NewRecord {
                    kind: RecordKind::Evacuation,
                    id: &id,
                    signature: "s",
                    timestamp: 0.0,
                })
                .unwrap()
                .acknowledged
        })
        .collect();
    assert_eq!(
        acks,
        [false, false, false, true, false, false, false, true, false]
    );
    assert_eq!(ledger.acknowledged(), 8);
    assert_eq!(
        ledger.checkpoint("o").unwrap().size,
        8,
        "checkpoints cover acknowledged entries only"
    );
    ledger.sync().unwrap();
    assert_eq!(ledger.acknowledged(), 9);
    drop(ledger);

    let dir = tempfile::tempdir().unwrap();
    let hour = config(1 << 20, FsyncPolicy::Interval(Duration::from_secs(3600)));
    let (mut ledger, _) = Ledger::open(dir.path(), hour).unwrap();
    append_n(&mut ledger, 5);
    assert_eq!(ledger.tick().unwrap(), 0, "nothing is due within the hour");
    ledger.sync().unwrap();
    assert_eq!(ledger.acknowledged(), 5);
    drop(ledger);

    let dir = tempfile::tempdir().unwrap();
    let zero = config(1 << 20, FsyncPolicy::Interval(Duration::ZERO));
    let (mut ledger, _) = Ledger::open(dir.path(), zero).unwrap();
    append_n(&mut ledger, 3);
    assert_eq!(ledger.acknowledged(), 3);

    for bad in [
        config(10, FsyncPolicy::EveryAppend),
        config(1 << 40, FsyncPolicy::EveryAppend),
        config(4096, FsyncPolicy::Batch(0)),
    ] {
        assert!(matches!(
            Ledger::open(dir.path(), bad),
            Err(LedgerError::Config(_))
        ));
    }
}

#[test]
fn verify_finds_tampering_that_framing_cannot() {
    let cfg = config(1 << 20, FsyncPolicy::EveryAppend);
    // Entry 1 rewritten after open with a valid frame around different contents.
    let dir = tempfile::tempdir().unwrap();
    let (mut ledger, _) = Ledger::open(dir.path(), cfg).unwrap();
    append_n(&mut ledger, 3);
    let seg = segments(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    let e1 = ledger.entry(1).unwrap();
    let start = 16 + FRAME_OVERHEAD + ledger.entry(0).unwrap().len();
    let mut forged = e1.clone();
    let pos = forged.iter().position(|&b| b == b'p').unwrap_or(10);
    forged[pos] = b'q';
    let mut frame = Vec::new();
    encode_frame(&forged, &leaf_hash(&forged), &mut frame);
    bytes.splice(start..start + FRAME_OVERHEAD + e1.len(), frame);
    fs::write(&seg, &bytes).unwrap();
    assert!(matches!(ledger.verify(), Err(LedgerError::TreeMismatch(_))));
    assert!(matches!(ledger.entry(1), Err(LedgerError::Corrupt { .. })));
    drop(ledger);
    // Reopened, the framing is fine but the record's hash no longer matches its contents.
    let (ledger, _) = Ledger::open(dir.path(), cfg).unwrap();
    assert!(matches!(
        ledger.verify(),
        Err(LedgerError::Chain { index: 1, .. })
    ));

    // A segment of well-framed records whose chain skips a link.
    let dir = tempfile::tempdir().unwrap();
    let mut file = encode_segment_header(0).to_vec();
    let mut prev = ChainHash::GENESIS;
    for i in 0..4u64 {
        let (id, sig, ts) = record(i);
        let rec = chain_record(
            &prev,
            &NewRecord {
                kind: RecordKind::Neutralization,
                id: &id,
                signature: &sig,
                timestamp: ts,
            },
        );
        let mut payload = Vec::new();
        encode_entry(&rec, &mut payload);
        encode_frame(&payload, &leaf_hash(&payload), &mut file);
        prev = if i == 1 { ChainHash([7; 32]) } else { rec.hash };
    }
    fs::write(dir.path().join("00000000000000000000.seg"), file).unwrap();
    let (ledger, _) = Ledger::open(dir.path(), cfg).unwrap();
    let err = ledger.verify().unwrap_err();
    assert!(matches!(err, LedgerError::Chain { index: 2, .. }), "{err}");
}
