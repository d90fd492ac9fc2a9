//! Hot reload under load: the real `tracehoundd` binary serves unary and batch clients
//! while its config file is rewritten and SIGHUP is sent again and again. Every request
//! must be answered (failures counted, must be zero), every valid rewrite must raise
//! `config_generation`, every invalid one must be refused (counted) and logged with file,
//! line and field.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rustix::process::{kill_process, Pid, Signal};
use tracehound_daemon::load::{self, LoadOptions, Mode};
use tracehound_rpc::pb;

fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn config(socket: &Path, payload_limit: usize, max_requests: usize) -> String {
    format!(
        "[listen]\nsocket = \"{}\"\n[limits]\nmax_payload_size = {payload_limit}\n\
         [rate_limit]\nmax_requests = {max_requests}\n[reload]\nwatch = true\ndebounce_ms = 20\n",
        socket.display()
    )
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_for<F: Fn(&pb::StatsReply) -> bool>(
    client: &mut pb::tracehound_client::TracehoundClient<tonic::transport::Channel>,
    what: &str,
    ok: F,
) -> pb::StatsReply {
    // A liveness bound, not a performance threshold: reloads take milliseconds.
    for _ in 0..1000 {
        let s = client
            .stats(pb::StatsRequest { top: 1 })
            .await
            .unwrap()
            .into_inner();
        if ok(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_load_drop_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("d.sock");
    let conf = dir.path().join("tracehoundd.toml");
    write_atomically(&conf, &config(&socket, 1000, 100));
    // The log goes to a file, not a pipe: nobody reads a pipe until the end, and a full
    // pipe would block the daemon's logging.
    let log_path = dir.path().join("tracehoundd.log");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_tracehoundd"))
        .arg("--config")
        .arg(&conf)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    let pid = Pid::from_child(&child.0);
    let target = socket.to_str().unwrap().to_owned();
    let mut client = None;
    for _ in 0..500 {
        if let Ok(c) = tracehound_rpc::connect(&target).await {
            client = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut client = client.expect("daemon came up");

    let opts = |mode, clients| LoadOptions {
        target: target.clone(),
        mode,
        clients,
        duration: Duration::from_secs(4),
        batch_size: 64,
        threat_ratio: 0.05,
        sources: 0,
    };
    let unary = tokio::spawn(load::run(opts(Mode::Unary, 4)));
    let batch = tokio::spawn(load::run(opts(Mode::Batch, 2)));

    let mut generation = wait_for(&mut client, "start", |s| s.config_generation >= 1)
        .await
        .config_generation;
    let (mut valid, mut invalid) = (0u64, 0u64);
    let mut i = 0usize;
    while !(unary.is_finished() && batch.is_finished()) {
        i += 1;
        if i.is_multiple_of(5) {
            write_atomically(&conf, "[limits]\nmax_payload_sise = 5\n");
            kill_process(pid, Signal::HUP).unwrap();
            invalid += 1;
            let want = invalid;
            wait_for(&mut client, "a refused reload", |s| {
                s.reload_failures >= want
            })
            .await;
        } else {
            write_atomically(&conf, &config(&socket, 1000 + i, 50 + i % 7));
            kill_process(pid, Signal::HUP).unwrap();
            valid += 1;
            let before = generation;
            generation = wait_for(&mut client, "a reload", |s| s.config_generation > before)
                .await
                .config_generation;
        }
    }
    let unary = unary.await.unwrap().unwrap();
    let batch = batch.await.unwrap().unwrap();
    let stats = client
        .stats(pb::StatsRequest { top: 1 })
        .await
        .unwrap()
        .into_inner();

    assert!(
        valid >= 3 && invalid >= 1,
        "valid {valid} invalid {invalid}"
    );
    assert_eq!(unary.failures, 0, "unary errors: {:?}", unary.errors);
    assert_eq!(batch.failures, 0, "batch errors: {:?}", batch.errors);
    assert!(unary.intercepts > 0 && batch.intercepts > 0);
    // SIGHUP and the file watch may both reload one rewrite: at least one per rewrite.
    assert!(
        stats.config_generation > valid,
        "generation {} after {valid} rewrites",
        stats.config_generation
    );
    assert!(stats.reload_failures >= invalid);
    // Every answered request was counted by the daemon.
    assert!(stats.total_intercepts >= unary.intercepts + batch.intercepts);

    kill_process(pid, Signal::TERM).unwrap();
    let _ = child.0.wait();
    let log = std::fs::read_to_string(&log_path).unwrap();
    let want = format!("{}:2: field `limits.max_payload_sise`", conf.display());
    assert!(
        log.contains("reload refused") && log.contains(&want),
        "log: {log}"
    );
}
