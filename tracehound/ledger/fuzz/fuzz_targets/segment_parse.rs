//! Fuzz segment parsing: header, frame scanning and entry decoding over arbitrary bytes.
//! Nothing may panic, and every frame reported intact must really be intact.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracehound_ledger::frame::{
    decode_segment_header, scan_frames, ScanEnd, FRAME_OVERHEAD, SEGMENT_HEADER_LEN,
};
use tracehound_ledger::merkle::leaf_hash;
use tracehound_ledger::record::{decode_entry, record_hash_ok};

fuzz_target!(|data: &[u8]| {
    let _ = decode_segment_header(data);
    for start in [0, SEGMENT_HEADER_LEN] {
        let mut next = start;
        let end = scan_frames(data, start, |frame| {
            // Frames are contiguous and their checksums were verified.
            assert_eq!(frame.offset, next);
            assert_eq!(leaf_hash(frame.payload), frame.leaf);
            next = frame.offset + FRAME_OVERHEAD + frame.payload.len();
            if let Ok(record) = decode_entry(frame.payload) {
                let _ = record_hash_ok(&record);
            }
        });
        match end {
            ScanEnd::Clean => assert_eq!(next, data.len().max(start)),
            ScanEnd::Fault { offset, .. } => assert_eq!(offset, next),
        }
    }
    let _ = decode_entry(data);
});
