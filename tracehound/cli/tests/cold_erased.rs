//! `tracehound cold get` of an erased object: a copy of a sealed cold object put back
//! after an erasure (as a backup or an object version would keep it) reads as erased,
//! exit 3, never as corrupt or found.

mod common;

use common::*;
use serde_json::json;
use tracehound_daemon::{Daemon, DaemonConfig};
use tracehound_rpc::pb;

/// The files under `dir` whose name is `name`.
fn find(dir: &std::path::Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n.to_string_lossy() == name) {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn cold_get_of_an_erased_object_prints_erased_and_exits_3() {
    let rt = runtime();
    let (dir, socket) = socket_dir();
    let sock = socket.to_str().expect("utf-8 temp path");
    let cold_dir = dir.path().join("cold");
    let config = DaemonConfig::parse(
        &format!(
            "[listen]\nsocket = \"{sock}\"\n[reload]\nwatch = false\n[cold.local]\npath = \"{}\"\n\
             [erasure]\nvault_dir = \"{}\"\n",
            cold_dir.display(),
            dir.path().join("vault").display()
        ),
        std::path::Path::new("d.toml"),
    )
    .expect("config");
    let daemon = rt
        .block_on(Daemon::start(config, None))
        .expect("daemon starts");
    let replies = intercept_all(
        &rt,
        &socket,
        vec![scent(
            "10.0.0.9",
            &json!({"k": "v"}),
            Some(("injection", "high")),
        )],
    );
    assert_eq!(replies[0].status, pb::Status::Quarantined as i32);
    let sig = replies[0].signature.clone();
    let o = tracehound(
        &["cold", "evacuate", "--signature", &sig, "--socket", sock],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = tracehound(&["cold", "get", &sig, "--socket", sock], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    let name = format!("{}.thcs", sig.split_once(':').map_or("", |(_, h)| h));
    let files = find(&cold_dir, &name);
    assert_eq!(files.len(), 1, "{files:?}");
    let copy = std::fs::read(&files[0]).expect("object");
    let o = tracehound(&["erase", "--signature", &sig, "--socket", sock], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = tracehound(&["cold", "get", &sig, "--socket", sock], &[]);
    assert_eq!(o.status.code(), Some(1), "gone: {}", stderr(&o));

    // Put the copy back: its key is destroyed, so it can only read as erased.
    if let Some(parent) = files[0].parent() {
        std::fs::create_dir_all(parent).expect("dir");
    }
    std::fs::write(&files[0], &copy).expect("put back");
    let o = tracehound(&["cold", "get", &sig, "--socket", sock], &[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stdout(&o).contains("erased"), "{}", stdout(&o));
    assert!(!stdout(&o).contains("CORRUPT"), "{}", stdout(&o));
    assert!(stderr(&o).contains("was erased"), "{}", stderr(&o));
    let (o, v) = json(&["cold", "get", &sig, "--json", "--socket", sock]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(v["erased"], json!(true));
    assert_eq!(v["verified"], json!(false));
    rt.block_on(daemon.shutdown());
}
