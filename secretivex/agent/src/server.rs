//! The accept loop. It never stops on an error: out of file descriptors (EMFILE/ENFILE)
//! or memory, it logs, backs off briefly so it does not spin, and goes on. Each accepted
//! peer's credentials are checked before anything is read; strangers are closed at once.
//!
//! Accepted sockets are not registered with the runtime here: the connection task reads
//! the first request directly and registers only if it has to wait (see
//! `client_socket`), which saves an epoll registration and a readiness round trip per
//! connection when a client sends its request right after connecting.

use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener as StdUnixListener;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::net::SocketFlags;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::net::UnixListener;

use crate::connection::serve_connection;
use crate::metrics::RefusalReason;
use crate::peer;
use crate::Agent;

/// Pause after a resource-exhaustion error from `accept()`.
const RESOURCE_BACKOFF: Duration = Duration::from_millis(50);
/// Pause after any other unexpected `accept()` error.
const ERROR_BACKOFF: Duration = Duration::from_millis(5);

/// Serves `listener` until `shutdown` completes. Each connection runs in its own task.
///
/// Returns at once (with an error logged) only if the listener cannot be taken over from
/// tokio's registration, which needs the runtime's event loop to fail.
pub async fn serve<F>(listener: UnixListener, agent: Arc<Agent>, shutdown: F)
where
    F: Future<Output = ()>,
{
    // Readability only: accepting never waits to write.
    let listener = match listener.into_std().and_then(|l| {
        // SAFETY: the std listener owns an open descriptor and always returns that same
        // one; it stays open while the `AsyncFd` holds it and is never swapped.
        unsafe { AsyncFd::register_with_interest(l, Interest::READABLE) }.map_err(io::Error::from)
    }) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch the listening socket; not serving");
            return;
        }
    };
    tokio::pin!(shutdown);
    let mut errors = LogLimiter::default();
    let mut refusals = LogLimiter::default();
    let mut strangers = LogLimiter::default();
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            res = accept(&listener) => res,
        };
        match accepted {
            Ok(fd) => {
                let peer = match peer::peer_of_fd(&fd) {
                    Ok(p) => p,
                    Err(e) => {
                        agent.metrics.refused(RefusalReason::Peer);
                        tracing::warn!(error = %e, "cannot read peer credentials; closing");
                        continue;
                    }
                };
                if !peer::is_allowed(peer.uid, agent.config.owner_uid) {
                    agent.metrics.refused(RefusalReason::Peer);
                    if let Some(suppressed) = strangers.admit() {
                        tracing::warn!(
                            uid = peer.uid,
                            pid = peer.pid,
                            suppressed,
                            "refused connection from another user"
                        );
                    }
                    drop(fd);
                    continue;
                }
                let Some(slot) = ConnectionSlot::take(&agent) else {
                    // Closing at once tells the client (EOF) instead of leaving it waiting
                    // in the backlog for a slot that may not come.
                    agent.metrics.refused(RefusalReason::MaxConnections);
                    if let Some(suppressed) = refusals.admit() {
                        tracing::warn!(
                            suppressed,
                            "max connections reached; closing new connections at once"
                        );
                    }
                    drop(fd);
                    continue;
                };
                tokio::spawn(async move {
                    let agent = slot.agent.clone();
                    serve_connection(agent, fd, peer).await;
                    drop(slot);
                });
            }
            Err(e) => {
                let backoff = if is_resource_exhaustion(&e) {
                    RESOURCE_BACKOFF
                } else {
                    ERROR_BACKOFF
                };
                if let Some(suppressed) = errors.admit() {
                    tracing::warn!(
                        error = %e,
                        backoff_ms = backoff.as_millis() as u64,
                        suppressed,
                        "accept failed; backing off and going on"
                    );
                }
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

/// Accepts one connection as a non-blocking, close-on-exec socket, waiting for one if
/// none is pending.
async fn accept(listener: &AsyncFd<StdUnixListener>) -> io::Result<OwnedFd> {
    loop {
        let mut guard = listener.readable().await?;
        let accepted = guard.try_io(|l| loop {
            match rustix::net::accept_with(
                l.get_ref(),
                SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            ) {
                Err(rustix::io::Errno::INTR) => continue,
                other => return other.map_err(io::Error::from),
            }
        });
        match accepted {
            Ok(result) => return result,
            Err(_would_block) => continue,
        }
    }
}

/// One of the `max_connections` places, held by a connection task and given back on drop
/// (also when the task panics or is cancelled).
struct ConnectionSlot {
    agent: Arc<Agent>,
}

impl ConnectionSlot {
    /// Takes a place if one is free (always, without a limit).
    fn take(agent: &Arc<Agent>) -> Option<ConnectionSlot> {
        let limit = agent.config.max_connections.unwrap_or(usize::MAX);
        let taken = agent
            .connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            });
        taken.ok()?;
        agent.metrics.opened();
        Some(ConnectionSlot {
            agent: agent.clone(),
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.agent.connections.fetch_sub(1, Ordering::AcqRel);
        self.agent.metrics.closed();
    }
}

/// Lets a repeated warning through at most once per second and counts the ones held
/// back, so a long fd shortage or a flood of refused connections does not flood the log.
#[derive(Default)]
struct LogLimiter {
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimiter {
    /// `Some(number held back since the last one logged)` when this occurrence is to be
    /// logged, `None` when it is held back.
    fn admit(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_fd_exhaustion() {
        assert!(is_resource_exhaustion(&io::Error::from_raw_os_error(
            libc::EMFILE
        )));
        assert!(is_resource_exhaustion(&io::Error::from_raw_os_error(
            libc::ENFILE
        )));
        assert!(!is_resource_exhaustion(&io::Error::from_raw_os_error(
            libc::ECONNABORTED
        )));
    }
}
