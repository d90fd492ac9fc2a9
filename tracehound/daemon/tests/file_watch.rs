//! The config file watch alone (no SIGHUP) applies valid rewrites and refuses bad ones,
//! keeping the running configuration.

use std::time::Duration;

use tracehound_daemon::{Daemon, DaemonConfig};
use tracehound_rpc::pb;

fn write_atomically(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test]
async fn rewriting_the_file_reloads_it() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("d.toml");
    let socket = dir.path().join("d.sock");
    let text = |limit: usize| {
        format!(
            "[listen]\nsocket = \"{}\"\n[limits]\nmax_payload_size = {limit}\n[reload]\ndebounce_ms = 20\n",
            socket.display()
        )
    };
    write_atomically(&conf, &text(100));
    let config = DaemonConfig::load(&conf).unwrap();
    let d = Daemon::start(config, Some(conf.clone())).await.unwrap();
    let mut c = tracehound_rpc::connect(socket.to_str().unwrap())
        .await
        .unwrap();
    let big = pb::InterceptRequest {
        source: "s".into(),
        payload_json: format!("{{\"k\":\"{}\"}}", "x".repeat(150)),
        threat: Some(pb::Threat {
            category: "spam".into(),
            severity: "low".into(),
        }),
        ..Default::default()
    };
    let r = c.intercept(big.clone()).await.unwrap().into_inner();
    assert_eq!((r.status(), r.limit), (pb::Status::PayloadTooLarge, 100));

    write_atomically(&conf, &text(1000));
    // A liveness bound: the watch fires within milliseconds.
    let mut reloaded = false;
    for _ in 0..500 {
        if d.engine().generation() >= 2 {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(reloaded, "file change not picked up");
    let r = c.intercept(big).await.unwrap().into_inner();
    assert_eq!(r.status(), pb::Status::Quarantined);

    let generation = d.engine().generation();
    write_atomically(&conf, "[limits]\nmax_payload_size = -1\n");
    let mut refused = false;
    for _ in 0..500 {
        if d.engine().reload_failures() >= 1 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "bad file not refused");
    assert_eq!(d.engine().generation(), generation);
    assert_eq!(d.engine().config().limits.max_payload_size, 1000);
    // An explicit reload of a bad file reports file, line and field.
    let err = d.reload().unwrap_err().to_string();
    assert!(err.contains(":2: field `limits.max_payload_size`"), "{err}");
    d.shutdown().await;
}
