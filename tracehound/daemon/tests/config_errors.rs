//! A malformed configuration is refused with file, line and field, by the library and by
//! `tracehoundd --check-config`.

use std::process::Command;

use tracehound_daemon::{ConfigError, DaemonConfig};

const BAD: &str = "# tracehoundd\n[limits]\nmax_payload_size = 4096\n\n[rate_limit]\nwindow_ms = 1000\nmax_requets = 10\n";

#[test]
fn library_names_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tracehoundd.toml");
    std::fs::write(&path, BAD).unwrap();
    match DaemonConfig::load(&path) {
        Err(ConfigError::Invalid {
            file,
            line,
            field,
            message,
        }) => {
            assert_eq!(file, path);
            assert_eq!(line, 7);
            assert_eq!(field, "rate_limit.max_requets");
            assert!(message.contains("unknown field"), "{message}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn check_config_binary_exits_nonzero_naming_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tracehoundd.toml");
    std::fs::write(&path, BAD).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tracehoundd"))
        .arg("--config")
        .arg(&path)
        .arg("--check-config")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!("{}:7: field `rate_limit.max_requets`", path.display());
    assert!(err.contains(&want), "stderr: {err}");

    std::fs::write(&path, "[rate_limit]\nmax_requests = 0\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tracehoundd"))
        .args(["--check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(":2: field `rate_limit.max_requests`: must be positive"),
        "{err}"
    );

    std::fs::write(&path, "[limits]\nmax_payload_size = 10\n").unwrap();
    let ok = Command::new(env!("CARGO_BIN_EXE_tracehoundd"))
        .args(["--check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}
