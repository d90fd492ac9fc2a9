//! One client connection to an agent: connect with back-off on a full backlog, and
//! request/reply round trips over a reused read buffer.

use std::io;
use std::path::Path;
use std::time::Duration;

use secretivex_proto::frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::time::Instant;

/// First pause after a connect refused because nothing listens (yet).
const BACKOFF_START: Duration = Duration::from_millis(1);
/// Longest pause between such attempts.
const BACKOFF_MAX: Duration = Duration::from_millis(8);
/// A blocking connect needs a send timeout of at least this much: a zero `SO_SNDTIMEO`
/// would mean "wait forever".
const MIN_BLOCKING_WAIT: Duration = Duration::from_millis(1);

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
        let attempt = tokio::time::timeout_at(deadline, UnixStream::connect(path)).await;
        let err = match attempt {
            Err(_elapsed) => return Err(OpError::ConnectTimeout),
            Ok(Ok(stream)) => return Ok(Conn::new(stream)),
            Ok(Err(e)) => e,
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
            let waited =
                tokio::task::spawn_blocking(move || blocking_connect(&owned, std_deadline))
                    .await
                    .map_err(|e| OpError::Connect(io::Error::other(e)))?;
            match waited {
                Ok(std) => {
                    let stream = UnixStream::from_std(std).map_err(OpError::Connect)?;
                    return Ok(Conn::new(stream));
                }
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

/// A blocking connect bounded by `deadline`; returns a non-blocking stream, or
/// `TimedOut` if the backlog stayed full.
fn blocking_connect(
    path: &Path,
    deadline: std::time::Instant,
) -> io::Result<std::os::unix::net::UnixStream> {
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
    Ok(std::os::unix::net::UnixStream::from(fd))
}

/// An open agent connection.
#[derive(Debug)]
pub struct Conn {
    stream: UnixStream,
}

impl Conn {
    fn new(stream: UnixStream) -> Conn {
        Conn { stream }
    }

    /// Sends one request frame and returns the body (type byte and contents) of the reply.
    ///
    /// The body is read into `rbuf`, which the caller keeps across requests and
    /// connections, so steady-state requests allocate nothing. Replies above the
    /// protocol's 256 KiB limit are refused before anything is allocated.
    pub async fn roundtrip<'b>(
        &mut self,
        request_frame: &[u8],
        rbuf: &'b mut Vec<u8>,
    ) -> Result<&'b [u8], OpError> {
        self.stream
            .write_all(request_frame)
            .await
            .map_err(OpError::Io)?;
        let mut header = [0u8; frame::HEADER_LEN];
        self.stream
            .read_exact(&mut header)
            .await
            .map_err(OpError::Io)?;
        let len = frame::body_len(header).map_err(|e| OpError::Protocol(e.to_string()))?;
        rbuf.clear();
        rbuf.resize(len, 0);
        self.stream.read_exact(rbuf).await.map_err(OpError::Io)?;
        Ok(rbuf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
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
