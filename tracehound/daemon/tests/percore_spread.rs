//! Per-core serving over a real Unix socket: connections are spread over the serving
//! threads by open-connection count, closed ones stop counting, and a graceful stop lets
//! calls in flight finish.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_stream::StreamExt;
use tonic::transport::{Channel, Server};
use tracehound_daemon::engine::Engine;
use tracehound_daemon::percore::{serve_unix, PerCore};
use tracehound_daemon::{DaemonConfig, TracehoundService};
use tracehound_rpc::pb;
use tracehound_rpc::pb::tracehound_client::TracehoundClient;
use tracehound_rpc::pb::tracehound_server::TracehoundServer;

/// Short sleeps for the few conditions only observable by polling (a bounded number).
const POLL: Duration = Duration::from_millis(10);
const POLLS: usize = 1000;

struct Serving {
    _dir: tempfile::TempDir,
    path: PathBuf,
    engine: Arc<Engine>,
    stop: watch::Sender<bool>,
    per_core: PerCore,
}

impl Serving {
    fn start(threads: usize) -> Serving {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("d.sock");
        let engine = Arc::new(Engine::new(DaemonConfig::default(), None).expect("engine"));
        let listener = tokio::net::UnixListener::bind(&path).expect("bind");
        let (stop, rx) = watch::channel(false);
        let per_core = serve_unix(
            listener,
            threads,
            || {
                Server::builder().add_service(TracehoundServer::new(TracehoundService::new(
                    Arc::clone(&engine),
                )))
            },
            rx,
        )
        .expect("serving threads");
        Serving {
            _dir: dir,
            path,
            engine,
            stop,
            per_core,
        }
    }

    async fn client(&self) -> TracehoundClient<Channel> {
        tracehound_rpc::connect(self.path.to_str().expect("utf-8 path"))
            .await
            .expect("connects")
    }

    /// Stops, and waits for every serving thread to have drained.
    async fn stop(mut self) {
        self.stop.send_replace(true);
        for handle in self.per_core.handles.drain(..) {
            handle.await.expect("not cut").expect("served");
        }
        assert_eq!(self.per_core.open_connections(), vec![0, 0]);
    }
}

fn request(source: String, sequence: u64) -> pb::InterceptRequest {
    pb::InterceptRequest {
        source,
        payload_json: "{\"a\":1}".into(),
        sequence,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_burst_of_connections_is_spread_evenly_and_closed_ones_stop_counting() {
    let serving = Arc::new(Serving::start(2));
    assert_eq!(serving.per_core.open_connections(), vec![0, 0]);

    // Eight clients connect at once, each makes a call and keeps its connection. With
    // every thread keeping what it accepted, such a burst went to whichever thread was
    // awake.
    let burst: Vec<_> = (0..8u64)
        .map(|c| {
            let serving = Arc::clone(&serving);
            tokio::spawn(async move {
                let mut client = serving.client().await;
                let reply = client
                    .intercept(request(format!("burst-{c}"), c))
                    .await
                    .expect("answered")
                    .into_inner();
                assert_eq!(reply.status(), pb::Status::Clean);
                assert_eq!(reply.sequence, c);
                client
            })
        })
        .collect();
    let mut clients = Vec::new();
    for client in burst {
        clients.push(client.await.expect("client task"));
    }
    assert_eq!(
        tracehound_daemon::report::stats(&serving.engine, 0).total_intercepts,
        8
    );
    assert_eq!(
        serving.per_core.open_connections(),
        vec![4, 4],
        "four connections per thread"
    );

    // Closed connections are no longer counted.
    drop(clients);
    let mut polls = 0;
    while serving.per_core.open_connections() != vec![0, 0] && polls < POLLS {
        tokio::time::sleep(POLL).await;
        polls += 1;
    }
    assert_eq!(
        serving.per_core.open_connections(),
        vec![0, 0],
        "closed connections uncounted"
    );

    Arc::into_inner(serving).expect("one owner").stop().await;
}

#[tokio::test]
async fn calls_in_flight_on_every_thread_finish_at_a_graceful_stop() {
    let serving = Serving::start(2);

    // Four open batch streams, one connection each: two per thread. Each has had one
    // answer, so its call is established and its connection counted.
    let mut streams = Vec::new();
    for c in 0..4u64 {
        let mut client = serving.client().await;
        let (tx, rx) = mpsc::unbounded_channel();
        tx.send(request(format!("inflight-{c}"), 0))
            .expect("queued");
        let mut replies = client
            .intercept_batch(UnboundedReceiverStream::new(rx))
            .await
            .expect("stream opened")
            .into_inner();
        let first = replies.next().await.expect("a reply").expect("answered");
        assert_eq!(first.sequence, 0);
        streams.push((client, tx, replies));
    }
    assert_eq!(serving.per_core.open_connections(), vec![2, 2]);

    serving.stop.send(true).expect("threads listen");
    // Wait until every thread has seen the stop: the listener is then closed.
    let mut polls = 0;
    while tokio::net::UnixStream::connect(&serving.path).await.is_ok() && polls < POLLS {
        tokio::time::sleep(POLL).await;
        polls += 1;
    }
    assert!(
        tokio::net::UnixStream::connect(&serving.path)
            .await
            .is_err(),
        "no thread accepts after the stop"
    );

    // The calls in flight still get their answers...
    for (c, (_, tx, replies)) in streams.iter_mut().enumerate() {
        tx.send(request(format!("inflight-{c}"), 1))
            .expect("queued");
        let second = replies.next().await.expect("a reply").expect("answered");
        assert_eq!(second.sequence, 1);
    }
    // ...and the threads wait for them.
    assert!(serving.per_core.handles.iter().all(|h| !h.is_finished()));

    // Ending the calls lets the drain finish.
    for (_, tx, mut replies) in streams {
        drop(tx);
        assert!(replies.next().await.is_none(), "stream ended cleanly");
    }
    assert_eq!(
        tracehound_daemon::report::stats(&serving.engine, 0).total_intercepts,
        8
    );
    serving.stop().await;
}
