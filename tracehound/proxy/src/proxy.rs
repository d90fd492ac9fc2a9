//! Assembling and running the proxy: agent, detector, layer, forwarder, listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tower::Layer;
use tracehound_core::agent::Agent;
use tracehound_spread::Load;
use tracehound_tower::{LayerStats, TracehoundLayer};

use crate::busy_poll::BusyPolling;
use crate::config::{ProxyConfig, MAX_BUSY_POLL};
use crate::detector::{DetectorStats, HttpDetector};
use crate::dispatch::{Router, ServingThread};
use crate::error::{ConfigError, ProxyError};
use crate::forward::{ForwardStats, Forwarder};
use crate::server::ServingLoop;
use crate::upstream::Upstream;

/// How far behind the layer's detector deadline the callout's own deadline lies.
const DETECTOR_BACKSTOP: Duration = Duration::from_millis(20);

/// Entry point of the library API.
#[derive(Debug)]
pub struct Proxy;

impl Proxy {
    /// Validates `config`, binds the listener and starts serving on the current tokio
    /// runtime. The proxy runs until [`RunningProxy::shutdown`] (or until it is dropped,
    /// which stops accepting at once).
    pub async fn bind(config: ProxyConfig) -> Result<RunningProxy, ProxyError> {
        Proxy::bind_with_workers(config, 0).await
    }

    /// Like [`Proxy::bind`], plus `workers` threads that each run a single-threaded tokio
    /// runtime, with the same layer, agent and upstream. Every thread (the calling
    /// runtime's included, which counts as one thread even when it is a multi-thread
    /// runtime) accepts on the listener, and each connection is served by the thread with
    /// the fewest open ones. [`RunningProxy::shutdown`] waits for the worker threads too.
    ///
    /// A connection, its requests and its upstream connection then stay on one thread:
    /// no task migrates and no thread has to wake another, which a work-stealing runtime
    /// pays for on every forwarded request (`tracehound proxy` runs one such runtime
    /// per core, the calling one included).
    pub async fn bind_with_workers(
        config: ProxyConfig,
        workers: usize,
    ) -> Result<RunningProxy, ProxyError> {
        let busy_poll = busy_polling(config.busy_poll)?;
        let upstream = Upstream::parse(&config.upstream)?;
        let agent =
            Arc::new(Agent::new(config.agent).map_err(|e| ConfigError::Agent(e.to_string()))?);
        let detector = match &config.detector_url {
            // The layer's deadline is the one that counts (it drops the call and counts a
            // timeout); the callout's own deadline is a backstop just behind it.
            Some(url) => Some(HttpDetector::new(
                url,
                config.layer.detector_timeout() + DETECTOR_BACKSTOP,
            )?),
            None => None,
        };
        let forwarder = Forwarder::new(upstream, config.connect_timeout);
        let forward_stats = Arc::clone(forwarder.stats());
        let detector_stats = detector.as_ref().map(|d| Arc::clone(d.stats()));

        let mut layer = TracehoundLayer::new(Arc::clone(&agent), config.layer.clone());
        if let Some(detector) = detector {
            layer = layer.with_detector(Arc::new(detector));
        }
        let service = layer.layer(forwarder);

        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ProxyError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| ProxyError::Bind {
            addr: config.listen,
            source,
        })?;
        let (stop, stopped) = watch::channel(false);
        let mut worker_done = Vec::with_capacity(workers);
        let bind_error = |source| ProxyError::Bind {
            addr: config.listen,
            source,
        };
        // Every thread (this one and each worker) accepts on a clone of the listener and
        // routes each connection to the thread with the fewest open ones.
        let listener = listener.into_std().map_err(bind_error)?;
        let (threads, mut receivers): (Vec<_>, Vec<_>) =
            (0..=workers).map(|_| ServingThread::new()).unzip();
        let loads = threads.iter().map(ServingThread::load).collect();
        let threads: Arc<[ServingThread]> = threads.into();
        let serving_loop = |me: usize, handed| -> Result<ServingLoop<_>, ProxyError> {
            Ok(ServingLoop {
                listener: listener.try_clone().map_err(bind_error)?,
                router: Router::new(Arc::clone(&threads), me),
                handed,
                service: service.clone(),
                stop: stopped.clone(),
                grace: config.shutdown_grace,
                busy_poll: busy_poll.clone(),
            })
        };
        let here = serving_loop(0, receivers.remove(0))?;
        for (index, handed) in receivers.into_iter().enumerate() {
            let serving = serving_loop(index + 1, handed)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(bind_error)?;
            let (done, done_rx) = oneshot::channel::<()>();
            std::thread::Builder::new()
                .name(format!("proxy-worker-{index}"))
                .spawn(move || {
                    runtime.block_on(serving.run());
                    // Whatever the runtime still holds (HTTP/2 stream tasks, say) is gone
                    // before `shutdown` hears that this thread has ended.
                    drop(runtime);
                    let _ = done.send(());
                })
                .map_err(bind_error)?;
            worker_done.push(done_rx);
        }
        drop(threads);
        let task = tokio::spawn(here.run());
        Ok(RunningProxy {
            local_addr,
            agent,
            layer,
            forward_stats,
            detector_stats,
            stop,
            task,
            worker_done,
            busy_poll,
            loads,
        })
    }
}

