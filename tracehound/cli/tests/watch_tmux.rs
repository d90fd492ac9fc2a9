//! `tracehound watch` in a real terminal: a detached tmux session of fixed size runs the
//! dashboard against an in-process daemon under load; the test reads the screen with
//! `tmux capture-pane` and checks its content (counts that are non-zero and move, the
//! daemon lost and found again, a clean exit on `q`).
//!
//! Needs tmux (`apt-get install -y tmux`). Without it the test fails under `CI=true` and
//! is skipped, with a message, elsewhere.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// Generous: the checks poll the screen until they hold, and only fail at this deadline
/// (a loaded CI machine is slow, the content is what matters).
const DEADLINE: Duration = Duration::from_secs(90);

/// A private tmux server (its own `-L` socket, no user configuration), killed on drop so
/// a failing test leaves nothing behind.
struct Tmux {
    server: String,
    config: std::path::PathBuf,
}

impl Tmux {
    fn new(dir: &Path) -> Self {
        let config = dir.join("tmux.conf");
        // No user configuration: a fixed, empty one.
        std::fs::write(&config, "").expect("tmux config");
        Self {
            server: format!("tracehound-watch-test-{}", std::process::id()),
            config,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.server)
            .arg("-f")
            .arg(&self.config)
            .args(args)
            .output()
            .expect("run tmux")
    }

    /// The main session's screen.
    fn capture(&self) -> String {
        self.capture_in("watch")
    }

    fn capture_in(&self, session: &str) -> String {
        let o = self.run(&["capture-pane", "-p", "-t", session]);
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn pane_in(&self, session: &str, format: &str) -> String {
        let o = self.run(&["display-message", "-p", "-t", session, format]);
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    }
}

/// Starts `tracehound watch` in a new 160x50 session. A shell around it prints its exit
/// status on the screen and keeps the pane open (tmux's own `pane_dead_status` is not
/// always filled in).
fn start_watch(tmux: &Tmux, session: &str, socket: &str) {
    let o = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        session,
        "-x",
        "160",
        "-y",
        "50",
        "sh",
        "-c",
        "\"$@\"; echo \"watch exited with status $?\"; exec sleep 600",
        "sh",
        env!("CARGO_BIN_EXE_tracehound"),
        "watch",
        "--socket",
        socket,
        "--interval",
        "100ms",
    ]);
    assert!(
        o.status.success(),
        "tmux new-session: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn tmux_available() -> bool {
    match Command::new("tmux").arg("-V").output() {
        Ok(o) if o.status.success() => true,
        _ => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "tmux is required for the dashboard test (apt-get install -y tmux)"
            );
            eprintln!("SKIPPED: tmux not installed (apt-get install -y tmux)");
            false
        }
    }
}

