//! `tracehound erase` against a real in-process daemon: by source and by signature, text
//! and JSON output, and the audit chain verifying afterwards.

mod common;

use common::*;
use serde_json::json;
use tracehound_rpc::pb;

#[test]
fn erase_by_source_and_by_signature() {
    let rt = runtime();
    let (_dir, socket) = socket_dir();
    let daemon = start_daemon(&rt, &socket, 100);
    let sock = socket.to_str().expect("utf-8 temp path");
    let scents = vec![
        scent("10.9.9.1", &json!({"q": "a"}), Some(("injection", "high"))),
        scent("10.9.9.1", &json!({"q": "b"}), Some(("injection", "high"))),
        scent("10.9.9.2", &json!({"q": "c"}), Some(("spam", "low"))),
    ];
    let replies = intercept_all(&rt, &socket, scents);
    assert!(replies
        .iter()
        .all(|r| r.status == pb::Status::Quarantined as i32));

    let (o, v) = json(&["erase", "--source", "10.9.9.1", "--json", "--socket", sock]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(num(&v, &["quarantine_removed"]), 2);
    assert_eq!(v["signatures"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["audit_indexes"], json!([0, 1]));
    assert_eq!(v["coverage_complete"], json!(true));

    let sig = &replies[2].signature;
    let o = tracehound(&["erase", "--signature", sig, "--socket", sock], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.starts_with("erased 1 signature(s): 1 quarantined"),
        "{text}"
    );
    assert!(text.contains(&format!("{sig}  audit record 2")), "{text}");

    // Exactly one selector.
    let o = tracehound(&["erase", "--socket", sock], &[]);
    assert!(!o.status.success());
    let o = tracehound(&["erase", "--signature", "nope", "--socket", sock], &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("InvalidArgument"), "{}", stderr(&o));

    let (o, chain) = json(&["verify-chain", "--json", "--socket", sock]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(num(&chain, &["length"]), 3);
    let (o, stats) = json(&["stats", "--json", "--socket", sock]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(num(&stats, &["quarantine", "count"]), 0);
    drop(daemon);
}
