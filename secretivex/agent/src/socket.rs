//! The listening socket: where it lives, how its directory is checked, and how it is bound.
//!
//! * Default path: `$XDG_RUNTIME_DIR/secretivex/agent.sock`; without `XDG_RUNTIME_DIR`,
//!   `${TMPDIR:-/tmp}/secretivex-<uid>/agent.sock`.
//! * The directory is created `0700` when missing. An existing directory is refused when
//!   it belongs to another user (root excepted for directories we did not name ourselves,
//!   such as `/run/user/<uid>` parents), or is group/world-writable without the sticky bit.
//! * An existing path is replaced only when it is a socket nobody listens on
//!   (`connect()` fails with `ECONNREFUSED`); a live agent or any other file is an error.
//! * The socket is bound under umask `0177`, chmod-ed `0600`, and listens with the
//!   requested backlog (std and tokio hard-code 128).

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::{Path, PathBuf};

use rustix::fs::Mode;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

/// Default listen backlog; far above OpenSSH's 128 so fan-out bursts queue in the kernel.
pub const DEFAULT_BACKLOG: u32 = 4096;

/// Why the socket could not be set up. Messages name the path and the reason.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("socket directory {path}: {source}")]
    Directory { path: PathBuf, source: io::Error },
    #[error("socket directory {path} is owned by uid {owner}, not by us (uid {us})")]
    ForeignOwner { path: PathBuf, owner: u32, us: u32 },
    #[error("socket directory {path} is writable by group or others (mode {mode:o})")]
    Writable { path: PathBuf, mode: u32 },
    #[error("{path} is not a directory")]
    NotADirectory { path: PathBuf },
    #[error("an agent is already listening on {path}")]
    LiveAgent { path: PathBuf },
    #[error("{path} exists and is not a socket; refusing to replace it")]
    NotASocket { path: PathBuf },
    #[error("stale socket {path}: {source}")]
    Stale { path: PathBuf, source: io::Error },
    #[error("socket path {path} has no parent directory")]
    NoParent { path: PathBuf },
    #[error("bind {path}: {source}")]
    Bind { path: PathBuf, source: io::Error },
}

/// The default socket path for the current user (see the module docs).
pub fn default_socket_path() -> PathBuf {
    default_socket_path_from(
        std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from),
        std::env::var_os("TMPDIR").map(PathBuf::from),
        rustix::process::getuid().as_raw(),
    )
}

/// [`default_socket_path`] from explicit inputs. Empty variables count as unset.
pub fn default_socket_path_from(
    xdg_runtime_dir: Option<PathBuf>,
    tmpdir: Option<PathBuf>,
    uid: u32,
) -> PathBuf {
    match xdg_runtime_dir.filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => dir.join("secretivex").join("agent.sock"),
        None => tmpdir
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("/tmp"))
            .join(format!("secretivex-{uid}"))
            .join("agent.sock"),
    }
}

/// Makes sure the directory that will hold the socket exists and is private enough.
///
/// A missing directory is created with mode `0700` (its parents must exist). An existing
/// one must be owned by `uid` (or by root) and not writable by group or others unless it
/// has the sticky bit (like `/tmp`, where others cannot remove or rename our socket).
pub fn prepare_socket_dir(dir: &Path, uid: u32) -> Result<(), SocketError> {
    let dir_err = |source| SocketError::Directory {
        path: dir.to_path_buf(),
        source,
    };
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .map_err(dir_err)?;
            // The umask may have narrowed the mode, never widened it; still make sure.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(dir_err)?;
            check_dir(dir, uid)
        }
        Err(e) => Err(dir_err(e)),
        Ok(_) => check_dir(dir, uid),
    }
}

