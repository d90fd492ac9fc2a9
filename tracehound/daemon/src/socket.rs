//! The listening sockets: a Unix socket created 0600 without a window where it is more
//! open, in a directory made 0700 when the daemon creates it; loopback TCP only.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, UnixListener};

use crate::DaemonError;

/// Longest Unix socket path the kernel accepts (`sun_path` is 108 bytes with the NUL);
/// checked against the temporary name, which is longer than the final one.
const MAX_SUN_PATH: usize = 107;

/// Binds `path` as a 0600 socket.
///
/// The socket is bound under a temporary name in the same directory, restricted to 0600,
/// then renamed into place, so no client can connect while it is still more open. A stale
/// socket left by a dead daemon is replaced; a live one is an error.
pub fn bind_unix(path: &Path) -> Result<UnixListener, DaemonError> {
    let io = |what: &str, source: std::io::Error| DaemonError::Socket {
        path: path.to_owned(),
        what: what.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| io("create its directory", e))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => return Err(DaemonError::AlreadyRunning(path.to_owned())),
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    std::fs::remove_file(path).map_err(|e| io("remove the stale socket", e))?;
                }
                Err(e) => return Err(io("probe the existing socket", e)),
            }
        }
        Ok(_) => {
            return Err(io(
                "use the path",
                std::io::Error::new(ErrorKind::AlreadyExists, "exists and is not a socket"),
            ))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(io("inspect the path", e)),
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tracehoundd.sock".to_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    if tmp.as_os_str().len() > MAX_SUN_PATH {
        return Err(io(
            "bind",
            std::io::Error::new(ErrorKind::InvalidInput, "socket path too long"),
        ));
    }
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp).map_err(|e| io("bind", e))?;
    let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(io("secure and place the socket", e));
    }
    Ok(listener)
}

/// Binds a TCP listener, refusing anything but a loopback address.
pub async fn bind_tcp(addr: SocketAddr) -> Result<TcpListener, DaemonError> {
    if !addr.ip().is_loopback() {
        return Err(DaemonError::NotLoopback(addr));
    }
    TcpListener::bind(addr)
        .await
        .map_err(|source| DaemonError::Tcp { addr, source })
}
