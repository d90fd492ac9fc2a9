//! The load generator's lean client and generator threads, against a real daemon.

mod common;

use std::time::Duration;

use tracehound_daemon::load::{run_tuned, ClientKind, LoadOptions, Mode, Tuning};
use tracehound_daemon::DaemonConfig;
use tracehound_rpc::direct::{connect_direct, CallError};
use tracehound_rpc::pb;

fn options(target: String, clients: usize) -> LoadOptions {
    LoadOptions {
        target,
        mode: Mode::Unary,
        clients,
        duration: Duration::from_millis(600),
        batch_size: 1,
        threat_ratio: 0.2,
        sources: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lean_clients_on_generator_threads_are_all_answered_and_counted() {
    let d = common::start(DaemonConfig::default()).await;
    let target = d.socket().to_str().unwrap().to_owned();
    let tuning = Tuning {
        client: ClientKind::Lean,
        threads: 2,
        daemon_pid: Some(std::process::id()),
    };
    let report = run_tuned(options(target, 3), tuning).await.unwrap();
    assert_eq!(report.failures, 0, "{:?}", report.errors);
    assert_eq!((report.client, report.threads), (ClientKind::Lean, 2));
    assert!(report.intercepts > 0);
    let clean = report.statuses.get("clean").copied().unwrap_or(0);
    let quarantined = report.statuses.get("quarantined").copied().unwrap_or(0);
    assert!(clean > 0 && quarantined > 0, "{:?}", report.statuses);
    assert_eq!(clean + quarantined, report.intercepts);
    // The daemon answered exactly the calls the generator counted.
    let mut client = tracehound_rpc::connect(d.socket().to_str().unwrap())
        .await
        .unwrap();
    let s = client
        .stats(pb::StatsRequest { top: 0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.total_intercepts, report.intercepts);
    assert_eq!((s.clean, s.quarantined), (clean, quarantined));
    // Both processes are this one here, so both CPU readings exist.
    let cpu = report.cpu.expect("CPU time measured");
    assert!(cpu.daemon_us_per_call.is_some());
}

#[tokio::test]
async fn channel_clients_on_generator_threads_match_the_daemon_count() {
    let d = common::start(DaemonConfig::default()).await;
    let target = d.socket().to_str().unwrap().to_owned();
    let tuning = Tuning {
        client: ClientKind::Channel,
        threads: 2,
        daemon_pid: None,
    };
    let report = run_tuned(options(target.clone(), 2), tuning).await.unwrap();
    assert_eq!(report.failures, 0, "{:?}", report.errors);
    assert!(report.intercepts > 0);
    let mut client = tracehound_rpc::connect(&target).await.unwrap();
    let s = client
        .stats(pb::StatsRequest { top: 0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.total_intercepts, report.intercepts);
}

#[tokio::test]
async fn the_lean_client_answers_like_the_tonic_client() {
    let d = common::start(DaemonConfig::default()).await;
    let target = d.socket().to_str().unwrap().to_owned();
    let (mut lean, driver) = connect_direct(&target).await.unwrap();
    let driving = tokio::spawn(driver);
    let mut tonic = tracehound_rpc::connect(&target).await.unwrap();

    // The same kinds of scent through both clients get the same kinds of answer.
    let clean = common::req("10.0.0.8", "{\"path\":\"/a\"}", None, 3);
    let by_lean = lean.intercept(&clean).await.unwrap();
    let by_tonic = tonic.intercept(clean).await.unwrap().into_inner();
    assert_eq!((by_lean.status(), by_lean.sequence), (pb::Status::Clean, 3));
    assert_eq!(
        (by_tonic.status(), by_tonic.sequence),
        (pb::Status::Clean, 3)
    );
    let threat = |payload: &str| common::req("10.0.0.9", payload, Some(("injection", "high")), 4);
    let by_lean = lean.intercept(&threat("{\"q\":1}")).await.unwrap();
    let by_tonic = tonic
        .intercept(threat("{\"q\":2}"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_lean.status(), pb::Status::Quarantined);
    assert_eq!(by_tonic.status(), pb::Status::Quarantined);
    assert_eq!(by_lean.sequence, 4);
    assert!(!by_lean.signature.is_empty());
    assert_ne!(by_lean.signature, by_tonic.signature, "distinct payloads");

    // A daemon-side refusal arrives as a reply status, not a transport error.
    let bad = common::req("10.0.0.9", "not json", None, 5);
    let refused = lean.intercept(&bad).await.unwrap();
    assert_eq!(refused.status(), pb::Status::Error);
    driving.abort();
}

#[tokio::test]
async fn the_lean_client_reports_a_missing_daemon_and_a_dead_connection() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("none.sock");
    assert!(connect_direct(nowhere.to_str().unwrap()).await.is_err());

    let d = common::start(DaemonConfig::default()).await;
    let target = d.socket().to_str().unwrap().to_owned();
    let (mut lean, driver) = connect_direct(&target).await.unwrap();
    // The connection's driver is gone: the call fails instead of hanging.
    drop(driver);
    // (The timeout only gives up on a hang, which is the failure being tested.)
    let answer = tokio::time::timeout(
        Duration::from_secs(30),
        lean.intercept(&common::req("10.0.0.1", "{}", None, 1)),
    )
    .await;
    assert!(matches!(answer, Ok(Err(CallError::Http2(_)))), "{answer:?}");
}