/// Checks the busy-polling window (zero: off) and that the caller's runtime can poll.
fn busy_polling(window: Option<Duration>) -> Result<Option<BusyPolling>, ConfigError> {
    let Some(window) = window.filter(|w| !w.is_zero()) else {
        return Ok(None);
    };
    if window > MAX_BUSY_POLL {
        return Err(ConfigError::BusyPoll(format!(
            "a window of {window:?} is longer than the {MAX_BUSY_POLL:?} allowed"
        )));
    }
    if tokio::runtime::Handle::current().runtime_flavor()
        != tokio::runtime::RuntimeFlavor::CurrentThread
    {
        // A multi-thread runtime shares one I/O driver among its workers: the poll loop
        // would keep a worker turning without keeping the sockets' thread awake.
        return Err(ConfigError::BusyPoll(
            "needs a current-thread tokio runtime (`#[tokio::main(flavor = \"current_thread\")]`; \
             `tracehound proxy` runs one per core)"
                .to_owned(),
        ));
    }
    Ok(Some(BusyPolling::new(window)))
}

/// A proxy serving on its own tasks.
#[derive(Debug)]
pub struct RunningProxy {
    local_addr: SocketAddr,
    agent: Arc<Agent>,
    // Kept for its shared counters (every service clone reports into them).
    layer: TracehoundLayer,
    forward_stats: Arc<ForwardStats>,
    detector_stats: Option<Arc<DetectorStats>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// One receiver per worker thread; resolves (or errors) once its runtime has ended.
    worker_done: Vec<oneshot::Receiver<()>>,
    busy_poll: Option<BusyPolling>,
    /// Open connections of each serving thread (the accepting one first).
    loads: Vec<Load>,
}

impl RunningProxy {
    /// The address actually bound (resolves port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The agent every request goes through: stats, quarantine, audit chain.
    pub fn agent(&self) -> &Arc<Agent> {
        &self.agent
    }

    /// The Tracehound layer's counters: outcomes, detector timeouts and errors,
    /// fail-opens, ignored WAF headers.
    pub fn layer_stats(&self) -> LayerStats {
        self.layer.stats()
    }

    /// Forwarding counters (answers passed back, 502s).
    pub fn forward_stats(&self) -> &ForwardStats {
        &self.forward_stats
    }

    /// Open client connections of each serving thread, the accepting thread's first (one
    /// entry per thread: `workers + 1`). New connections go to the thread with the fewest.
    pub fn open_connections(&self) -> Vec<usize> {
        self.loads.iter().map(Load::get).collect()
    }

    /// Busy-polling windows started so far over all serving threads (0 when busy polling
    /// is off): how often a request event found a thread asleep and set it polling.
    pub fn busy_poll_windows(&self) -> u64 {
        self.busy_poll.as_ref().map_or(0, BusyPolling::windows)
    }

    /// Detector callout counters, when a detector endpoint is configured.
    pub fn detector_stats(&self) -> Option<&DetectorStats> {
        self.detector_stats.as_deref()
    }

    /// Stops accepting, lets in-flight requests finish (up to the configured grace
    /// period), closes the connections still open after it, and returns when every
    /// serving thread has ended.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::warn!(%error, "proxy server task ended abnormally");
        }
        for done in self.worker_done {
            // An error means the worker thread ended without reporting (it panicked).
            let _ = done.await;
        }
    }
}
