//! Shared test helpers: evidence builders and a moto S3 server on loopback.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tracehound_cold::{ColdStore, S3Config};
use tracehound_core::codec::GzipCodec;
use tracehound_core::evidence::{Evidence, EvidenceFactory};
use tracehound_core::types::{Severity, ThreatCategory, ThreatSignal};

/// Evidence for `{"n": n, "pad": "x" * pad}` (uncompressed, as the agent stores it).
pub fn evidence(n: u64, severity: Severity, pad: usize) -> Evidence {
    build(EvidenceFactory::new(), n, severity, pad)
}

/// The same evidence, gzip-compressed in the quarantine.
pub fn compressed_evidence(n: u64, severity: Severity, pad: usize) -> Evidence {
    build(
        EvidenceFactory::with_codec(Arc::new(GzipCodec::new())),
        n,
        severity,
        pad,
    )
}

fn build(factory: EvidenceFactory, n: u64, severity: Severity, pad: usize) -> Evidence {
    let payload = serde_json::json!({ "n": n, "pad": "x".repeat(pad), "who": "203.0.113.9" });
    let threat = ThreatSignal {
        category: ThreatCategory::Injection,
        severity,
    };
    factory
        .create_from(&payload, threat, n as f64, 1 << 24)
        .expect("evidence")
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

/// Whether moto's server module can be imported.
fn moto_installed() -> bool {
    Command::new("python3")
        .args(["-c", "import moto.server"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Starts moto, or returns `None` (with a note) when it is not installed outside CI.
/// Under `CI=true` a missing moto fails the test.
pub fn start_moto() -> Option<Moto> {
    if !moto_installed() {
        let ci = std::env::var("CI").map(|v| v == "true").unwrap_or(false);
        assert!(
            !ci,
            "moto is required under CI=true: pip install 'moto[server]' (scripts/install-test-deps)"
        );
        eprintln!("SKIPPED: moto not installed (pip install 'moto[server]')");
        return None;
    }
    // A free port: bind, read it, release it, hand it to moto. Another process could
    // take it in between; retry a few times if moto does not come up.
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
        // Poll until it answers (bounded number of attempts; moto starts in ~1-2 s).
        for _ in 0..300 {
            if let Ok(Some(_)) = moto.child.try_wait() {
                break; // exited: port taken, try another
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
    /// Creates `bucket` (moto accepts unsigned requests).
    pub fn create_bucket(&self, bucket: &str) {
        let status = http(self.port, "PUT", &format!("/{bucket}")).expect("create bucket");
        assert!(status.contains(" 200"), "create bucket: {status}");
    }

    /// The S3 configuration of this server.
    pub fn config(&self, bucket: &str) -> S3Config {
        S3Config {
            bucket: bucket.to_owned(),
            region: Some("us-east-1".to_owned()),
            endpoint: Some(format!("http://127.0.0.1:{}", self.port)),
            access_key_id: Some("testing".to_owned()),
            secret_access_key: Some("testing".into()),
            session_token: None,
            allow_http: true,
            virtual_hosted_style: false,
        }
    }

    /// A cold store on a fresh bucket.
    pub fn store(&self, bucket: &str) -> ColdStore {
        self.create_bucket(bucket);
        ColdStore::s3(
            &self.config(bucket),
            tracehound_cold::layout::DEFAULT_PREFIX,
        )
        .expect("s3 store")
    }
}
