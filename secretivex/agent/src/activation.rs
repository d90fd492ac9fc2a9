//! systemd integration: socket activation (`LISTEN_FDS`) and readiness notification
//! (`NOTIFY_SOCKET`), implemented from the documented protocols (`sd_listen_fds(3)`,
//! `sd_notify(3)`) without linking libsystemd.
//!
//! * **Socket activation.** The service manager binds the socket (see
//!   `secretivex/agent/dist/systemd/secretivex-agent.socket`), starts us with the listening
//!   socket as descriptor 3 and sets `LISTEN_PID` (our pid) and `LISTEN_FDS` (how many
//!   descriptors from 3 on). [`inherited_listener`] checks that descriptor 3 really is a
//!   listening Unix stream socket (a mis-written unit would otherwise surface as odd accept
//!   errors much later), marks it close-on-exec, and removes the variables so that prompt
//!   commands and other children never believe the socket was meant for them.
//! * **Readiness.** With `Type=notify`, systemd waits for `READY=1` on the datagram socket
//!   named by `NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace) before it
//!   considers the agent started; a reload is bracketed by `RELOADING=1` (with
//!   `MONOTONIC_USEC=`, which systemd 253+ requires) and a new `READY=1`; `STOPPING=1`
//!   announces shutdown. Outside systemd (no `NOTIFY_SOCKET`) these are no-ops.
//!
//! `NOTIFY_SOCKET` stays in the environment on purpose: reload notifications need it later,
//! and systemd accepts messages only from the main process (`NotifyAccess=main`, the
//! default), so a child that inherits it cannot change the unit's state.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram, UnixListener};

use rustix::io::{fcntl_getfd, fcntl_setfd, FdFlags};
use rustix::net::{sockopt, AddressFamily, SocketType};

/// The first descriptor passed by socket activation (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: RawFd = 3;

/// Environment variables of the socket-activation protocol, removed once read.
const LISTEN_VARS: [&str; 3] = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"];

/// Why socket activation or a notification failed. Messages say what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    /// `LISTEN_PID` is set but is not a process id.
    #[error("LISTEN_PID={0:?} is not a process id")]
    BadPid(String),
    /// `LISTEN_FDS` is set for us but is not a number.
    #[error("LISTEN_FDS={0:?} is not a descriptor count")]
    BadCount(String),
    /// `LISTEN_FDS=0`: activated, but without a socket.
    #[error("LISTEN_PID names this process but LISTEN_FDS passes no descriptor")]
    NoDescriptors,
    /// Descriptor 3 is not open.
    #[error("descriptor 3 (LISTEN_FDS) is not open: {0}")]
    NotOpen(io::Error),
    /// Descriptor 3 is not a socket at all.
    #[error("descriptor 3 (LISTEN_FDS) is not a socket: {0}")]
    NotSocket(io::Error),
    /// Descriptor 3 is a socket of another family (e.g. `ListenStream=` given a port).
    #[error(
        "descriptor 3 (LISTEN_FDS) is {} socket; the agent needs a Unix socket \
         (ListenStream= must name a path)",
        family_name(*.0)
    )]
    WrongFamily(AddressFamily),
    /// Descriptor 3 is a Unix socket but not a stream socket.
    #[error(
        "descriptor 3 (LISTEN_FDS) is {} socket; the agent needs a stream socket \
         (ListenStream=, not ListenDatagram= or ListenSequentialPacket=)",
        type_name(*.0)
    )]
    WrongType(SocketType),
    /// Descriptor 3 is a connected stream socket, not a listening one (`Accept=yes`).
    #[error(
        "descriptor 3 (LISTEN_FDS) is not listening (the .socket unit must use Accept=no: \
         the agent accepts connections itself)"
    )]
    NotListening,
    /// A socket option or address could not be read or set.
    #[error("inherited socket (LISTEN_FDS): {what}: {error}")]
    Inspect {
        what: &'static str,
        error: io::Error,
    },
    /// `NOTIFY_SOCKET` names something we cannot send to.
    #[error("NOTIFY_SOCKET={0:?}: expected an absolute path or @abstract-name")]
    BadNotifySocket(String),
    /// Sending the notification failed.
    #[error("cannot notify the service manager at {addr}: {error}")]
    Notify { addr: String, error: io::Error },
}

impl From<ActivationError> for io::Error {
    fn from(e: ActivationError) -> Self {
        io::Error::other(e)
    }
}

