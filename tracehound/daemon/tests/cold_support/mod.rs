//! Helpers for the cold-storage and lifecycle tests: a daemon with a config file in a
//! temp dir, requests, what is on disk, and a moto S3 server on loopback.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tonic::transport::Channel;
use tracehound_daemon::{Daemon, DaemonConfig, RunningDaemon};
use tracehound_rpc::pb;
use tracehound_rpc::pb::tracehound_client::TracehoundClient;

pub type Client = TracehoundClient<Channel>;

/// A daemon started from `DIR/d.toml` (so reloads re-read it).
pub struct Running {
    pub daemon: RunningDaemon,
    pub dir: tempfile::TempDir,
    pub config_file: PathBuf,
}

/// Writes `toml` (after a `[listen]` table pointing into the temp dir and `[reload]`
/// with the watcher off) to `DIR/d.toml` and starts a daemon on it.
pub async fn start(dir: tempfile::TempDir, toml: &str) -> Running {
    let config_file = dir.path().join("d.toml");
    write_config(dir.path(), &config_file, toml);
    let config = DaemonConfig::load(&config_file).expect("config loads");
    let daemon = Daemon::start(config, Some(config_file.clone()))
        .await
        .expect("daemon starts");
    Running {
        daemon,
        dir,
        config_file,
    }
}

/// Rewrites the config file (same `[listen]`) and reloads it.
pub fn rewrite_and_reload(r: &Running, toml: &str) {
    write_config(r.dir.path(), &r.config_file, toml);
    let outcome = r.daemon.reload().expect("reload accepted");
    assert!(
        outcome.restart_required.is_empty(),
        "{:?}",
        outcome.restart_required
    );
}

fn write_config(dir: &Path, file: &Path, toml: &str) {
    let head = format!(
        "[listen]\nsocket = \"{}\"\n[reload]\nwatch = false\n",
        dir.join("run").join("d.sock").display()
    );
    std::fs::write(file, format!("{head}{toml}")).expect("write config");
}

pub async fn client(r: &Running) -> Client {
    tracehound_rpc::connect(&format!("unix:{}", r.daemon.socket_path().display()))
        .await
        .expect("connect")
}

/// Wall-clock ms (what the daemon's clock reads).
pub fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as f64)
        .unwrap_or(0.0)
}

/// A flagged request captured at `captured_ms` (0: the daemon's clock).
pub fn threat(
    n: u64,
    category: &str,
    severity: &str,
    pad: usize,
    captured_ms: f64,
) -> pb::InterceptRequest {
    pb::InterceptRequest {
        source: format!("10.0.0.{}", n % 250),
        payload_json: format!("{{\"n\":{n},\"pad\":\"{}\"}}", "x".repeat(pad)),
        threat: Some(pb::Threat {
            category: category.into(),
            severity: severity.into(),
        }),
        sequence: n,
        timestamp_ms: captured_ms,
        ..Default::default()
    }
}

/// Intercepts and returns the signature (asserting it was quarantined).
pub async fn quarantine(c: &mut Client, req: pb::InterceptRequest) -> String {
    let r = c.intercept(req).await.expect("intercept").into_inner();
    assert_eq!(r.status(), pb::Status::Quarantined, "{r:?}");
    r.signature
}

pub async fn stats(c: &mut Client) -> pb::StatsReply {
    c.stats(pb::StatsRequest { top: 1 })
        .await
        .expect("stats")
        .into_inner()
}

/// Polls `Stats` until `done` holds (bounded number of polls, not a time threshold).
pub async fn wait_stats(
    c: &mut Client,
    what: &str,
    done: impl Fn(&pb::StatsReply) -> bool,
) -> pb::StatsReply {
    for _ in 0..2000 {
        let s = stats(c).await;
        if done(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never reached: {what}; last stats {:?}", stats(c).await);
}

/// Evidence objects under `dir` (the local cold store): category → (count, bytes), and
/// every object path.
pub fn on_disk(dir: &Path) -> (BTreeMap<String, (u64, u64)>, Vec<PathBuf>) {
    let mut totals: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "thcs") {
                // .../{category}/{shard}/{hash}.thcs
                let category = path
                    .parent()
                    .and_then(Path::parent)
                    .and_then(Path::file_name)
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                let t = totals.entry(category).or_default();
                t.0 += 1;
                t.1 += size;
                files.push(path);
            }
        }
    }
    files.sort();
    (totals, files)
}

/// The cold side of `Stats.cost_by_category`: category → (count, bytes), empty ones left
/// out.
pub fn cold_cost(s: &pb::StatsReply) -> BTreeMap<String, (u64, u64)> {
    s.cost_by_category
        .iter()
        .filter(|(_, c)| c.cold_count > 0)
        .map(|(k, c)| (k.clone(), (c.cold_count, c.cold_bytes)))
        .collect()
}

/// A moto S3 server on 127.0.0.1, killed on drop.
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_installed() -> bool {
    Command::new("python3")
        .args(["-c", "import moto.server"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Starts moto, or `None` (with a note) when it is not installed outside CI. Under
/// `CI=true` a missing moto fails the test.
pub fn start_moto() -> Option<Moto> {
    if !moto_installed() {
        let ci = std::env::var("CI").map(|v| v == "true").unwrap_or(false);
        assert!(
            !ci,
            "moto is required under CI=true (scripts/install-test-deps)"
        );
        eprintln!("SKIPPED: moto not installed (pip install 'moto[server]')");
        return None;
    }
    for _ in 0..5 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn moto");
        let mut moto = Moto { child, port };
        for _ in 0..300 {
            if let Ok(Some(_)) = moto.child.try_wait() {
                break;
            }
            if http(port, "GET", "/").is_some() {
                return Some(moto);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("moto server did not start");
}

/// One HTTP/1.1 request with an empty body; returns the status line.
pub fn http(port: u16, method: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out);
    let line = text.lines().next()?.to_owned();
    line.starts_with("HTTP/1.").then_some(line)
}

impl Moto {
    /// Creates `bucket` and returns the `[cold.s3]` table for it.
    pub fn bucket_toml(&self, bucket: &str) -> String {
        let status = http(self.port, "PUT", &format!("/{bucket}")).expect("create bucket");
        assert!(status.contains(" 200"), "create bucket: {status}");
        format!(
            "[cold.s3]\nbucket = \"{bucket}\"\nregion = \"us-east-1\"\n\
             endpoint = \"http://127.0.0.1:{}\"\naccess_key_id = \"testing\"\n\
             secret_access_key = \"testing\"\nallow_http = true\n",
            self.port
        )
    }
}
