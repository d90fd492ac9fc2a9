//! One client connection to an agent: connect with back-off on a full backlog, and
//! request/reply round trips over a reused read buffer.
//!
//! The socket is read and written with direct non-blocking system calls and registered
//! with the runtime for readability only. tokio's `UnixStream` registers for writability
//! too, and on a Unix socket the kernel then signals "writable" to our epoll every time
//! the agent consumes a request: a useless event per request, and a useless wake-up of
//! the generator when it was waiting for replies. A reply is read with one `recv` into
//! the client's buffer (header and body together), not one for the header and one for
//! the body plus one more that finds the socket empty.

use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use rustix::net::{RecvFlags, SendFlags};
use secretivex_proto::frame;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::time::Instant;

/// First pause after a connect refused because nothing listens (yet).
const BACKOFF_START: Duration = Duration::from_millis(1);
/// Longest pause between such attempts.
const BACKOFF_MAX: Duration = Duration::from_millis(8);
/// A blocking connect needs a send timeout of at least this much: a zero `SO_SNDTIMEO`
/// would mean "wait forever".
const MIN_BLOCKING_WAIT: Duration = Duration::from_millis(1);
/// Free space offered to each read of a reply: a signature reply is a few hundred bytes
/// (an RSA-4096 one about 550), so one read takes in a whole reply.
const READ_CHUNK: usize = 2048;

/// Why an operation failed. Each variant has its own counter in the report.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// Connect still waiting (full backlog) or refused when the connect timeout expired.
    #[error("connect timed out")]
    ConnectTimeout,
    /// Connect failed for another reason (no such socket, permission, …).
    #[error("connect: {0}")]
    Connect(io::Error),
    /// No complete reply within the request timeout.
    #[error("request timed out")]
    RequestTimeout,
    /// The connection failed while writing or reading (reset, closed by the agent).
    #[error("i/o: {0}")]
    Io(io::Error),
    /// The agent answered something that is not a valid reply to the request.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The agent answered `SSH_AGENT_FAILURE`.
    #[error("agent answered FAILURE")]
    AgentFailure,
    /// A sampled signature (or list answer) did not check out.
    #[error("verification failed: {0}")]
    Verify(String),
}

