//! Helpers shared by the integration tests: keys from ssh-keygen, agents started on
//! sockets in temporary directories, and runs of the bench binary with JSON/CSV output.

#![allow(dead_code)] // Each test file uses a different subset.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::Duration;

use serde_json::Value;

/// The bench binary built for these tests.
pub fn bench_bin() -> &'static str {
    env!("CARGO_BIN_EXE_secretivex-bench")
}

/// Generates an unencrypted key (`ssh-keygen -t TYPE [-b BITS]`) at `dir/name`.
pub fn keygen(dir: &Path, name: &str, type_args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(type_args)
        .args(["-q", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success(), "ssh-keygen {type_args:?} failed");
    path
}

/// `SHA256:…` fingerprint of a key file, as ssh-keygen prints it.
pub fn fingerprint(key: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(key)
        .output()
        .expect("ssh-keygen -l runs");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    text.split_whitespace()
        .nth(1)
        .expect("fingerprint field")
        .to_owned()
}

/// Waits until something accepts connections on `sock` (bounded number of attempts).
pub fn wait_for_socket(sock: &Path, child: &mut Child) {
    for _ in 0..400 {
        if UnixStream::connect(sock).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("agent exited early: {status}");
        }
        sleep(Duration::from_millis(25));
    }
    panic!(
        "agent socket {} never accepted a connection",
        sock.display()
    );
}

/// An agent process (OpenSSH's or ours) on a socket in its own temporary directory,
/// killed by PID when dropped.
pub struct Agent {
    pub child: Child,
    pub sock: PathBuf,
}

impl Agent {
    /// Starts `program -D -a SOCK` and waits for the socket.
    pub fn start(program: &Path, sock: PathBuf) -> Agent {
        let mut child = Command::new(program)
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        wait_for_socket(&sock, &mut child);
        Agent { child, sock }
    }

    /// Loads `key` with `ssh-add`.
    pub fn add(&self, key: &Path) {
        let status = Command::new("ssh-add")
            .arg("-q")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.sock)
            .stdout(Stdio::null())
            .status()
            .expect("ssh-add runs");
        assert!(status.success(), "ssh-add {} failed", key.display());
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Result of one bench run.
pub struct BenchRun {
    pub output: Output,
    pub json: Value,
    pub csv: String,
}

impl BenchRun {
    /// A counter from the JSON report.
    pub fn count(&self, field: &str) -> u64 {
        self.json[field]
            .as_u64()
            .unwrap_or_else(|| panic!("no integer {field} in {}", self.json))
    }

    /// Human-readable output for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "status {}\nstdout:\n{}\nstderr:\n{}",
            self.output.status,
            String::from_utf8_lossy(&self.output.stdout),
            String::from_utf8_lossy(&self.output.stderr)
        )
    }
}

/// Runs the bench with `args` plus `--json`/`--csv` into `dir`, and parses both.
pub fn run_bench(dir: &Path, tag: &str, args: &[&str]) -> BenchRun {
    let json_path = dir.join(format!("{tag}.json"));
    let csv_path = dir.join(format!("{tag}.csv"));
    let output = Command::new(bench_bin())
        .args(args)
        .arg("--json")
        .arg(&json_path)
        .arg("--csv")
        .arg(&csv_path)
        .output()
        .expect("bench runs");
    let text = std::fs::read_to_string(&json_path).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); stderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let json: Value = serde_json::from_str(&text).expect("valid JSON report");
    let csv = std::fs::read_to_string(&csv_path).expect("CSV report");
    BenchRun { output, json, csv }
}

/// The fields issue 4 requires in every report.
pub const REQUIRED_FIELDS: [&str; 6] = [
    "ops",
    "ops_per_sec",
    "failures",
    "timeouts",
    "connect_retries",
    "agent_cpu_us_per_op",
];

/// Checks the required JSON fields and that the CSV row carries the same figures.
pub fn assert_report_shape(run: &BenchRun) {
    let j = &run.json;
    for f in REQUIRED_FIELDS {
        assert!(j.get(f).is_some(), "JSON lacks {f}: {j}");
    }
    for q in ["p50", "p90", "p99", "p999", "max"] {
        assert!(
            j["latency_us"][q].is_u64(),
            "JSON lacks latency_us.{q}: {j}"
        );
    }
    for p in ["socket", "mode", "connect", "clients", "payload_bytes"] {
        assert!(j["params"].get(p).is_some(), "JSON lacks params.{p}: {j}");
    }
    assert!(j["ops_per_sec"].is_f64() || j["ops_per_sec"].is_u64());

    let mut lines = run.csv.lines();
    let header: Vec<&str> = lines.next().expect("CSV header").split(',').collect();
    let row: Vec<&str> = lines.next().expect("CSV row").split(',').collect();
    assert!(lines.next().is_none(), "one CSV row only");
    let col = |name: &str| -> &str {
        let i = header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("CSV lacks {name}: {header:?}"));
        row.get(i)
            .copied()
            .unwrap_or_else(|| panic!("short CSV row"))
    };
    for f in ["ops", "failures", "timeouts", "connect_retries"] {
        assert_eq!(col(f), j[f].to_string(), "CSV {f} differs from JSON");
    }
    for q in ["p50", "p90", "p99", "p999", "max"] {
        assert_eq!(
            col(&format!("latency_us_{q}")),
            j["latency_us"][q].to_string()
        );
    }
    assert_eq!(col("clients"), j["params"]["clients"].to_string());
    col("ops_per_sec");
    col("agent_cpu_us_per_op");
}
