//! Bounded, fair signing.
//!
//! Every signature first takes a permit from one FIFO semaphore (`max_signers` permits,
//! one per core by default), so sign requests are served in arrival order across all
//! connections and p99 stays close to p50 under overload. With `sign_timeout`, a request
//! that cannot get a permit in time fails instead of waiting on.
//!
//! Cheap signatures (Ed25519, ECDSA P-256/P-384: tens of microseconds) are then made right
//! on the async worker holding the permit: handing them to another thread cost two
//! wake-ups and context switches, more than the signature itself (profiled at about half
//! of the agent's CPU per request). Slow ones (RSA, P-521: milliseconds) go to a fixed set
//! of signing threads fed by a FIFO queue, so they never stall the async workers.
//!
//! A pool job whose client went away before a thread picked it up is skipped.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use secretivex_keys::{KeyAlgorithm, KeyPair};
use tokio::sync::{oneshot, Semaphore};

/// Why a signature could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("signing failed: {0}")]
    Key(String),
    #[error("signing pool is shut down")]
    PoolClosed,
    #[error("no signer became free within {0:?}")]
    Timeout(Duration),
}

/// A signature and how long its request waited for a signer.
#[derive(Debug)]
pub struct Signed {
    pub signature: Vec<u8>,
    pub queue_wait: Duration,
}

type Job = Box<dyn FnOnce() + Send + 'static>;

struct Queue {
    jobs: Mutex<QueueState>,
    ready: Condvar,
}

struct QueueState {
    jobs: VecDeque<Job>,
    closed: bool,
}

/// The pool; dropping it lets the threads finish queued work and exit.
pub struct SignerPool {
    queue: Arc<Queue>,
    threads: usize,
    /// One permit per signer; tokio's semaphore is FIFO-fair.
    permits: Semaphore,
    sign_timeout: Option<Duration>,
}

/// True for key types whose signature costs about as much as a thread hand-off or less.
fn signs_inline(alg: KeyAlgorithm) -> bool {
    matches!(
        alg,
        KeyAlgorithm::Ed25519 | KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384
    )
}

impl SignerPool {
    /// Starts `threads` signing threads (at least one), with as many signing permits and
    /// no sign timeout.
    pub fn new(threads: usize) -> std::io::Result<SignerPool> {
        SignerPool::with_timeout(threads, None)
    }

    /// Like [`SignerPool::new`]; a sign request waits at most `sign_timeout` for a permit.
    pub fn with_timeout(
        threads: usize,
        sign_timeout: Option<Duration>,
    ) -> std::io::Result<SignerPool> {
        let threads = threads.clamp(1, Semaphore::MAX_PERMITS);
        let queue = Arc::new(Queue {
            jobs: Mutex::new(QueueState {
                jobs: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
        });
        for i in 0..threads {
            let q = queue.clone();
            std::thread::Builder::new()
                .name(format!("signer-{i}"))
                .spawn(move || worker(q))?;
        }
        Ok(SignerPool {
            queue,
            threads,
            permits: Semaphore::new(threads),
            sign_timeout,
        })
    }

    /// Number of signing threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Jobs waiting for a thread.
    pub fn queued(&self) -> usize {
        self.queue.jobs.lock().jobs.len()
    }

    /// Runs `work` on a signing thread and waits for its result without blocking the
    /// async runtime.
    pub async fn run<T, F>(&self, work: F) -> Result<T, SignError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            if tx.is_closed() {
                return; // the client is gone; don't spend a signature on it
            }
            let _ = tx.send(work());
        });
        {
            let mut state = self.queue.jobs.lock();
            if state.closed {
                return Err(SignError::PoolClosed);
            }
            state.jobs.push_back(job);
        }
        self.queue.ready.notify_one();
        rx.await.map_err(|_| SignError::PoolClosed)
    }

    /// Signs `data` with `key` once a signer is free (FIFO), inline for cheap key types,
    /// on a signing thread otherwise.
    ///
    /// # Errors
    /// [`SignError::Timeout`] when no permit came within the sign timeout; the key's error.
    pub async fn sign(
        &self,
        key: Arc<KeyPair>,
        data: Vec<u8>,
        flags: u32,
    ) -> Result<Signed, SignError> {
        let start = Instant::now();
        let acquire = self.permits.acquire();
        let permit = match self.sign_timeout {
            // Boxed: a timer is large and would otherwise sit in every connection's task.
            Some(limit) => match Box::pin(tokio::time::timeout(limit, acquire)).await {
                Ok(p) => p,
                Err(_) => return Err(SignError::Timeout(limit)),
            },
            None => acquire.await,
        };
        // The semaphore is never closed, but a closed one means the agent is going away.
        let _permit = permit.map_err(|_| SignError::PoolClosed)?;
        let queue_wait = start.elapsed();
        let signature = if signs_inline(key.algorithm()) {
            key.sign(&data, flags)
        } else {
            Box::pin(self.run(move || key.sign(&data, flags))).await?
        };
        let signature = signature.map_err(|e| SignError::Key(e.to_string()))?;
        Ok(Signed {
            signature,
            queue_wait,
        })
    }
}

impl Drop for SignerPool {
    fn drop(&mut self) {
        self.queue.jobs.lock().closed = true;
        self.queue.ready.notify_all();
    }
}