/// Connects to `path`, waiting while the listen backlog is full.
///
/// The first attempt is a non-blocking connect. If the backlog is full (`EAGAIN`), the
/// client does what `ssh` does: a blocking `connect(2)` that sleeps in the kernel until
/// the agent accepts, run on tokio's blocking pool with `SO_SNDTIMEO` as its bound. So a
/// thousand waiting clients cost no CPU, unlike retrying a non-blocking connect in a loop,
/// which would steal cycles from the agent under test. `ECONNREFUSED` (nothing listening,
/// e.g. an agent restarting) is retried after a back-off of 1, 2, 4, 8, 8, … ms.
///
/// `retries` counts connects that found the backlog full or were refused and had to
/// wait; the whole connect is bounded by `timeout` and then fails with
/// [`OpError::ConnectTimeout`].
pub async fn connect(path: &Path, timeout: Duration, retries: &mut u64) -> Result<Conn, OpError> {
    let deadline = Instant::now() + timeout;
    let mut backoff = BACKOFF_START;
    loop {
        let err = match nonblocking_connect(path) {
            Ok(fd) => return Conn::new(fd).map_err(OpError::Connect),
            Err(e) => e,
        };
        if !matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::ConnectionRefused
        ) {
            return Err(OpError::Connect(err));
        }
        *retries = retries.saturating_add(1);
        let err = if err.kind() == io::ErrorKind::WouldBlock {
            let owned = path.to_owned();
            let std_deadline = deadline.into_std();
            // Bounded by the send timeout it sets, so no timer is needed here.
            let waited =
                tokio::task::spawn_blocking(move || blocking_connect(&owned, std_deadline))
                    .await
                    .map_err(|e| OpError::Connect(io::Error::other(e)))?;
            match waited {
                Ok(fd) => return Conn::new(fd).map_err(OpError::Connect),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return Err(OpError::ConnectTimeout)
                }
                Err(e) => e,
            }
        } else {
            err
        };
        if err.kind() != io::ErrorKind::ConnectionRefused {
            return Err(OpError::Connect(err));
        }
        if Instant::now() + backoff >= deadline {
            return Err(OpError::ConnectTimeout);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// A non-blocking `connect(2)`. On a Unix stream socket it either completes at once or
/// fails (`EAGAIN` when the backlog is full); it never stays in progress.
fn nonblocking_connect(path: &Path) -> io::Result<OwnedFd> {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    let addr = SocketAddrUnix::new(path)?;
    loop {
        match rustix::net::connect(&fd, &addr) {
            Ok(()) => return Ok(fd),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// A blocking connect bounded by `deadline`; returns a non-blocking socket, or
/// `TimedOut` if the backlog stayed full.
fn blocking_connect(path: &Path, deadline: std::time::Instant) -> io::Result<OwnedFd> {
    use rustix::io::Errno;
    use rustix::net::{sockopt, AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )?;
    let addr = SocketAddrUnix::new(path)?;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left < MIN_BLOCKING_WAIT {
            return Err(io::ErrorKind::TimedOut.into());
        }
        sockopt::set_socket_timeout(&fd, sockopt::Timeout::Send, Some(left))?;
        match rustix::net::connect(&fd, &addr) {
            Ok(()) => break,
            Err(Errno::INTR) => continue,
            // The send timeout expired with the backlog still full.
            Err(Errno::AGAIN) => return Err(io::ErrorKind::TimedOut.into()),
            Err(e) => return Err(e.into()),
        }
    }
    rustix::io::ioctl_fionbio(&fd, true)?;
    Ok(fd)
}

/// Registers `fd` with the runtime's event loop for `interest`.
#[allow(unsafe_code)] // tokio 1.54 made registration `unsafe` (I/O safety); see SAFETY.
fn register(fd: OwnedFd, interest: Interest) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: `OwnedFd` owns an open descriptor and always returns that same one; it stays
    // open while the `AsyncFd` holds it and is never swapped (no `get_mut` is used).
    unsafe { AsyncFd::register_with_interest(fd, interest) }.map_err(io::Error::from)
}

/// An open agent connection.
#[derive(Debug)]
pub struct Conn {
    /// `None` only while the registration is being replaced.
    fd: Option<AsyncFd<OwnedFd>>,
    /// Registered for writability too (after a send found the socket buffer full).
    writable: bool,
}

impl Conn {
    fn new(fd: OwnedFd) -> io::Result<Conn> {
        Ok(Conn {
            fd: Some(register(fd, Interest::READABLE)?),
            writable: false,
        })
    }

    fn fd(&self) -> io::Result<&AsyncFd<OwnedFd>> {
        self.fd
            .as_ref()
            .ok_or_else(|| io::ErrorKind::NotConnected.into())
    }

    /// Sends one request frame and returns the body (type byte and contents) of the reply.
    ///
    /// The reply is read into `rbuf`, which the caller keeps across requests and
    /// connections, so steady-state requests allocate nothing. Replies above the
    /// protocol's 256 KiB limit are refused before anything is allocated. Bytes after the
    /// reply (there are none: one request is outstanding at a time) are a protocol error.
    pub async fn roundtrip<'b>(
        &mut self,
        request_frame: &[u8],
        rbuf: &'b mut Vec<u8>,
    ) -> Result<&'b [u8], OpError> {
        self.send_all(request_frame).await.map_err(OpError::Io)?;
        rbuf.clear();
        let total = loop {
            if let Some(header) = rbuf.first_chunk::<{ frame::HEADER_LEN }>() {
                let len = frame::body_len(*header).map_err(|e| OpError::Protocol(e.to_string()))?;
                let total = frame::HEADER_LEN + len;
                if rbuf.len() >= total {
                    break total;
                }
                rbuf.reserve(total - rbuf.len());
            } else {
                rbuf.reserve(READ_CHUNK);
            }
            if self.recv(rbuf).await.map_err(OpError::Io)? == 0 {
                return Err(OpError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        };
        if rbuf.len() > total {
            return Err(OpError::Protocol("bytes after the reply".into()));
        }
        Ok(rbuf.get(frame::HEADER_LEN..total).unwrap_or_default())
    }

    /// Reads what is available into the spare capacity of `buf` (at least one byte or
    /// end of stream), waiting for readability if nothing is.
    async fn recv(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let afd = self.fd()?;
        loop {
            let spare = buf.capacity() - buf.len();
            let mut guard = afd.readable().await?;
            match guard.try_io(|fd| recv_into(fd.get_ref(), buf)) {
                Ok(Ok(n)) => {
                    // Edge-triggered: a read that did not fill the space drained the
                    // socket, so the next read waits for the next event instead of
                    // trying once more to find nothing.
                    if n > 0 && n < spare {
                        guard.clear_ready();
                    }
                    return Ok(n);
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends all of `data`: directly while the socket buffer has room, else waiting for
    /// writability (registered for it from then on).
    async fn send_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let afd = self.fd()?;
            let sent = if self.writable {
                let mut guard = afd.writable().await?;
                match guard.try_io(|fd| send_some(fd.get_ref(), data)) {
                    Ok(sent) => sent,
                    Err(_would_block) => continue,
                }
            } else {
                send_some(afd.get_ref(), data)
            };
            match sent {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => data = data.get(n..).unwrap_or_default(),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && !self.writable => {
                    let fd = self.fd.take().ok_or(io::ErrorKind::NotConnected)?;
                    self.fd = Some(register(
                        fd.into_inner(),
                        Interest::READABLE | Interest::WRITABLE,
                    )?);
                    self.writable = true;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// One `recv(2)` into the spare capacity of `buf`, retried on `EINTR`.
fn recv_into(fd: &OwnedFd, buf: &mut Vec<u8>) -> io::Result<usize> {
    if buf.capacity() == buf.len() {
        buf.reserve(READ_CHUNK);
    }
    loop {
        match rustix::net::recv(fd, rustix::buffer::spare_capacity(buf), RecvFlags::empty()) {
            Ok((n, _)) => return Ok(n),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// One `send(2)`, without `SIGPIPE`, retried on `EINTR`.
fn send_some(fd: &OwnedFd, data: &[u8]) -> io::Result<usize> {
    loop {
        match rustix::net::send(fd, data, SendFlags::NOSIGNAL) {
            Ok(n) => return Ok(n),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixListener;

    #[tokio::test]
    async fn missing_socket_is_a_connect_error_not_a_retry() {
        let dir = tempfile::tempdir().unwrap();
        let mut retries = 0;
        let err = connect(
            &dir.path().join("nope"),
            Duration::from_secs(1),
            &mut retries,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, OpError::Connect(_)), "{err:?}");
        assert_eq!(retries, 0);
    }

    #[tokio::test]
    async fn full_backlog_is_retried_counted_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        // Listening again updates the backlog: 0 lets one connection wait, no more.
        rustix::net::listen(&listener, 0).unwrap();
        let mut retries = 0;
        let _held = connect(&path, Duration::from_secs(5), &mut retries)
            .await
            .unwrap();
        assert_eq!(retries, 0);
        let err = connect(&path, Duration::from_millis(100), &mut retries)
            .await
            .unwrap_err();
        assert!(matches!(err, OpError::ConnectTimeout), "{err:?}");
        assert_eq!(retries, 1);

        // A connect that finds the backlog full waits in the kernel and goes through
        // once the agent accepts.
        let mut retries = 0;
        let mut waiting = Box::pin(connect(&path, Duration::from_secs(30), &mut retries));
        // One poll: the non-blocking attempt fails and the blocking wait is under way.
        let first = std::future::poll_fn(|cx| {
            std::task::Poll::Ready(waiting.as_mut().poll(cx).is_pending())
        })
        .await;
        assert!(first, "the backlog was full, so the connect must wait");
        let acceptor = std::thread::spawn(move || {
            let held = listener.accept().unwrap();
            let waited = listener.accept().unwrap();
            (held, waited)
        });
        let conn = waiting.await;
        assert!(conn.is_ok(), "{conn:?}");
        assert_eq!(retries, 1);
        drop(acceptor.join().unwrap());
    }

    #[tokio::test]
    async fn roundtrip_reads_one_frame_and_refuses_oversized_replies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let listener = UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut req = [0u8; 5];
            s.read_exact(&mut req).await.unwrap();
            s.write_all(&[0, 0, 0, 1, 5]).await.unwrap();
            s.read_exact(&mut req).await.unwrap();
            s.write_all(&[0x7f, 0, 0, 0]).await.unwrap();
        });
        let mut retries = 0;
        let mut conn = connect(&path, Duration::from_secs(5), &mut retries)
            .await
            .unwrap();
        let mut buf = Vec::new();
        assert_eq!(
            conn.roundtrip(&[0, 0, 0, 1, 11], &mut buf).await.unwrap(),
            [5]
        );
        let err = conn
            .roundtrip(&[0, 0, 0, 1, 11], &mut buf)
            .await
            .unwrap_err();
        assert!(matches!(err, OpError::Protocol(_)), "{err:?}");
        server.await.unwrap();
    }
}
