//! Fuzz incident record verification: arbitrary text never panics, and a genuine record
//! altered at any byte by any non-zero mask never verifies.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tracehound_core::audit::RecordKind;
use tracehound_ledger::incident::{incident_id, IncidentEvidence};
use tracehound_ledger::{
    verify_incident_record, CheckpointSigner, CheckpointVerifier, IncidentRecord, Ledger,
    LedgerConfig, NewRecord,
};

/// A genuine record from a small ledger, built once per run.
fn genuine() -> &'static (String, CheckpointVerifier) {
    static G: OnceLock<(String, CheckpointVerifier)> = OnceLock::new();
    G.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("incident-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (mut log, _) = Ledger::open(&dir, LedgerConfig::default()).expect("ledger");
        for i in 0..5u32 {
            let id = format!("n-{i}");
            log.append(&NewRecord {
                kind: RecordKind::Neutralization,
                id: &id,
                signature: "ddos:00",
                timestamp: f64::from(i),
            })
            .expect("append");
        }
        let hash = "ab".repeat(32);
        let evidence = IncidentEvidence {
            signature: format!("malware:{hash}"),
            hash,
            category: "malware".to_owned(),
            severity: "critical".to_owned(),
            size: 42,
            captured_ms: 1_700_000_000_000.0,
        };
        let id = incident_id(&evidence).expect("id");
        log.append(&NewRecord {
            kind: RecordKind::Incident,
            id: &id,
            signature: &evidence.signature,
            timestamp: 1_700_000_000_500.0,
        })
        .expect("append");
        log.sync().expect("sync");
        let signer = CheckpointSigner::from_seed("fuzz", &[3; 32]).expect("signer");
        let bundle = log.prove(5, Some(("fuzz/audit", &signer))).expect("prove");
        let verifier = signer.verifier();
        let text = IncidentRecord::new(evidence, 1_700_000_000_500.0, &bundle, &verifier)
            .and_then(|r| r.to_canonical_json())
            .expect("record");
        let _ = std::fs::remove_dir_all(&dir);
        (text, verifier)
    })
}

fuzz_target!(|data: &[u8]| {
    let (text, verifier) = genuine();
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = verify_incident_record(s, verifier);
    }
    if let (Some(&pos), Some(&mask)) = (data.first(), data.get(1)) {
        let at =
            (usize::from(pos) << 8 | usize::from(data.get(2).copied().unwrap_or(0))) % text.len();
        if mask != 0 {
            let mut bytes = text.as_bytes().to_vec();
            bytes[at] ^= mask;
            if let Ok(s) = String::from_utf8(bytes) {
                assert!(verify_incident_record(&s, verifier).is_err());
            }
        }
    }
});