fn worker(queue: Arc<Queue>) {
    loop {
        let job = {
            let mut state = queue.jobs.lock();
            loop {
                if let Some(job) = state.jobs.pop_front() {
                    break job;
                }
                if state.closed {
                    return;
                }
                queue.ready.wait(&mut state);
            }
        };
        job();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Occupies the pool's single thread until the returned sender is used.
    async fn block_the_only_thread(
        pool: &Arc<SignerPool>,
    ) -> (
        std::sync::mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<(), SignError>>,
    ) {
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = oneshot::channel::<()>();
        let pool = pool.clone();
        let blocker = tokio::spawn(async move {
            pool.run(move || {
                let _ = started_tx.send(());
                let _ = release_rx.recv();
            })
            .await
        });
        started_rx.await.unwrap();
        (release_tx, blocker)
    }

    #[tokio::test]
    async fn runs_jobs_and_returns_results() {
        let pool = SignerPool::new(2).unwrap();
        assert_eq!(pool.threads(), 2);
        let r = pool.run(|| 6 * 7).await.unwrap();
        assert_eq!(r, 42);
        let name = pool
            .run(|| std::thread::current().name().map(str::to_string))
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("signer-"));
    }

    #[tokio::test]
    async fn single_thread_serves_in_fifo_order() {
        let pool = Arc::new(SignerPool::new(1).unwrap());
        let order = Arc::new(Mutex::new(Vec::new()));
        // Block the only thread so the next jobs queue up behind it.
        let (release_tx, blocker) = block_the_only_thread(&pool).await;
        let mut handles = Vec::new();
        for i in 0..8 {
            let job_pool = pool.clone();
            let order = order.clone();
            handles.push(tokio::spawn(async move {
                job_pool.run(move || order.lock().push(i)).await
            }));
            // Make sure job i is queued before job i+1.
            while pool.queued() < i + 1 {
                tokio::task::yield_now().await;
            }
        }
        release_tx.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        for h in handles {
            h.await.unwrap().unwrap();
        }
        assert_eq!(*order.lock(), (0..8).collect::<Vec<_>>());
    }

    fn check(key: &KeyPair, data: &[u8], signed: &Signed) {
        secretivex_keys::verify_signature(key.public_blob(), data, &signed.signature)
            .expect("signature verifies");
    }

    #[tokio::test]
    async fn signs_inline_and_on_the_pool_alike() {
        let pool = SignerPool::new(1).unwrap();
        let ed = Arc::new(KeyPair::from_wire(&crate::test_support::ed25519_wire(3)).unwrap());
        let rsa = crate::test_support::rsa_wire(&crate::test_support::rsa_components());
        let rsa = Arc::new(KeyPair::from_wire(&rsa).unwrap());
        assert!(signs_inline(ed.algorithm()));
        assert!(!signs_inline(rsa.algorithm()));
        for key in [ed, rsa] {
            let signed = pool.sign(key.clone(), b"data".to_vec(), 2).await.unwrap();
            check(&key, b"data", &signed);
        }
        // Both permits are back: nothing is waiting or held.
        assert_eq!(pool.permits.available_permits(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn sign_times_out_while_every_signer_is_busy() {
        let pool = SignerPool::with_timeout(1, Some(Duration::from_millis(50))).unwrap();
        let key = Arc::new(KeyPair::from_wire(&crate::test_support::ed25519_wire(4)).unwrap());
        let held = pool.permits.acquire().await.unwrap();
        let waited = pool.sign(key.clone(), b"x".to_vec(), 0).await;
        assert!(
            matches!(waited, Err(SignError::Timeout(limit)) if limit == Duration::from_millis(50)),
            "{waited:?}"
        );
        drop(held);
        let signed = pool.sign(key.clone(), b"x".to_vec(), 0).await.unwrap();
        check(&key, b"x", &signed);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_requests_get_the_signer_in_arrival_order() {
        let pool = Arc::new(SignerPool::new(1).unwrap());
        let key = Arc::new(KeyPair::from_wire(&crate::test_support::ed25519_wire(5)).unwrap());
        let order = Arc::new(Mutex::new(Vec::new()));
        let held = pool.permits.acquire().await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..6 {
            let (pool, key, order) = (pool.clone(), key.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                pool.sign(key, vec![i], 0).await.unwrap();
                order.lock().push(i);
            }));
            // Let task i queue on the semaphore before task i+1 starts.
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock(), (0..6).collect::<Vec<u8>>());
    }

    #[tokio::test]
    async fn abandoned_jobs_are_skipped() {
        let pool = Arc::new(SignerPool::new(1).unwrap());
        let ran = Arc::new(AtomicUsize::new(0));
        let (release_tx, blocker) = block_the_only_thread(&pool).await;
        let abandoned = {
            let pool = pool.clone();
            let ran = ran.clone();
            tokio::spawn(async move { pool.run(move || ran.fetch_add(1, Ordering::SeqCst)).await })
        };
        while pool.queued() < 1 {
            tokio::task::yield_now().await;
        }
        abandoned.abort();
        let _ = abandoned.await;
        release_tx.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        // A job queued after the abandoned one still runs, and the abandoned one did not.
        let ran2 = ran.clone();
        pool.run(move || ran2.fetch_add(10, Ordering::SeqCst))
            .await
            .unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 10);
    }
}
