//! The accept loop. It never stops on an error: out of file descriptors (EMFILE/ENFILE)
//! or memory, it logs, backs off briefly so it does not spin, and goes on. Each accepted
//! peer's credentials are checked before anything is read; strangers are closed at once.

use std::future::Future;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
pub async fn serve<F>(listener: UnixListener, agent: Arc<Agent>, shutdown: F)
where
    F: Future<Output = ()>,
{
    tokio::pin!(shutdown);
    let mut errors = LogLimiter::default();
    let mut refusals = LogLimiter::default();
    let mut strangers = LogLimiter::default();
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            res = listener.accept() => res,
        };
        match accepted {
            Ok((stream, _addr)) => {
                let peer = match peer::peer_of(&stream) {
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
                    drop(stream);
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
                    drop(stream);
                    continue;
                };
                tokio::spawn(async move {
                    let agent = slot.agent.clone();
                    serve_connection(agent, stream, peer).await;
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
