//! Done-when 1: a writer appending as fast as it can under the `EveryAppend` policy is
//! SIGKILLed mid-append, the ledger is reopened and fully verified, and every index the
//! writer printed (acknowledged) is present. Repeated over the same directory, so later
//! rounds also recover from earlier kills, and the history must stay consistent.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use tracehound_ledger::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use tracehound_ledger::{FsyncPolicy, Ledger, LedgerConfig};

const SEGMENT_BYTES: u64 = 16 * 1024;

#[test]
fn sigkill_mid_append_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LedgerConfig {
        max_segment_bytes: SEGMENT_BYTES,
        fsync: FsyncPolicy::EveryAppend,
    };
    let mut previous: Option<(u64, [u8; 32])> = None;
    let mut total_acked = 0u64;

    for (round, kill_after) in [150u64, 320, 90, 400, 230].into_iter().enumerate() {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ledger-crash-writer"))
            .arg(dir.path())
            .arg(SEGMENT_BYTES.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ledger-crash-writer");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut acked: Vec<u64> = Vec::new();
        while (acked.len() as u64) < kill_after {
            let line = lines
                .next()
                .expect("writer ended early")
                .expect("read stdout");
            acked.push(line.trim().parse().expect("index"));
        }
        // SIGKILL while the writer is still appending as fast as it can.
        child.kill().expect("SIGKILL");
        // Everything it printed before dying was acknowledged too.
        for line in lines {
            let Ok(line) = line else { break };
            acked.push(line.trim().parse().expect("index"));
        }
        let status = child.wait().expect("wait");
        assert_eq!(
            status.signal(),
            Some(9),
            "round {round}: the writer must have died of SIGKILL"
        );

        let start = previous.map_or(0, |(size, _)| size);
        let expected: Vec<u64> = (start..start + acked.len() as u64).collect();
        assert_eq!(
            acked, expected,
            "round {round}: acknowledged indices are contiguous from {start}"
        );
        let max_acked = *acked.last().expect("acknowledged something");
        total_acked += acked.len() as u64;

        let (ledger, report) = Ledger::open(dir.path(), cfg).expect("reopen after SIGKILL");
        assert!(
            ledger.len() > max_acked,
            "round {round}: {} entries, acked up to {max_acked} ({report:?})",
            ledger.len()
        );
        let verified = ledger
            .verify()
            .expect("chain and tree verify after the crash");
        assert_eq!(verified.entries, ledger.len());
        let size = ledger.len();
        let root = ledger.root(size).unwrap();
        for &i in acked.iter().step_by(17).chain(std::iter::once(&max_acked)) {
            let record = ledger.record(i).unwrap();
            assert!(
                record.id.starts_with(&format!("crash-{i}-")),
                "round {round}: entry {i} is {}",
                record.id
            );
            let proof = ledger.inclusion_proof(i, size).unwrap();
            let leaf = leaf_hash(&ledger.entry(i).unwrap());
            verify_inclusion(&leaf, i, size, &proof, &root).unwrap();
        }
        if let Some((old_size, old_root)) = previous {
            let proof = ledger.consistency_proof(old_size, size).unwrap();
            verify_consistency(old_size, size, &old_root, &root, &proof)
                .expect("history before the crash is a prefix of the history after it");
        }
        previous = Some((size, root));
    }
    let (ledger, _) = Ledger::open(dir.path(), cfg).unwrap();
    assert!(
        ledger.segment_count() > 1,
        "the crash runs must have rolled segments"
    );
    assert!(ledger.len() >= total_acked);
}