/// Checks an existing socket directory (see [`prepare_socket_dir`]). Symbolic links are
/// followed, as the socket path itself will be.
pub fn check_dir(dir: &Path, uid: u32) -> Result<(), SocketError> {
    let meta = std::fs::metadata(dir).map_err(|source| SocketError::Directory {
        path: dir.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(SocketError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    if meta.uid() != uid && meta.uid() != 0 {
        return Err(SocketError::ForeignOwner {
            path: dir.to_path_buf(),
            owner: meta.uid(),
            us: uid,
        });
    }
    let mode = meta.mode() & 0o7777;
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !sticky {
        return Err(SocketError::Writable {
            path: dir.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Removes a stale socket at `path`, or explains why the path cannot be used.
pub fn clear_stale_socket(path: &Path) -> Result<(), SocketError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(SocketError::Stale {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if !meta.file_type().is_socket() {
        return Err(SocketError::NotASocket {
            path: path.to_path_buf(),
        });
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(SocketError::LiveAgent {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "removing stale socket");
            match std::fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(source) => Err(SocketError::Stale {
                    path: path.to_path_buf(),
                    source,
                }),
            }
        }
        Err(source) => Err(SocketError::Stale {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Restores the previous umask when dropped.
struct UmaskGuard(Mode);

impl Drop for UmaskGuard {
    fn drop(&mut self) {
        rustix::process::umask(self.0);
    }
}

/// Binds a listening socket at `path` with mode `0600` and the given backlog, after
/// checking the directory and clearing a stale socket. The listener is non-blocking,
/// ready for `tokio::net::UnixListener::from_std`.
///
/// The umask is process-wide: call this before starting other threads that create files.
pub fn bind_listener(path: &Path, backlog: u32) -> Result<StdUnixListener, SocketError> {
    let uid = rustix::process::getuid().as_raw();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        Some(_) => PathBuf::from("."),
        None => {
            return Err(SocketError::NoParent {
                path: path.to_path_buf(),
            })
        }
    };
    prepare_socket_dir(&dir, uid)?;
    clear_stale_socket(path)?;
    let bind_err = |source| SocketError::Bind {
        path: path.to_path_buf(),
        source,
    };
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .map_err(|e| bind_err(e.into()))?;
    let addr = SocketAddrUnix::new(path).map_err(|e| bind_err(e.into()))?;
    {
        let _restore = UmaskGuard(rustix::process::umask(Mode::from_raw_mode(0o177)));
        rustix::net::bind(&fd, &addr).map_err(|e| bind_err(e.into()))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(bind_err)?;
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    rustix::net::listen(&fd, backlog).map_err(|e| bind_err(e.into()))?;
    Ok(StdUnixListener::from(fd))
}

/// Identity of the socket file we bound, so shutdown removes only our own socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketFileId {
    dev: u64,
    ino: u64,
}

impl SocketFileId {
    /// Records the file currently at `path`.
    pub fn of(path: &Path) -> io::Result<SocketFileId> {
        let meta = std::fs::symlink_metadata(path)?;
        Ok(SocketFileId {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// Removes `path` if it is still the same socket.
    pub fn remove_if_same(&self, path: &Path) {
        let still_a_socket =
            std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
        if still_a_socket && SocketFileId::of(path).ok() == Some(*self) {
            if let Err(e) = std::fs::remove_file(path) {
                tracing::warn!(path = %path.display(), error = %e, "could not remove socket");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid() -> u32 {
        rustix::process::getuid().as_raw()
    }

    #[test]
    fn default_path_prefers_xdg_runtime_dir() {
        let p = default_socket_path_from(Some("/run/user/7".into()), Some("/var/tmp".into()), 7);
        assert_eq!(p, PathBuf::from("/run/user/7/secretivex/agent.sock"));
        let p = default_socket_path_from(None, Some("/var/tmp".into()), 7);
        assert_eq!(p, PathBuf::from("/var/tmp/secretivex-7/agent.sock"));
        let p = default_socket_path_from(Some("".into()), None, 9);
        assert_eq!(p, PathBuf::from("/tmp/secretivex-9/agent.sock"));
    }

    #[test]
    fn missing_dir_is_created_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("secretivex");
        prepare_socket_dir(&dir, uid()).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // Second call accepts the directory it created.
        prepare_socket_dir(&dir, uid()).unwrap();
    }

    #[test]
    fn world_writable_dir_is_refused_unless_sticky() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("open");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            prepare_socket_dir(&dir, uid()),
            Err(SocketError::Writable { .. })
        ));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o770)).unwrap();
        assert!(matches!(
            check_dir(&dir, uid()),
            Err(SocketError::Writable { .. })
        ));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        check_dir(&dir, uid()).unwrap();
    }

    #[test]
    fn foreign_owner_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        // Pretend to be another user: the directory's owner is then foreign unless root.
        let me = uid();
        let other = if me == 12345 { 12346 } else { 12345 };
        let res = check_dir(tmp.path(), other);
        if me == 0 {
            // Root-owned directories are trusted by everyone.
            res.unwrap();
        } else {
            assert!(matches!(res, Err(SocketError::ForeignOwner { .. })));
        }
    }

    #[test]
    fn a_file_is_not_a_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(
            check_dir(&file, uid()),
            Err(SocketError::NotADirectory { .. })
        ));
    }

    #[test]
    fn bind_sets_mode_and_refuses_live_agent_and_regular_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("agent.sock");
        let listener = bind_listener(&path, 16).unwrap();
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(
            bind_listener(&path, 16),
            Err(SocketError::LiveAgent { .. })
        ));
        // Once the listener is gone the socket is stale and may be replaced.
        drop(listener);
        let again = bind_listener(&path, 16).unwrap();
        drop(again);

        let file = tmp.path().join("not-a-socket");
        std::fs::write(&file, b"data").unwrap();
        assert!(matches!(
            bind_listener(&file, 16),
            Err(SocketError::NotASocket { .. })
        ));
        assert_eq!(std::fs::read(&file).unwrap(), b"data");
    }

    #[test]
    fn backlog_is_what_we_asked_for() {
        // Pending connections queue up to the backlog without accept(): count how many
        // non-blocking connects succeed. std's fixed 128 would stop near 129.
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("agent.sock");
        let _listener = bind_listener(&path, 1024).unwrap();
        let addr = SocketAddrUnix::new(&path).unwrap();
        let mut clients = Vec::new();
        let mut refused = 0;
        for _ in 0..300 {
            let fd = rustix::net::socket_with(
                AddressFamily::UNIX,
                SocketType::STREAM,
                SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
                None,
            )
            .unwrap();
            match rustix::net::connect(&fd, &addr) {
                Ok(()) => clients.push(fd),
                Err(_) => refused += 1,
            }
        }
        assert_eq!(refused, 0);
        assert_eq!(clients.len(), 300);
    }

    #[test]
    fn socket_file_id_removes_only_our_socket() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("agent.sock");
        let listener = bind_listener(&path, 16).unwrap();
        let id = SocketFileId::of(&path).unwrap();
        drop(listener);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"someone else's").unwrap();
        id.remove_if_same(&path);
        assert!(path.exists());
    }
}
