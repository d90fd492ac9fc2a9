//! `tracehound cold get|evacuate` and the cold-storage lines of `tracehound stats`
//! against a real in-process daemon with `[cold]` on a local directory.

mod common;

use common::*;
use serde_json::json;
use tracehound_daemon::config::ColdSection;
use tracehound_daemon::{Daemon, DaemonConfig};
use tracehound_rpc::pb;

#[test]
fn cold_commands_move_and_verify_evidence() {
    let rt = runtime();
    let (dir, socket) = socket_dir();
    let sock = socket.to_str().expect("utf-8 temp path");
    let cold_dir = dir.path().join("cold");
    let config: DaemonConfig = DaemonConfig::parse(
        &format!(
            "[listen]\nsocket = \"{sock}\"\n[reload]\nwatch = false\n[cold.local]\npath = \"{}\"\n",
            cold_dir.display()
        ),
        std::path::Path::new("d.toml"),
    )
    .expect("config");
    assert!(matches!(config.cold, Some(ColdSection(_))));
    let daemon = rt
        .block_on(Daemon::start(config, None))
        .expect("daemon starts");
    let replies = intercept_all(
        &rt,
        &socket,
        vec![
            scent(
                "10.0.0.1",
                &json!({"a": 1, "m": MARKER}),
                Some(("spam", "low")),
            ),
            scent(
                "10.0.0.1",
                &json!({"a": 2, "m": MARKER}),
                Some(("spam", "high")),
            ),
            scent(
                "10.0.0.2",
                &json!({"b": 3, "m": MARKER}),
                Some(("ddos", "low")),
            ),
        ],
    );
    assert!(replies
        .iter()
        .all(|r| r.status == pb::Status::Quarantined as i32));
    let first = replies[0].signature.clone();
    // Everything every command printed, to check that no payload text ever shows.
    let mut seen = String::new();

    // Not in cold storage yet: exit 1.
    let o = tracehound(&["cold", "get", &first, "--socket", sock], &[]);
    seen.push_str(&all_output(&o));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));

    // One by signature, then everything of a category.
    let (o, v) = json(&[
        "cold",
        "evacuate",
        "--signature",
        &first,
        "--json",
        "--socket",
        sock,
    ]);
    seen.push_str(&all_output(&o));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(v["evacuated"][0]["signature"], first.as_str());
    assert_eq!(num(&v, &["cold", "objects_written"]), 1);
    let o = tracehound(
        &["cold", "evacuate", "--category", "spam", "--socket", sock],
        &[],
    );
    seen.push_str(&all_output(&o));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("1 evacuated"), "{}", stdout(&o));
    // A selector is required, and --all excludes the filters.
    let o = tracehound(&["cold", "evacuate", "--socket", sock], &[]);
    seen.push_str(&all_output(&o));
    assert!(!o.status.success());
    let o = tracehound(
        &[
            "cold",
            "evacuate",
            "--all",
            "--severity",
            "low",
            "--socket",
            sock,
        ],
        &[],
    );
    seen.push_str(&all_output(&o));
    assert!(!o.status.success());

    // Verified metadata, never the bytes.
    let (o, v) = json(&["cold", "get", &first, "--json", "--socket", sock]);
    seen.push_str(&all_output(&o));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(v["verified"], true);
    assert_eq!(v["severity"], "low");
    assert!(v.get("payload").is_none());
    let o = tracehound(&["cold", "get", &first, "--socket", sock], &[]);
    seen.push_str(&all_output(&o));
    assert!(stdout(&o).contains("verified"), "{}", stdout(&o));

    // Stats: cold storage and cost by category, in text and JSON.
    let (o, v) = json(&["stats", "--json", "--socket", sock]);
    seen.push_str(&all_output(&o));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(num(&v, &["cold", "stored_objects"]), 2);
    assert_eq!(num(&v, &["cost_by_category", "spam", "cold_count"]), 2);
    assert_eq!(num(&v, &["cost_by_category", "ddos", "memory_count"]), 1);
    let o = tracehound(&["stats", "--socket", sock], &[]);
    seen.push_str(&all_output(&o));
    let text = stdout(&o);
    assert!(text.contains("cold storage        2 objects"), "{text}");
    assert!(text.contains("cost by category"), "{text}");

    // A damaged object: exit 2 and the reason.
    let files = walk(&cold_dir);
    assert_eq!(files.len(), 2);
    for f in &files {
        let mut b = std::fs::read(f).unwrap();
        let last = b.len() - 1;
        b[last] ^= 0x55;
        std::fs::write(f, b).unwrap();
    }
    let o = tracehound(&["cold", "get", &first, "--socket", sock], &[]);
    seen.push_str(&all_output(&o));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stdout(&o).contains("CORRUPT"), "{}", stdout(&o));
    assert!(seen.contains(&first), "outputs were not collected");
    assert!(
        !seen.contains(MARKER),
        "payload text appeared in command output"
    );
    rt.block_on(daemon.shutdown());
}

/// A string only the payloads contain.
const MARKER: &str = "payload-marker-3f9c2a";

/// A command's stdout and stderr together.
fn all_output(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}
