//! Serving one listener from one single-threaded runtime per core.
//!
//! On a multi-threaded runtime a connection's reads, its request tasks and its writes can
//! land on different workers, and every hand-over between them is a cross-thread
//! wake-up. Here each thread runs its own single-threaded runtime and accepts on the
//! same socket, and each accepted connection is served by the thread with the fewest open
//! connections (`spread.rs`: handed over once, when accepted, if that is another
//! thread), so a burst of connections is spread over the threads and a connection and
//! every request on it stay on one thread. The reverse proxy serves the same way.

use std::io;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tonic::transport::server::Router;

use tracehound_spread::Load;

use crate::spread;

/// The serving threads of [`serve_unix`].
#[derive(Debug)]
pub struct PerCore {
    /// One per thread, in the caller's runtime: resolves when that thread's server has
    /// ended (see [`serve_unix`] for stopping and cutting).
    pub handles: Vec<JoinHandle<Result<(), tonic::transport::Error>>>,
    loads: Vec<Load>,
}

impl PerCore {
    /// Each thread's open connections (in thread order): those it serves, counted from
    /// when they are routed to it until they close.
    pub fn open_connections(&self) -> Vec<usize> {
        self.loads.iter().map(Load::get).collect()
    }
}

/// Serves `listener` with a router from `make_router` on each of `threads` new threads
/// until `stop` says so (or its sender is dropped); every thread accepts, and each
/// connection is served by the thread with the fewest open ones.
///
/// Returns one handle per thread, in the caller's runtime, that resolves when that
/// thread's server has ended: at the stop a thread stops accepting and lets its open
/// connections finish. Aborting a handle's task stops its thread at once, open
/// connections and all: that is how a drain that takes too long is cut short. (Dropping a
/// handle only detaches it; the thread then ends when `stop` says so.)
pub fn serve_unix(
    listener: tokio::net::UnixListener,
    threads: usize,
    mut make_router: impl FnMut() -> Router,
    stop: watch::Receiver<bool>,
) -> io::Result<PerCore> {
    // Every thread gets its own descriptor of the one listening socket.
    let listener = listener.into_std()?;
    let (each, loads) = spread::threads(threads.max(1));
    let mut handles = Vec::with_capacity(each.len());
    for (t, routing) in each.into_iter().enumerate() {
        let listener = listener.try_clone()?;
        let router = make_router();
        let stop = stop.clone();
        let (done_tx, done_rx) = oneshot::channel();
        // Dropped with the waiting task below: ends the thread's runtime.
        let (cut_tx, cut_rx) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("tracehoundd-{t}"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!("cannot start a serving runtime: {e}");
                        return;
                    }
                };
                let served = runtime.block_on(async move {
                    let listener = match tokio::net::UnixListener::from_std(listener) {
                        Ok(l) => Some(l),
                        Err(e) => {
                            // Still serve what the other threads hand over.
                            tracing::error!("cannot register the listener: {e}");
                            None
                        }
                    };
                    // The incoming stream watches `stop` and ends after it, which starts
                    // the graceful drain (see `spread::incoming`).
                    let serve = router.serve_with_incoming_shutdown(
                        spread::incoming(listener, routing, stop),
                        std::future::pending(),
                    );
                    tokio::select! {
                        served = serve => served,
                        _ = cut_rx => Ok(()),
                    }
                });
                // Dropping the runtime closes whatever connections are still open
                // (connections handed to this thread and not yet taken among them).
                drop(runtime);
                let _ = done_tx.send(served);
            })?;
        handles.push(tokio::spawn(async move {
            let _cut = cut_tx;
            // A thread that ended without a word (it could not start) has nothing to add.
            done_rx.await.unwrap_or(Ok(()))
        }));
    }
    Ok(PerCore { handles, loads })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tonic::transport::Server;
    use tracehound_rpc::pb;
    use tracehound_rpc::pb::tracehound_server::TracehoundServer;

    use super::*;
    use crate::engine::Engine;
    use crate::{DaemonConfig, TracehoundService};

    #[tokio::test]
    async fn every_thread_serves_and_all_stop_when_told() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sock");
        let engine = Arc::new(Engine::new(DaemonConfig::default(), None).unwrap());
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let (stop, rx) = watch::channel(false);
        let mut made = 0;
        let handles = serve_unix(
            listener,
            2,
            || {
                made += 1;
                Server::builder().add_service(TracehoundServer::new(TracehoundService::new(
                    Arc::clone(&engine),
                )))
            },
            rx,
        )
        .unwrap()
        .handles;
        assert_eq!((handles.len(), made), (2, 2));

        // Several connections, so both threads are used; every call is answered whichever
        // thread serves its connection.
        let target = path.to_str().unwrap();
        let mut answered = 0;
        for c in 0..6u64 {
            let mut client = tracehound_rpc::connect(target).await.unwrap();
            for i in 0..5u64 {
                let reply = client
                    .intercept(pb::InterceptRequest {
                        source: format!("percore-{c}-{i}"),
                        payload_json: "{\"a\":1}".into(),
                        sequence: i,
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner();
                assert_eq!(reply.status(), pb::Status::Clean);
                assert_eq!(reply.sequence, i);
                answered += 1;
            }
        }
        assert_eq!(answered, 30);
        assert_eq!(
            crate::report::stats(&engine, 0).total_intercepts,
            30,
            "the engine counted every call"
        );

        stop.send(true).unwrap();
        for h in handles {
            h.await.unwrap().unwrap();
        }
        // Stopped: nobody accepts any more.
        assert!(tracehound_rpc::connect(target).await.is_err());
    }

    #[tokio::test]
    async fn aborting_the_wait_cuts_a_thread_with_open_connections() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sock");
        let engine = Arc::new(Engine::new(DaemonConfig::default(), None).unwrap());
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        // Never told to stop: only the cut can end the thread.
        let (_stop, rx) = watch::channel(false);
        let handles = serve_unix(
            listener,
            1,
            || {
                Server::builder().add_service(TracehoundServer::new(TracehoundService::new(
                    Arc::clone(&engine),
                )))
            },
            rx,
        )
        .unwrap()
        .handles;
        let mut client = tracehound_rpc::connect(path.to_str().unwrap())
            .await
            .unwrap();
        client.stats(pb::StatsRequest { top: 0 }).await.unwrap();
        // Cutting ends the thread, which closes the connection under the client.
        for h in handles {
            h.abort();
            assert!(h.await.unwrap_err().is_cancelled());
        }
        let mut failed = false;
        for _ in 0..200 {
            if client.stats(pb::StatsRequest { top: 0 }).await.is_err() {
                failed = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(failed, "the cut thread's connection was closed");
    }
}
