//! Reaching `tracehoundd`: where it listens, connecting with errors that name the target,
//! and one runtime for the client calls.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use tonic::transport::Channel;
use tracehound_rpc::pb;
use tracehound_rpc::pb::tracehound_client::TracehoundClient;

/// The daemon's client over one HTTP/2 connection.
pub type Client = TracehoundClient<Channel>;

/// How long a one-shot command waits for the daemon before giving up: a wedged daemon
/// must not hang a script forever.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The socket used when neither `--socket`, `--endpoint` nor their variables are set —
/// the same rule as `tracehoundd`'s own default: `$XDG_RUNTIME_DIR/tracehound/tracehoundd.sock`
/// when that variable is set, `/run/tracehound/tracehoundd.sock` for root, else
/// `/tmp/tracehound-UID/tracehoundd.sock`.
pub fn default_socket(xdg_runtime_dir: Option<&Path>, uid: u32) -> PathBuf {
    match xdg_runtime_dir {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join("tracehound/tracehoundd.sock"),
        _ if uid == 0 => PathBuf::from("/run/tracehound/tracehoundd.sock"),
        _ => PathBuf::from(format!("/tmp/tracehound-{uid}/tracehoundd.sock")),
    }
}

/// The target string handed to `tracehound_rpc::connect`: the endpoint when given, else
/// `unix:` and the socket path (the given one or the default).
pub fn target(socket: Option<&Path>, endpoint: Option<&str>) -> String {
    if let Some(endpoint) = endpoint {
        return endpoint.to_owned();
    }
    let path = match socket {
        Some(p) => p.to_path_buf(),
        None => {
            let xdg = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
            default_socket(xdg.as_deref(), rustix::process::getuid().as_raw())
        }
    };
    format!("unix:{}", path.display())
}

/// A single-threaded runtime: the CLI makes one call at a time.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Connects to the daemon, or explains which target could not be reached and how to
/// point the tool elsewhere.
pub async fn connect(target: &str, timeout: Duration) -> Result<Client> {
    try_connect(target, timeout).await.map_err(|why| {
        anyhow!(
            "tracehoundd is not reachable at {target}: {why} (is it running? point --socket, \
             TRACEHOUND_SOCKET or --endpoint at it)"
        )
    })
}

/// Connects, or says why not in a few words (the dashboard's header has one line).
pub async fn try_connect(target: &str, timeout: Duration) -> Result<Client, String> {
    match tokio::time::timeout(timeout, tracehound_rpc::connect(target)).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(root_cause(&e)),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

/// The innermost error's message: the transport layers above it repeat it in their own
/// messages, so the whole chain would say the same thing three times.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Awaits one call with the deadline, turning a gRPC status into a message that names
/// the daemon.
pub async fn call<T>(
    target: &str,
    timeout: Duration,
    fut: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T> {
    try_call(timeout, fut)
        .await
        .map_err(|why| anyhow!("tracehoundd at {target}: {why}"))
}

/// Awaits one call with the deadline; the error in a few words.
pub async fn try_call<T>(
    timeout: Duration,
    fut: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(reply)) => Ok(reply.into_inner()),
        Ok(Err(status)) => Err(format!(
            "answered {:?}: {}",
            status.code(),
            status.message()
        )),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

/// One Stats call on an open client.
pub async fn stats(client: &mut Client, target: &str, top: u32) -> Result<pb::StatsReply> {
    call(target, CALL_TIMEOUT, client.stats(pb::StatsRequest { top })).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_wins_then_socket_then_default() {
        assert_eq!(
            target(Some(Path::new("/tmp/a.sock")), Some("http://127.0.0.1:9")),
            "http://127.0.0.1:9"
        );
        assert_eq!(
            target(Some(Path::new("/tmp/a.sock")), None),
            "unix:/tmp/a.sock"
        );
        assert_eq!(
            default_socket(Some(Path::new("/run/user/1000")), 1000),
            PathBuf::from("/run/user/1000/tracehound/tracehoundd.sock")
        );
        assert_eq!(
            default_socket(Some(Path::new("")), 0),
            PathBuf::from("/run/tracehound/tracehoundd.sock")
        );
        assert_eq!(
            default_socket(None, 1000),
            PathBuf::from("/tmp/tracehound-1000/tracehoundd.sock")
        );
    }
}
