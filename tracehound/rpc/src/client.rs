//! Connecting to tracehoundd.

use std::path::PathBuf;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

use crate::pb::tracehound_client::TracehoundClient;
use crate::target::Target;

/// Why a client could not connect.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The target string is not `unix:PATH`, a path, or `http://HOST:PORT`.
    #[error("invalid target {target:?}: {reason}")]
    InvalidTarget {
        /// The target as given.
        target: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The connection failed (no daemon, permission denied, ...).
    #[error("cannot connect to {target}: {source}")]
    Connect {
        /// The target as given.
        target: String,
        /// The transport's error.
        #[source]
        source: tonic::transport::Error,
    },
}

/// HTTP/2 windows large enough that a busy batch stream is never stalled on flow control
/// (the defaults of 64 KiB cap a stream at one window per round trip).
const STREAM_WINDOW: u32 = 4 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

/// The endpoint settings shared by both transports.
fn endpoint(uri: String, target: &str) -> Result<Endpoint, RpcError> {
    let endpoint = Endpoint::from_shared(uri).map_err(|e| RpcError::InvalidTarget {
        target: target.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(endpoint
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW))
}

/// Connects to a daemon at `target`: `unix:PATH`, `unix:///PATH`, a bare filesystem path,
/// or `http://127.0.0.1:PORT`.
///
/// The connection is made eagerly, so a missing daemon is reported here rather than on the
/// first call.
pub async fn connect(target: &str) -> Result<TracehoundClient<Channel>, RpcError> {
    let parsed = Target::parse(target).map_err(|reason| RpcError::InvalidTarget {
        target: target.to_owned(),
        reason,
    })?;
    let channel = match parsed {
        Target::Http(uri) => endpoint(uri, target)?.connect().await,
        Target::Unix(path) => {
            // The URI is required by the HTTP/2 layer but unused: the connector below
            // ignores it and dials the socket.
            let endpoint = endpoint("http://tracehoundd.local".to_owned(), target)?;
            endpoint
                .connect_with_connector(tower::service_fn(move |_uri| {
                    let path: PathBuf = path.clone();
                    async move {
                        let stream = tokio::net::UnixStream::connect(path).await?;
                        Ok::<_, std::io::Error>(TokioIo::new(stream))
                    }
                }))
                .await
        }
    }
    .map_err(|source| RpcError::Connect {
        target: target.to_owned(),
        source,
    })?;
    Ok(TracehoundClient::new(channel)
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024))
}
