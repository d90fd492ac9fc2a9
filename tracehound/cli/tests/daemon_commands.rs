//! `tracehound status|stats|inspect|verify-chain|snapshot` against a real in-process
//! daemon, checked against the scents the test sent.

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::json;
use tracehound_rpc::pb;

#[test]
fn commands_report_what_the_daemon_saw() {
    let rt = runtime();
    let (dir, socket) = socket_dir();
    // Three requests per source per window: the fourth and fifth from a source are limited.
    let daemon = start_daemon(&rt, &socket, 3);
    let sock = socket.to_str().expect("utf-8 temp path");

    let payloads: Vec<serde_json::Value> = (0..3)
        .map(|i| json!({"q": format!("' OR {i}=1 --"), "path": "/login"}))
        .collect();
    let mut scents = Vec::new();
    for i in 0..3 {
        scents.push(scent("10.0.0.1", &json!({"i": i}), None));
    }
    for p in &payloads {
        scents.push(scent("10.0.0.2", p, Some(("injection", "high"))));
    }
    for i in 0..5 {
        scents.push(scent("10.0.0.3", &json!({"n": i}), None));
    }
    let replies = intercept_all(&rt, &socket, scents);
    let statuses: Vec<i32> = replies.iter().map(|r| r.status).collect();
    let quarantined: Vec<&pb::InterceptReply> = replies
        .iter()
        .filter(|r| r.status == pb::Status::Quarantined as i32)
        .collect();
    assert_eq!(quarantined.len(), 3, "{statuses:?}");
    let sent_sigs: BTreeSet<String> = quarantined.iter().map(|r| r.signature.clone()).collect();
    assert_eq!(sent_sigs.len(), 3);

    // status --json
    let (o, status) = json(&["status", "--json", "--socket", sock]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(status["reachable"], true);
    assert_eq!(status["target"], unix_target(&socket));
    assert_eq!(num(&status, &["total_intercepts"]), 11);
    assert!(num(&status, &["config_generation"]) >= 1);

    // The one-line form names the same facts.
    let o = tracehound(&["status", "--socket", sock], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let line = stdout(&o);
    assert!(line.contains("11 intercepts"), "{line}");
    assert!(line.contains(sock), "{line}");

    // stats --json, through the environment variable this time.
    let o = tracehound(&["stats", "--json"], &[("TRACEHOUND_SOCKET", sock)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stats: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stats JSON");
    assert_eq!(num(&stats, &["total_intercepts"]), 11);
    assert_eq!(num(&stats, &["clean"]), 6);
    assert_eq!(num(&stats, &["quarantined"]), 3);
    assert_eq!(num(&stats, &["rate_limited"]), 2);
    assert_eq!(num(&stats, &["errors"]), 0);
    assert_eq!(num(&stats, &["quarantine", "count"]), 3);
    assert_eq!(num(&stats, &["quarantine", "count_by_severity", "high"]), 3);
    assert_eq!(stats["audit"]["length"], status["audit"]["length"]);
    let recent: BTreeSet<String> = stats["recent_threats"]
        .as_array()
        .expect("recent_threats")
        .iter()
        .filter_map(|t| t["signature"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(recent, sent_sigs);
    let sources = stats["top_sources"].as_array().expect("top_sources");
    let flagged = sources
        .iter()
        .find(|s| s["source"] == "10.0.0.2")
        .unwrap_or_else(|| panic!("10.0.0.2 not among {sources:?}"));
    assert_eq!(flagged["threats"], 3);
    assert_eq!(flagged["intercepts"], 3);

    // The text form.
    let o = tracehound(&["stats", "--socket", sock], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("intercepts          11"), "{text}");
    assert!(text.contains("10.0.0.2"), "{text}");

    // inspect --json: the daemon's metadata, and the signature the offline tool computes
    // from the same payload.
    let first = quarantined.first().expect("a quarantined reply");
    let (o, inspected) = json(&["inspect", &first.signature, "--json", "--socket", sock]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(inspected["found"], true);
    assert_eq!(inspected["signature"], first.signature.as_str());
    assert_eq!(inspected["category"], "injection");
    assert_eq!(inspected["severity"], "high");
    assert_eq!(inspected["hash"], first.hash.as_str());
    assert_eq!(num(&inspected, &["size"]), first.size);
    assert!(
        inspected.get("payload").is_none(),
        "payload bytes must never be shown"
    );
    let payload_file = dir.path().join("payload.json");
    let sent = payloads.first().expect("a payload");
    std::fs::write(&payload_file, sent.to_string()).expect("write payload");
    let o = tracehound(
        &[
            "signature",
            "-c",
            "injection",
            payload_file.to_str().expect("path"),
        ],
        &[],
    );
    assert_eq!(stdout(&o).trim(), first.signature);

    // An unknown signature: found false, exit 1.
    let unknown = format!("injection:{}", "0".repeat(64));
    let (o, missing) = json(&["inspect", &unknown, "--json", "--socket", sock]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(missing["found"], false);
    assert_eq!(missing["signature"], unknown.as_str());

    // verify-chain without a file asks the daemon; over `--endpoint` this time.
    let endpoint = unix_target(&socket);
    let (o, chain) = json(&["verify-chain", "--json", "--endpoint", &endpoint]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(chain["ok"], true);
    assert_eq!(chain["length"], stats["audit"]["length"]);
    assert_eq!(chain["head_hash"], stats["audit"]["head_hash"]);
    let o = tracehound(&["verify-chain", "--socket", sock], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("ok: "), "{}", stdout(&o));

    // snapshot: checked against its SHA-256, to a file and as JSON.
    let (o, snap) = json(&["snapshot", "--json", "--socket", sock]);
    assert!(o.status.success(), "{}", stderr(&o));
    let sha = snap["sha256"].as_str().expect("sha256");
    assert_eq!(sha.len(), 64);
    assert!(snap["snapshot"].is_object(), "{snap}");
    let file = dir.path().join("snapshot.json");
    let o = tracehound(
        &[
            "snapshot",
            "--socket",
            sock,
            "-o",
            file.to_str().expect("path"),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // The file holds exactly the JSON whose SHA-256 the daemon sent (the tool checked it
    // and reports it).
    let reported = stderr(&o);
    let o = tracehound(&["hash", file.to_str().expect("path")], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let file_sha = stdout(&o).trim().to_owned();
    assert!(
        reported.contains(&format!("(sha256 {file_sha})")),
        "{reported} vs {file_sha}"
    );
    let written = std::fs::read(&file).expect("snapshot written");
    assert!(serde_json::from_slice::<serde_json::Value>(&written).is_ok());

    rt.block_on(daemon.shutdown());
}

#[test]
fn an_unreachable_daemon_is_named_and_fails() {
    let (_dir, socket) = socket_dir();
    let sock = socket.to_str().expect("utf-8 temp path");
    let valid_sig = format!("spam:{}", "a".repeat(64));
    for args in [
        vec!["status"],
        vec!["stats"],
        vec!["inspect", &valid_sig],
        vec!["verify-chain"],
        vec!["snapshot"],
    ] {
        let mut all = args.clone();
        all.extend(["--socket", sock]);
        let o = tracehound(&all, &[]);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = stderr(&o);
        assert!(err.contains("not reachable"), "{args:?}: {err}");
        assert!(err.contains(sock), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // A malformed signature is named before any connection is tried.
    let o = tracehound(&["inspect", "injection:00", "--socket", sock], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("is not a signature"), "{}", stderr(&o));
    // status --json still prints a document for scripts.
    let (o, v) = json(&["status", "--json", "--socket", sock]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(v["reachable"], false);
    assert!(v["error"].as_str().is_some_and(|e| e.contains(sock)), "{v}");
}

#[test]
fn the_loopback_endpoint_reaches_the_same_daemon() {
    let rt = runtime();
    let (_dir, socket) = socket_dir();
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let daemon = start_daemon_with_tcp(&rt, &socket, 100, Some(loopback));
    let addr = daemon.tcp_addr().expect("a TCP address");
    let sent = vec![scent("192.0.2.1", &json!({"a": 1}), None); 4];
    assert_eq!(intercept_all(&rt, &socket, sent).len(), 4);
    let endpoint = format!("http://{addr}");
    // --endpoint wins over a socket that does not exist.
    let (o, stats) = json(&[
        "stats",
        "--json",
        "--endpoint",
        &endpoint,
        "--socket",
        "/nonexistent/tracehoundd.sock",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(num(&stats, &["total_intercepts"]), 4);
    assert_eq!(num(&stats, &["clean"]), 4);
    rt.block_on(daemon.shutdown());
}
