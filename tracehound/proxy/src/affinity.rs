//! Connection affinity: each downstream HTTP/1.1 connection gets its own upstream
//! connection, opened on its first request, kept while both sides stay up and reopened
//! after an error.
//!
//! A downstream HTTP/1.1 connection carries one request at a time, so one upstream
//! connection per downstream connection is always enough, and handing requests straight
//! to a `hyper::client::conn::http1::SendRequest` skips what a shared pool costs per
//! request (pool lock, checkout and return, idle bookkeeping, waking a pool task).
//! HTTP/2 clients multiplex, so their requests keep using the shared pool.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::forward::UpstreamBody;

/// The upstream connection of one downstream connection, shared by the requests it
/// carries (through the request extensions). Cheap to clone.
#[derive(Clone, Default)]
pub struct UpstreamSlot {
    sender: Arc<Mutex<Option<SendRequest<UpstreamBody>>>>,
}

impl std::fmt::Debug for UpstreamSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamSlot").finish_non_exhaustive()
    }
}

/// Why an affine send failed; the caller answers 502 either way.
#[derive(Debug, thiserror::Error)]
pub enum AffinityError {
    /// The TCP connection to the upstream could not be opened.
    #[error("cannot connect to the upstream: {0}")]
    Connect(#[source] std::io::Error),
    /// Connecting took longer than the connect timeout.
    #[error("connecting to the upstream timed out")]
    ConnectTimeout,
    /// The HTTP exchange with the upstream failed.
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

impl UpstreamSlot {
    /// An empty slot: the first request opens the connection.
    pub fn new() -> UpstreamSlot {
        UpstreamSlot::default()
    }

    fn take(&self) -> Option<SendRequest<UpstreamBody>> {
        // A poisoned lock only means a panic elsewhere while holding an `Option`;
        // the value is still a valid state.
        self.sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn put(&self, sender: SendRequest<UpstreamBody>) {
        let mut slot = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        // Only one request at a time is expected; should two overlap, the second
        // connection is simply dropped (it closes once its answer has been read).
        if slot.is_none() {
            *slot = Some(sender);
        }
    }

    /// Sends `req` on this slot's upstream connection, opening one if there is none or
    /// the kept one has closed. A request that never left on a kept connection (the
    /// upstream closed it while idle) is retried once on a fresh connection.
    pub async fn send(
        &self,
        addr: &str,
        connect_timeout: Duration,
        mut req: Request<UpstreamBody>,
    ) -> Result<Response<Incoming>, AffinityError> {
        let mut kept = self.take().filter(|sender| !sender.is_closed());
        loop {
            let reused = kept.is_some();
            let mut sender = match kept.take() {
                Some(sender) => sender,
                None => connect(addr, connect_timeout).await?,
            };
            if let Err(error) = sender.ready().await {
                if reused {
                    continue;
                }
                return Err(error.into());
            }
            match sender.try_send_request(req).await {
                Ok(response) => {
                    // Ready again once this answer's body has been read; the next
                    // request on the downstream connection only comes after that.
                    self.put(sender);
                    return Ok(response);
                }
                Err(mut error) => match error.take_message() {
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(error.into_error().into()),
                },
            }
        }
    }
}

/// Opens a new HTTP/1.1 connection to `addr` and drives it on its own task.
async fn connect(
    addr: &str,
    timeout: Duration,
) -> Result<SendRequest<UpstreamBody>, AffinityError> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| AffinityError::ConnectTimeout)?
        .map_err(AffinityError::Connect)?;
    // Small request/response exchanges: Nagle would add up to 40 ms per round trip.
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}