/// The number after `label` on the screen, if shown.
fn number_after(screen: &str, label: &str) -> Option<u64> {
    let (_, rest) = screen.split_once(label)?;
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Captures the main session until `check` accepts the screen.
fn wait_for<T>(tmux: &Tmux, what: &str, check: impl FnMut(&str) -> Option<T>) -> T {
    wait_for_in(tmux, "watch", what, check)
}

/// Captures `session` until `check` accepts the screen; panics with the last screen at
/// the deadline.
fn wait_for_in<T>(
    tmux: &Tmux,
    session: &str,
    what: &str,
    mut check: impl FnMut(&str) -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        let screen = tmux.capture_in(session);
        if let Some(found) = check(&screen) {
            return found;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "screen never showed {what}; last screen:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts a task that intercepts scents until `stop`: 40 sources, one in ten a threat.
fn load(rt: &tokio::runtime::Runtime, socket: &Path, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>) {
    let target = unix_target(socket);
    rt.spawn(async move {
        let Ok(mut client) = tracehound_rpc::connect(&target).await else {
            return;
        };
        let mut i: u64 = 0;
        while !stop.load(Ordering::Relaxed) {
            let threat = i.is_multiple_of(10).then_some(("injection", "medium"));
            let req = scent(&format!("10.1.0.{}", i % 40), &json!({"i": i}), threat);
            if client.intercept(req).await.is_err() {
                return;
            }
            sent.fetch_add(1, Ordering::Relaxed);
            i += 1;
            // Yield a little so the daemon's Stats calls are never starved.
            if i.is_multiple_of(64) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
}

#[test]
fn watch_shows_moving_counts_survives_a_restart_and_quits_on_q() {
    if !tmux_available() {
        return;
    }
    let rt = runtime();
    let (dir, socket) = socket_dir();
    let daemon = start_daemon(&rt, &socket, 1_000_000_000);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    load(&rt, &socket, Arc::clone(&stop), Arc::clone(&sent));

    let tmux = Tmux::new(dir.path());
    let sock = socket.to_str().expect("utf-8 temp path");
    start_watch(&tmux, "watch", sock);

    // Non-zero counts on a connected screen, then a later screen with a different count.
    let first = wait_for(&tmux, "a connected screen with intercepts", |s| {
        let n = number_after(s, "total intercepts:")?;
        (s.contains("● connected") && n > 0).then_some(n)
    });
    let second = wait_for(&tmux, "the count moving", |s| {
        let n = number_after(s, "total intercepts:")?;
        (n > first).then_some(n)
    });
    assert!(second > first);
    let screen = tmux.capture();
    // Shown with --nocapture, and kept in the output of a failing run.
    eprintln!("dashboard under load:\n{screen}");
    for panel in [
        "Throughput",
        "Results by kind",
        "Quarantine",
        "Top sources",
        "Recent threats",
        "audit chain:",
        "notifications dropped:",
    ] {
        assert!(screen.contains(panel), "{panel:?} missing:\n{screen}");
    }
    // Threats were sent: the quarantine holds some and the recent list names them.
    wait_for(&tmux, "quarantined evidence and a recent threat", |s| {
        let held = number_after(s, "items")?;
        (held > 0 && s.contains("injection:")).then_some(())
    });
    wait_for(&tmux, "a load source among the top sources", |s| {
        s.contains("10.1.0.").then_some(())
    });

    // Lose the daemon: the screen says so and the dashboard keeps running.
    stop.store(true, Ordering::Relaxed);
    rt.block_on(daemon.shutdown());
    wait_for(&tmux, "disconnected", |s| {
        s.contains("○ disconnected").then_some(())
    });
    let screen = tmux.capture();
    assert!(
        !screen.contains("watch exited"),
        "watch exited when the daemon went away:\n{screen}"
    );

    // A new daemon on the same socket: reconnected, counting from its own zero.
    let daemon = start_daemon(&rt, &socket, 1_000_000_000);
    let again = intercept_all(
        &rt,
        &socket,
        vec![scent("10.2.0.1", &json!({"x": 1}), None); 7],
    );
    assert_eq!(again.len(), 7);
    wait_for(&tmux, "reconnected to the new daemon", |s| {
        let n = number_after(s, "total intercepts:")?;
        (s.contains("● connected") && n == 7).then_some(())
    });

    // SIGTERM ends a second dashboard cleanly too (status 0, terminal restored).
    start_watch(&tmux, "term", sock);
    wait_for_in(&tmux, "term", "the second dashboard", |s| {
        s.contains("● connected").then_some(())
    });
    let shell = tmux.pane_in("term", "#{pane_pid}");
    let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
        .expect("the shell's children");
    let watch_pid = children.split_whitespace().next().expect("watch's pid");
    let o = Command::new("kill")
        .args(["-TERM", watch_pid])
        .output()
        .expect("kill");
    assert!(o.status.success());
    let status = wait_for_in(&tmux, "term", "watch's exit on SIGTERM", |s| {
        number_after(s, "watch exited with status")
    });
    assert_eq!(status, 0);
    assert!(!tmux.capture_in("term").contains("Throughput"));

    // `q` quits with status 0 and restores the terminal: the alternate screen and the
    // dashboard on it are gone, the shell's line is on the normal screen.
    let o = tmux.run(&["send-keys", "-t", "watch", "q"]);
    assert!(o.status.success());
    let status = wait_for(&tmux, "watch's exit", |s| {
        number_after(s, "watch exited with status")
    });
    assert_eq!(status, 0, "watch's exit status after q");
    let after = tmux.capture();
    assert!(
        !after.contains("Throughput"),
        "dashboard left on screen:\n{after}"
    );
    rt.block_on(daemon.shutdown());
}