/// The listening socket systemd passed us, when started by socket activation.
///
/// Returns `Ok(None)` when the process was not socket-activated (`LISTEN_PID` absent or
/// naming another process, e.g. inherited from a parent). When it was, descriptor 3 must be
/// a listening Unix stream socket, else the error explains the unit mistake; the agent must
/// then refuse to start rather than bind a socket of its own nobody connects to.
///
/// Always removes `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` from the environment.
/// Call it once, early, before any thread is started (the environment is process-wide).
/// The socket belongs to the service manager: the agent must not unlink its path at exit.
/// The error is an [`io::Error`] wrapping an [`ActivationError`].
pub fn inherited_listener() -> io::Result<Option<UnixListener>> {
    let pid = std::env::var_os("LISTEN_PID");
    let fds = std::env::var_os("LISTEN_FDS");
    for var in LISTEN_VARS {
        std::env::remove_var(var);
    }
    let Some(count) = passed_descriptors(pid, fds, std::process::id())? else {
        return Ok(None);
    };
    if count > 1 {
        // Our .socket unit passes one; more means a unit with extra Listen*= lines. They are
        // left alone (closed at exec like everything systemd passes once we mark them).
        tracing::warn!(
            count,
            "socket activation passed more than one descriptor; using descriptor 3 only"
        );
        for fd in (LISTEN_FDS_START + 1)..(LISTEN_FDS_START + count) {
            // SAFETY: fcntl(F_GETFD/F_SETFD) on a plain integer has no memory effects; a
            // closed descriptor only yields EBADF, which is ignored.
            unsafe {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags >= 0 {
                    libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
                }
            }
        }
    }
    // SAFETY: fcntl(F_GETFD) on a plain integer has no memory effects; it tells us whether
    // descriptor 3 is open before we wrap it in a type that asserts so.
    if unsafe { libc::fcntl(LISTEN_FDS_START, libc::F_GETFD) } < 0 {
        return Err(ActivationError::NotOpen(io::Error::last_os_error()).into());
    }
    // SAFETY: descriptor 3 is open (checked just above) and, per the protocol (LISTEN_PID is
    // our pid), was passed to this process for it to own; nothing else in the agent refers
    // to descriptor 3, and `inherited_listener` takes it only once since it unset the
    // variables above.
    let fd = unsafe { OwnedFd::from_raw_fd(LISTEN_FDS_START) };
    check_listening_unix_stream(fd.as_fd())?;
    fcntl_setfd(
        &fd,
        fcntl_getfd(&fd).map_err(inspect("F_GETFD"))? | FdFlags::CLOEXEC,
    )
    .map_err(inspect("set close-on-exec"))?;
    let listener = UnixListener::from(fd);
    // The agent's I/O is non-blocking (tokio); systemd hands over a blocking socket.
    listener
        .set_nonblocking(true)
        .map_err(|e| ActivationError::Inspect {
            what: "set non-blocking",
            error: e,
        })?;
    Ok(Some(listener))
}

/// How many descriptors socket activation passed to process `our_pid`, from the values of
/// `LISTEN_PID` and `LISTEN_FDS`; `None` when they were not meant for us.
pub fn passed_descriptors(
    listen_pid: Option<OsString>,
    listen_fds: Option<OsString>,
    our_pid: u32,
) -> Result<Option<RawFd>, ActivationError> {
    let Some(pid) = listen_pid else {
        return Ok(None);
    };
    let pid = pid.to_string_lossy();
    let pid: u32 = pid
        .trim()
        .parse()
        .map_err(|_| ActivationError::BadPid(pid.clone().into_owned()))?;
    if pid != our_pid {
        return Ok(None);
    }
    let Some(fds) = listen_fds else {
        return Err(ActivationError::NoDescriptors);
    };
    let fds = fds.to_string_lossy();
    let count: RawFd = fds
        .trim()
        .parse()
        .ok()
        .filter(|n| (0..=RawFd::MAX - LISTEN_FDS_START).contains(n))
        .ok_or_else(|| ActivationError::BadCount(fds.clone().into_owned()))?;
    if count == 0 {
        return Err(ActivationError::NoDescriptors);
    }
    Ok(Some(count))
}

