//! A client's socket, read and written with direct non-blocking system calls and
//! registered with the runtime only when it has to wait, and then for readability only.
//!
//! Why not tokio's `UnixStream`: it registers every socket for reads *and* writes. On a
//! Unix socket, each time the peer consumes bytes we sent, the kernel signals "writable" to
//! our epoll (and each time we consume the peer's bytes, to the peer's): one useless event
//! per request on each side, and a useless wake-up when that side was asleep. It also
//! registers at accept time and waits for the first readiness event before the first
//! read, although a fan-out client has nearly always sent its request by the time the
//! agent accepts. Here:
//!
//! * the first read after accept is tried directly; only when it finds nothing (`EAGAIN`),
//!   and for every later read (which follows a reply, so the client's next bytes are at
//!   least a round trip away), is the socket registered (once) for readability, and the
//!   read waits for the event;
//! * a reply is sent directly: replies are small and fit in the socket buffer. Only when a
//!   send finds the buffer full (a client that pipelines and does not read) is the socket
//!   registered for writability too, for the rest of the connection.
//!
//! A connection that sends its request, reads the reply and closes (`ssh` with a
//! connection per authentication) thus costs one registration, made while its client
//! reads the reply.

use std::io;
use std::os::fd::OwnedFd;

use rustix::net::{RecvFlags, SendFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Where the socket stands with the runtime's event loop.
enum State {
    /// Not registered: no wait was needed so far.
    Direct(OwnedFd),
    /// Registered for readability (sends are direct).
    Readable(AsyncFd<OwnedFd>),
    /// Registered for readability and writability, after a send found the buffer full.
    ReadWrite(AsyncFd<OwnedFd>),
    /// Only while switching states; a failed registration leaves it here (closed).
    Closed,
}

/// One accepted client connection (a non-blocking Unix stream socket).
pub(crate) struct ClientSocket {
    state: State,
    /// Nothing read yet: the first read is tried directly.
    fresh: bool,
}

impl ClientSocket {
    /// Takes over an accepted, non-blocking socket.
    pub(crate) fn new(fd: OwnedFd) -> ClientSocket {
        ClientSocket {
            state: State::Direct(fd),
            fresh: true,
        }
    }

    /// Reads into the spare capacity of `buf` (the caller reserves some), appending.
    /// Returns the number of bytes read; 0 means the client closed its end.
    pub(crate) async fn read_buf(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        if let State::Direct(fd) = &self.state {
            if self.fresh {
                self.fresh = false;
                match recv_into(fd, buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    done => return done,
                }
            }
            // Later reads follow a reply, and the client's next bytes (or its close) take
            // at least a round trip: trying first would nearly always find nothing, so
            // register at once. A registration reports data that is already there.
            self.register(Interest::READABLE)?;
        }
        let afd = match &self.state {
            State::Readable(afd) | State::ReadWrite(afd) => afd,
            State::Direct(_) | State::Closed => return Err(closed()),
        };
        loop {
            let spare = buf.capacity() - buf.len();
            let mut guard = afd.readable().await?;
            match guard.try_io(|fd| recv_into(fd.get_ref(), buf)) {
                Ok(Ok(n)) => {
                    // Edge-triggered: a read that did not fill the space drained the
                    // socket, so the next read waits for the next event instead of
                    // trying (and failing) once more. A new event after this point is
                    // not lost: tokio only clears the readiness seen by this guard.
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

    /// Sends all of `data`.
    pub(crate) async fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let sent = match &self.state {
                State::Direct(fd) => send_some(fd, data),
                State::Readable(afd) => send_some(afd.get_ref(), data),
                State::ReadWrite(afd) => {
                    let mut guard = afd.writable().await?;
                    match guard.try_io(|fd| send_some(fd.get_ref(), data)) {
                        Ok(sent) => sent,
                        Err(_would_block) => continue,
                    }
                }
                State::Closed => return Err(closed()),
            };
            match sent {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => data = data.get(n..).unwrap_or_default(),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.register(Interest::READABLE | Interest::WRITABLE)?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Registers the socket with `interest`, replacing any earlier registration.
    fn register(&mut self, interest: Interest) -> io::Result<()> {
        let fd = match std::mem::replace(&mut self.state, State::Closed) {
            State::Direct(fd) => fd,
            State::Readable(afd) | State::ReadWrite(afd) => afd.into_inner(),
            State::Closed => return Err(closed()),
        };
        // SAFETY: `OwnedFd` owns an open descriptor and always returns that same one; it
        // stays open while the `AsyncFd` holds it and is never swapped (no `get_mut`).
        let afd = unsafe { AsyncFd::register_with_interest(fd, interest) }?;
        self.state = if interest.is_writable() {
            State::ReadWrite(afd)
        } else {
            State::Readable(afd)
        };
        Ok(())
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection already closed")
}

/// One `recv(2)` into the spare capacity of `buf`, retried on `EINTR`.
fn recv_into(fd: &OwnedFd, buf: &mut Vec<u8>) -> io::Result<usize> {
    if buf.capacity() == buf.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no room to read into",
        ));
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
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    fn pair() -> (UnixStream, ClientSocket) {
        let (client, server) = UnixStream::pair().unwrap();
        server.set_nonblocking(true).unwrap();
        (client, ClientSocket::new(OwnedFd::from(server)))
    }

    #[tokio::test]
    async fn reads_the_first_request_directly_without_registering() {
        let (mut client, mut sock) = pair();
        client.write_all(b"hello").unwrap();
        let mut buf = Vec::with_capacity(64);
        assert_eq!(sock.read_buf(&mut buf).await.unwrap(), 5);
        assert_eq!(buf, b"hello");
        assert!(matches!(sock.state, State::Direct(_)));
        sock.write_all(b"reply").await.unwrap();
        let mut got = [0u8; 5];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"reply");
        drop(client);
        // The read after a reply registers first; the close is reported at once.
        assert_eq!(sock.read_buf(&mut buf).await.unwrap(), 0, "EOF");
        assert!(matches!(sock.state, State::Readable(_)));
    }

    #[tokio::test]
    async fn waits_for_data_after_registering_for_reads_only() {
        let (mut client, mut sock) = pair();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            client.write_all(b"late").unwrap();
            client
        });
        let mut buf = Vec::with_capacity(64);
        assert_eq!(sock.read_buf(&mut buf).await.unwrap(), 4);
        assert_eq!(buf, b"late");
        assert!(matches!(sock.state, State::Readable(_)));
        let client = writer.join().unwrap();
        drop(client);
        assert_eq!(sock.read_buf(&mut buf).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_full_send_buffer_waits_for_the_reader() {
        let (mut client, mut sock) = pair();
        // Far more than a Unix socket buffer holds, so sends must wait for the reader.
        let big = vec![7u8; 4 * 1024 * 1024];
        let reader = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let mut total = 0usize;
            let mut chunk = vec![0u8; 64 * 1024];
            while total < 4 * 1024 * 1024 {
                let n = client.read(&mut chunk).unwrap();
                assert!(chunk[..n].iter().all(|&b| b == 7));
                total += n;
            }
            total
        });
        sock.write_all(&big).await.unwrap();
        assert!(matches!(sock.state, State::ReadWrite(_)));
        assert_eq!(reader.join().unwrap(), big.len());
    }

    #[tokio::test]
    async fn a_full_buffer_is_refused_not_read_into() {
        let (_client, mut sock) = pair();
        let mut buf = Vec::new();
        let err = sock.read_buf(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
