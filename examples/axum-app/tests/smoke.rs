//! Runs the example binary on 127.0.0.1:0 and talks HTTP/1.1 to it over a plain socket.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

struct App {
    child: Child,
    port: u16,
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the example with `args`; waits for its "listening on" line.
fn start(args: &[&str]) -> App {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tracehound-example-axum"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .expect("example starts");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut line = String::new();
    BufReader::new(stderr)
        .read_line(&mut line)
        .expect("first line");
    let port = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    App { child, port }
}

/// One request; returns (status, body).
fn request(app: &App, method: &str, target: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).expect("connect");
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nhost: example\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad response {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn the_toy_detector_gets_tautologies_quarantined() {
    let app = start(&[]);
    assert_eq!(request(&app, "GET", "/", ""), (200, "Hello, world!".into()));
    assert_eq!(request(&app, "GET", "/search?q=shoes", "").0, 200);
    assert_eq!(request(&app, "GET", "/search?q=%27%20OR%201=1", "").0, 403);
    assert_eq!(
        request(&app, "POST", "/login", "user=admin' or 1=1--").0,
        403
    );
    assert_eq!(request(&app, "POST", "/login", "user=admin").0, 200);
    let (status, counters) = request(&app, "GET", "/tracehound", "");
    assert_eq!(status, 200);
    let counters: serde_json::Value = serde_json::from_str(counters.trim()).expect("JSON");
    assert_eq!(counters["layer"]["quarantined"], 2);
    assert_eq!(counters["layer"]["detector_flagged"], 2);
    assert_eq!(counters["quarantine_count"], 2);
}

#[test]
fn without_the_layer_nothing_is_judged() {
    let app = start(&["--no-layer"]);
    assert_eq!(request(&app, "GET", "/search?q=%27%20OR%201=1", "").0, 200);
    let (_, counters) = request(&app, "GET", "/tracehound", "");
    assert!(counters.contains("\"layer\":null"), "{counters}");
}

#[test]
fn the_rate_limit_answers_429() {
    let app = start(&["--rate-limit", "2"]);
    let statuses: Vec<u16> = (0..4).map(|_| request(&app, "GET", "/", "").0).collect();
    assert_eq!(statuses, vec![200, 200, 429, 429]);
}
