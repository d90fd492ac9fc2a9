//! Shared helpers: a daemon in a temp dir, and requests.
#![allow(dead_code)]

use std::path::PathBuf;

use tracehound_daemon::{Daemon, DaemonConfig, RunningDaemon};
use tracehound_rpc::pb;

pub struct TestDaemon {
    pub daemon: RunningDaemon,
    pub dir: tempfile::TempDir,
}

impl TestDaemon {
    pub fn socket(&self) -> PathBuf {
        self.daemon.socket_path().to_owned()
    }
}

/// A daemon on `DIR/run/d.sock` (the `run` directory is created by the daemon).
pub async fn start(mut config: DaemonConfig) -> TestDaemon {
    let dir = tempfile::tempdir().expect("temp dir");
    config.listen.socket = Some(dir.path().join("run").join("d.sock"));
    config.reload.watch = false;
    let daemon = Daemon::start(config, None).await.expect("daemon starts");
    TestDaemon { daemon, dir }
}

pub fn req(
    source: &str,
    payload: &str,
    threat: Option<(&str, &str)>,
    seq: u64,
) -> pb::InterceptRequest {
    pb::InterceptRequest {
        source: source.into(),
        payload_json: payload.into(),
        threat: threat.map(|(c, s)| pb::Threat {
            category: c.into(),
            severity: s.into(),
        }),
        sequence: seq,
        timestamp_ms: 1_700_000_000_000.0 + seq as f64,
        ..Default::default()
    }
}
