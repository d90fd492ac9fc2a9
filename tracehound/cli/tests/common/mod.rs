//! Shared by the tests that drive a real daemon: one in-process `tracehoundd` on a Unix
//! socket in a temporary directory, a client to feed it scents, and the real binary.

#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tokio::runtime::Runtime;
use tracehound_daemon::config::{ListenConfig, RateLimitSection, ReloadSection};
use tracehound_daemon::{Daemon, DaemonConfig, RunningDaemon};
use tracehound_rpc::pb;

/// A multi-threaded runtime: the daemon keeps serving on its workers while the test's
/// thread waits on the `tracehound` process.
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Starts a daemon on `socket` allowing `max_requests` per source per minute, with no
/// file watching (there is no file).
pub fn start_daemon(rt: &Runtime, socket: &Path, max_requests: usize) -> RunningDaemon {
    start_daemon_with_tcp(rt, socket, max_requests, None)
}

/// As [`start_daemon`], also listening on `tcp` (a loopback address, port 0 for any).
pub fn start_daemon_with_tcp(
    rt: &Runtime,
    socket: &Path,
    max_requests: usize,
    tcp: Option<std::net::SocketAddr>,
) -> RunningDaemon {
    let config = DaemonConfig {
        listen: ListenConfig {
            socket: Some(socket.to_path_buf()),
            tcp,
        },
        rate_limit: RateLimitSection {
            window_ms: 60_000,
            max_requests,
            block_duration_ms: 0,
            ..RateLimitSection::default()
        },
        reload: ReloadSection {
            watch: false,
            ..ReloadSection::default()
        },
        ..DaemonConfig::default()
    };
    rt.block_on(Daemon::start(config, None))
        .expect("daemon starts")
}

/// The target string for a socket path.
pub fn unix_target(socket: &Path) -> String {
    format!("unix:{}", socket.display())
}

/// A scent from `source`; a threat when `threat` names (category, severity).
pub fn scent(
    source: &str,
    payload: &serde_json::Value,
    threat: Option<(&str, &str)>,
) -> pb::InterceptRequest {
    pb::InterceptRequest {
        source: source.to_owned(),
        payload_json: payload.to_string(),
        threat: threat.map(|(category, severity)| pb::Threat {
            category: category.to_owned(),
            severity: severity.to_owned(),
        }),
        ..Default::default()
    }
}

/// Sends scents one by one and returns the replies.
pub fn intercept_all(
    rt: &Runtime,
    socket: &Path,
    scents: Vec<pb::InterceptRequest>,
) -> Vec<pb::InterceptReply> {
    rt.block_on(async {
        let mut client = tracehound_rpc::connect(&unix_target(socket))
            .await
            .expect("client connects");
        let mut replies = Vec::new();
        for s in scents {
            replies.push(client.intercept(s).await.expect("intercept").into_inner());
        }
        replies
    })
}

/// Runs the real `tracehound` binary.
pub fn tracehound(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tracehound"));
    cmd.args(args)
        .env_remove("TRACEHOUND_SOCKET")
        .env_remove("TRACEHOUND_ENDPOINT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run tracehound")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `tracehound ARGS` and parses its standard output as JSON, failing loudly.
pub fn json(args: &[&str]) -> (Output, serde_json::Value) {
    let o = tracehound(args, &[]);
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "tracehound {args:?}: stdout is not JSON ({e}); stdout {:?} stderr {:?}",
            stdout(&o),
            stderr(&o)
        )
    });
    (o, v)
}

/// `v[path...]` as u64, failing with the document when absent.
pub fn num(v: &serde_json::Value, path: &[&str]) -> u64 {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p).unwrap_or_else(|| panic!("no {path:?} in {v}"));
    }
    cur.as_u64()
        .unwrap_or_else(|| panic!("{path:?} is not a number in {v}"))
}

/// A fresh temporary directory and the socket path inside it.
pub fn socket_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("tracehoundd.sock");
    (dir, socket)
}