/// Checks that `fd` is a listening `AF_UNIX` `SOCK_STREAM` socket.
pub fn check_listening_unix_stream(fd: BorrowedFd<'_>) -> Result<(), ActivationError> {
    // getsockname fails with ENOTSOCK on anything but a socket: the clearest first test.
    let addr = rustix::net::getsockname(fd).map_err(|e| ActivationError::NotSocket(e.into()))?;
    let family = addr.address_family();
    if family != AddressFamily::UNIX {
        return Err(ActivationError::WrongFamily(family));
    }
    let kind = sockopt::socket_type(fd).map_err(inspect("SO_TYPE"))?;
    if kind != SocketType::STREAM {
        return Err(ActivationError::WrongType(kind));
    }
    if !sockopt::socket_acceptconn(fd).map_err(inspect("SO_ACCEPTCONN"))? {
        return Err(ActivationError::NotListening);
    }
    Ok(())
}

/// How a socket family reads in an error message.
fn family_name(family: AddressFamily) -> String {
    match family {
        AddressFamily::INET => "an IPv4 (AF_INET)".into(),
        AddressFamily::INET6 => "an IPv6 (AF_INET6)".into(),
        AddressFamily::NETLINK => "a netlink".into(),
        other => format!("a family-{} (AF_*)", other.as_raw()),
    }
}

/// How a socket type reads in an error message.
fn type_name(kind: SocketType) -> String {
    match kind {
        SocketType::DGRAM => "a datagram (SOCK_DGRAM)".into(),
        SocketType::SEQPACKET => "a sequential-packet (SOCK_SEQPACKET)".into(),
        SocketType::RAW => "a raw (SOCK_RAW)".into(),
        other => format!("a type-{} (SOCK_*)", other.as_raw()),
    }
}

fn inspect(what: &'static str) -> impl FnOnce(rustix::io::Errno) -> ActivationError {
    move |e| ActivationError::Inspect {
        what,
        error: e.into(),
    }
}

/// Tells the service manager the agent is ready (no-op when not run by systemd).
///
/// Call once the socket accepts connections and keys from the configuration are loaded,
/// and again after each reload (after [`notify_reloading`]). A failure is logged: the agent
/// serves anyway, and systemd reports the missing notification itself (start timeout).
pub fn notify_ready() {
    log_failure(notify("READY=1"));
}

/// Tells the service manager a reload has started (no-op when not run by systemd).
/// Follow it with [`notify_ready`] whether the reload succeeded or was refused.
pub fn notify_reloading() {
    log_failure(notify(&reloading_message(monotonic_usec())));
}

/// Tells the service manager the agent is shutting down (no-op when not run by systemd).
pub fn notify_stopping() {
    log_failure(notify("STOPPING=1"));
}

/// Sends `state` (newline-separated `KEY=VALUE` assignments) to `$NOTIFY_SOCKET`.
/// Returns `Ok(false)` when the variable is unset (not run by a service manager).
pub fn notify(state: &str) -> Result<bool, ActivationError> {
    match std::env::var_os("NOTIFY_SOCKET") {
        None => Ok(false),
        Some(addr) if addr.is_empty() => Ok(false),
        Some(addr) => send_notification(&addr.to_string_lossy(), state).map(|()| true),
    }
}

/// Sends one notification datagram to `addr`: an absolute path, or `@name` for a socket in
/// the abstract namespace (what systemd itself uses for services).
pub fn send_notification(addr: &str, state: &str) -> Result<(), ActivationError> {
    let target = notify_address(addr)?;
    let fail = |error: io::Error| ActivationError::Notify {
        addr: addr.to_string(),
        error,
    };
    let socket = UnixDatagram::unbound().map_err(fail)?;
    let sent = socket
        .send_to_addr(state.as_bytes(), &target)
        .map_err(fail)?;
    if sent != state.len() {
        // A datagram is all or nothing; a short count would mean a truncated message.
        return Err(fail(io::Error::new(
            io::ErrorKind::WriteZero,
            "short datagram",
        )));
    }
    Ok(())
}

/// The socket address `NOTIFY_SOCKET` names.
fn notify_address(addr: &str) -> Result<SocketAddr, ActivationError> {
    let bad = || ActivationError::BadNotifySocket(addr.to_string());
    if let Some(name) = addr.strip_prefix('@') {
        if name.is_empty() {
            return Err(bad());
        }
        SocketAddr::from_abstract_name(name.as_bytes()).map_err(|_| bad())
    } else if addr.starts_with('/') {
        SocketAddr::from_pathname(addr).map_err(|_| bad())
    } else {
        Err(bad())
    }
}

