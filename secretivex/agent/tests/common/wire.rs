//! Raw agent-protocol I/O over the Unix socket, independent of the crates under test, so
//! malformed frames can be written byte by byte and replies checked without trusting our codec.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::keys::Reader;

pub const FAILURE: u8 = 5;
pub const SUCCESS: u8 = 6;
pub const REQUEST_IDENTITIES: u8 = 11;
pub const IDENTITIES_ANSWER: u8 = 12;
pub const SIGN_REQUEST: u8 = 13;
pub const SIGN_RESPONSE: u8 = 14;
pub const ADD_IDENTITY: u8 = 17;
pub const ADD_ID_CONSTRAINED: u8 = 25;
pub const EXTENSION: u8 = 27;
pub const EXTENSION_FAILURE: u8 = 28;

/// Safety net for a silent agent: a reply that takes this long counts as a hang (failure).
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// What came back for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Frame {
        msg_type: u8,
        body: Vec<u8>,
    },
    /// The agent closed (or reset) the connection.
    Closed,
}

impl Reply {
    pub fn msg_type(&self) -> Option<u8> {
        match self {
            Reply::Frame { msg_type, .. } => Some(*msg_type),
            Reply::Closed => None,
        }
    }
}

/// Connects with read/write timeouts set.
pub fn connect(sock: &Path) -> io::Result<UnixStream> {
    let s = UnixStream::connect(sock)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

/// `uint32 len | byte type | body`.
pub fn frame(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len() + 1).expect("frame fits u32");
    let mut v = len.to_be_bytes().to_vec();
    v.push(msg_type);
    v.extend_from_slice(body);
    v
}

/// Reads one reply frame; EOF or a reset before a complete frame is `Closed`.
pub fn read_reply(s: &mut UnixStream) -> io::Result<Reply> {
    let mut header = [0u8; 4];
    if !read_full(s, &mut header)? {
        return Ok(Reply::Closed);
    }
    let len = u32::from_be_bytes(header) as usize;
    if len == 0 || len > 16 * 1024 * 1024 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("agent sent a frame of length {len}"),
        ));
    }
    let mut body = vec![0u8; len];
    if !read_full(s, &mut body)? {
        return Ok(Reply::Closed);
    }
    let msg_type = body.remove(0);
    Ok(Reply::Frame { msg_type, body })
}

/// Fills `buf`; `Ok(false)` on EOF or connection reset, errors (incl. timeouts) otherwise.
fn read_full(s: &mut UnixStream, buf: &mut [u8]) -> io::Result<bool> {
    let mut done = 0;
    while done < buf.len() {
        match s.read(&mut buf[done..]) {
            Ok(0) => return Ok(false),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Sends `bytes` and reads one reply. A write refused because the agent already closed the
/// connection is reported as `Closed`.
pub fn request(s: &mut UnixStream, bytes: &[u8]) -> io::Result<Reply> {
    match s.write_all(bytes) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ) =>
        {
            return Ok(Reply::Closed)
        }
        Err(e) => return Err(e),
    }
    read_reply(s)
}

/// Parses an identities answer into (key blob, comment) pairs.
pub fn parse_identities(body: &[u8]) -> Vec<(Vec<u8>, String)> {
    let mut r = Reader::new(body);
    let n = r.u32();
    let mut out = Vec::new();
    for _ in 0..n {
        let blob = r.string().to_vec();
        let comment = String::from_utf8_lossy(r.string()).into_owned();
        out.push((blob, comment));
    }
    assert_eq!(r.remaining(), 0, "trailing bytes in identities answer");
    out
}

/// Requests identities on an open connection.
pub fn identities_on(s: &mut UnixStream) -> io::Result<Vec<(Vec<u8>, String)>> {
    match request(s, &frame(REQUEST_IDENTITIES, &[]))? {
        Reply::Frame {
            msg_type: IDENTITIES_ANSWER,
            body,
        } => Ok(parse_identities(&body)),
        other => Err(io::Error::other(format!(
            "expected IDENTITIES_ANSWER, got {other:?}"
        ))),
    }
}

/// Connects, requests identities and returns how many the agent listed.
pub fn list_count(sock: &Path) -> io::Result<usize> {
    let mut s = connect(sock)?;
    identities_on(&mut s).map(|ids| ids.len())
}