/// The reload message: systemd 253+ (`Type=notify-reload`) requires the monotonic time of
/// the reload request; older versions ignore the extra field.
fn reloading_message(usec: u64) -> String {
    format!("RELOADING=1\nMONOTONIC_USEC={usec}")
}

/// `CLOCK_MONOTONIC` in microseconds, the clock systemd compares `MONOTONIC_USEC` with.
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000).saturating_add(nanos / 1_000)
}

fn log_failure(result: Result<bool, ActivationError>) {
    if let Err(e) = result {
        tracing::warn!(error = %e, "service manager notification failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    fn os(s: &str) -> Option<OsString> {
        Some(OsString::from(s))
    }

    #[test]
    fn descriptors_only_for_our_pid() {
        assert_eq!(passed_descriptors(None, os("1"), 42).unwrap(), None);
        assert_eq!(passed_descriptors(os("41"), os("1"), 42).unwrap(), None);
        assert_eq!(passed_descriptors(os("42"), os("1"), 42).unwrap(), Some(1));
        assert_eq!(passed_descriptors(os("42"), os("3"), 42).unwrap(), Some(3));
        assert!(matches!(
            passed_descriptors(os("42"), os("0"), 42),
            Err(ActivationError::NoDescriptors)
        ));
        assert!(matches!(
            passed_descriptors(os("42"), None, 42),
            Err(ActivationError::NoDescriptors)
        ));
        assert!(matches!(
            passed_descriptors(os("42"), os("-1"), 42),
            Err(ActivationError::BadCount(_))
        ));
        assert!(matches!(
            passed_descriptors(os("42"), os("many"), 42),
            Err(ActivationError::BadCount(_))
        ));
        assert!(matches!(
            passed_descriptors(os("x"), os("1"), 42),
            Err(ActivationError::BadPid(_))
        ));
    }

    #[test]
    fn accepts_only_a_listening_unix_stream_socket() {
        let dir = tempfile::tempdir().unwrap();
        let listener = UnixListener::bind(dir.path().join("l")).unwrap();
        check_listening_unix_stream(listener.as_fd()).unwrap();

        let (a, _b) = UnixStream::pair().unwrap();
        assert!(matches!(
            check_listening_unix_stream(a.as_fd()),
            Err(ActivationError::NotListening)
        ));
        let dgram = UnixDatagram::unbound().unwrap();
        let err = check_listening_unix_stream(dgram.as_fd()).unwrap_err();
        assert!(matches!(err, ActivationError::WrongType(_)), "{err}");
        assert!(
            err.to_string()
                .contains("is a datagram (SOCK_DGRAM) socket"),
            "{err}"
        );
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let err = check_listening_unix_stream(tcp.as_fd()).unwrap_err();
        assert!(matches!(err, ActivationError::WrongFamily(_)), "{err}");
        assert!(
            err.to_string().contains("is an IPv4 (AF_INET) socket"),
            "{err}"
        );
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        let err = check_listening_unix_stream(file.as_fd()).unwrap_err();
        assert!(matches!(err, ActivationError::NotSocket(_)), "{err}");
        assert!(err.to_string().contains("not a socket"), "{err}");
    }

    fn receive(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn notifies_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        send_notification(path.to_str().unwrap(), "READY=1").unwrap();
        assert_eq!(receive(&server), "READY=1");
    }

    #[test]
    fn notifies_an_abstract_socket() {
        let name = format!("secretivex-test-notify-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        send_notification(&format!("@{name}"), "STOPPING=1").unwrap();
        assert_eq!(receive(&server), "STOPPING=1");
    }

    #[test]
    fn refuses_relative_and_empty_notify_addresses() {
        for bad in ["relative/path", "@", "vsock:2:1234"] {
            assert!(
                matches!(
                    send_notification(bad, "READY=1"),
                    Err(ActivationError::BadNotifySocket(_))
                ),
                "{bad}"
            );
        }
        // A path nobody listens on is a send error naming the address.
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none");
        let err = send_notification(missing.to_str().unwrap(), "READY=1").unwrap_err();
        assert!(err.to_string().contains("none"), "{err}");
    }

    #[test]
    fn reload_message_carries_the_monotonic_time() {
        let before = monotonic_usec();
        assert!(before > 0);
        let msg = reloading_message(before);
        assert_eq!(msg, format!("RELOADING=1\nMONOTONIC_USEC={before}"));
        assert!(monotonic_usec() >= before);
    }
}
