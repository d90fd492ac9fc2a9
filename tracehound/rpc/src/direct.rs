//! A lean unary `Intercept` caller: gRPC framing by hand over one `h2` connection.
//!
//! [`crate::connect`] gives the full tonic client, whose `Channel` sends every call through
//! a tower `Buffer` (a spawned worker and a channel hop) to a connection task of its own.
//! A load generator sharing two cores with the daemon pays that on every call, CPU the
//! daemon then lacks. Here the caller owns the connection future ([`Driver`]) and polls
//! it in its own task, next to its calls, so a call costs no spawn and no wake-up of
//! another task. Only `Intercept` is offered; anything else wants the real client.

use std::future::{poll_fn, Future};
use std::path::PathBuf;
use std::pin::Pin;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use prost::Message;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::pb;
use crate::target::Target;

/// The `Intercept` method's HTTP/2 path (`/package.Service/Method`).
const INTERCEPT_PATH: &str = "/tracehound.v1.Tracehound/Intercept";
/// The gRPC message prefix: a compression flag byte and a big-endian u32 length.
const PREFIX: usize = 5;
/// Largest reply accepted, as the tonic client allows.
const MAX_REPLY: usize = 64 * 1024 * 1024;
/// Flow-control windows as [`crate::connect`] sets them.
const STREAM_WINDOW: u32 = 4 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

/// Why a direct connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DirectConnectError {
    /// The target string is not `unix:PATH`, a path, or `http://HOST:PORT`.
    #[error("invalid target {target:?}: {reason}")]
    InvalidTarget {
        /// The target as given.
        target: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The socket could not be connected.
    #[error("cannot connect to {target}: {source}")]
    Io {
        /// The target as given.
        target: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP/2 handshake failed.
    #[error("HTTP/2 handshake with {target} failed: {source}")]
    Handshake {
        /// The target as given.
        target: String,
        /// The HTTP/2 error.
        #[source]
        source: h2::Error,
    },
}

/// Why one call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The HTTP/2 stream or connection failed.
    #[error("HTTP/2: {0}")]
    Http2(#[from] h2::Error),
    /// The daemon answered with a non-OK gRPC status.
    #[error("grpc-status {code}: {message}")]
    Status {
        /// The gRPC status code.
        code: String,
        /// `grpc-message`, as sent.
        message: String,
    },
    /// The answer is not a well-formed gRPC reply.
    #[error("malformed reply: {0}")]
    Protocol(String),
    /// The reply message does not decode.
    #[error("cannot decode the reply: {0}")]
    Decode(#[from] prost::DecodeError),
}

/// The connection's I/O loop, to be polled (awaited, or raced against the calls) by the
/// owner for as long as calls are made; calls make no progress while it is not polled.
pub type Driver = Pin<Box<dyn Future<Output = Result<(), h2::Error>> + Send>>;

/// Sends `Intercept` calls on one HTTP/2 connection (see the module documentation).
#[derive(Debug, Clone)]
pub struct DirectClient {
    send: h2::client::SendRequest<Bytes>,
    uri: Uri,
}

/// Connects to `target` (as [`crate::connect`] accepts it) and returns the client and the
/// connection's [`Driver`].
pub async fn connect_direct(target: &str) -> Result<(DirectClient, Driver), DirectConnectError> {
    let invalid = |reason: String| DirectConnectError::InvalidTarget {
        target: target.to_owned(),
        reason,
    };
    let io_error = |source| DirectConnectError::Io {
        target: target.to_owned(),
        source,
    };
    let (base, driver) = match Target::parse(target).map_err(invalid)? {
        Target::Unix(path) => {
            let path: PathBuf = path;
            let stream = tokio::net::UnixStream::connect(&path)
                .await
                .map_err(io_error)?;
            // The authority is required by HTTP/2 but unused over a Unix socket.
            (
                "http://tracehoundd.local".to_owned(),
                handshake(stream, target).await?,
            )
        }
        Target::Http(uri) => {
            let parsed: Uri = uri
                .parse()
                .map_err(|e: http::uri::InvalidUri| invalid(e.to_string()))?;
            let authority = parsed
                .authority()
                .ok_or_else(|| invalid("no host:port".to_owned()))?
                .as_str()
                .to_owned();
            let stream = tokio::net::TcpStream::connect(&authority)
                .await
                .map_err(io_error)?;
            // Small request/answer exchanges: Nagle would hold back every request.
            stream.set_nodelay(true).map_err(io_error)?;
            (
                format!("http://{authority}"),
                handshake(stream, target).await?,
            )
        }
    };
    let uri: Uri = format!("{base}{INTERCEPT_PATH}")
        .parse()
        .map_err(|e: http::uri::InvalidUri| invalid(e.to_string()))?;
    let (send, driver) = driver;
    Ok((DirectClient { send, uri }, driver))
}

async fn handshake<T>(
    io: T,
    target: &str,
) -> Result<(h2::client::SendRequest<Bytes>, Driver), DirectConnectError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (send, connection) = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .handshake::<T, Bytes>(io)
        .await
        .map_err(|source| DirectConnectError::Handshake {
            target: target.to_owned(),
            source,
        })?;
    Ok((send, Box::pin(connection)))
}

/// Frames `msg` as one uncompressed gRPC message.
fn frame(msg: &pb::InterceptRequest) -> Bytes {
    let len = msg.encoded_len();
    let mut buf = BytesMut::with_capacity(PREFIX + len);
    buf.put_u8(0);
    // A request is far below 4 GiB; saturate rather than wrap if it were not (the
    // daemon then refuses it).
    buf.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    // Encoding into a buffer with enough capacity cannot fail.
    let _ = msg.encode(&mut buf);
    buf.freeze()
}

/// Checks `grpc-status` in `headers` (trailers, or the headers of a trailers-only answer).
fn grpc_status(headers: &HeaderMap) -> Option<Result<(), CallError>> {
    let code = headers.get("grpc-status")?;
    if code.as_bytes() == b"0" {
        return Some(Ok(()));
    }
    let message = headers
        .get("grpc-message")
        .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
        .unwrap_or_default();
    Some(Err(CallError::Status {
        code: String::from_utf8_lossy(code.as_bytes()).into_owned(),
        message,
    }))
}

/// Decodes the one message of a unary reply body.
fn unframe(mut body: Bytes) -> Result<pb::InterceptReply, CallError> {
    if body.len() < PREFIX {
        return Err(CallError::Protocol(format!(
            "{} bytes, shorter than a message prefix",
            body.len()
        )));
    }
    let compressed = body.get_u8();
    if compressed != 0 {
        return Err(CallError::Protocol(
            "compressed reply (none was offered)".into(),
        ));
    }
    let len = usize::try_from(body.get_u32()).unwrap_or(usize::MAX);
    if len != body.len() {
        return Err(CallError::Protocol(format!(
            "message prefix says {len} bytes, {} follow",
            body.len()
        )));
    }
    Ok(pb::InterceptReply::decode(body)?)
}

impl DirectClient {
    /// Calls `Intercept` once. The connection's [`Driver`] must be polled meanwhile.
    pub async fn intercept(
        &mut self,
        request: &pb::InterceptRequest,
    ) -> Result<pb::InterceptReply, CallError> {
        poll_fn(|cx| self.send.poll_ready(cx)).await?;
        let head = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers")
            .body(())
            .map_err(|e| CallError::Protocol(e.to_string()))?;
        let (response, mut stream) = self.send.send_request(head, false)?;
        stream.send_data(frame(request), true)?;
        let (parts, mut body) = response.await?.into_parts();
        if parts.status != StatusCode::OK {
            return Err(CallError::Protocol(format!("HTTP status {}", parts.status)));
        }
        // A trailers-only answer carries the status in its headers (always an error for
        // a unary call that owes a message).
        if let Some(status) = grpc_status(&parts.headers) {
            status?;
            return Err(CallError::Protocol("OK status without a message".into()));
        }
        let mut received = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk?;
            // Hand the window back at once: the reply is kept, not the credit.
            body.flow_control().release_capacity(chunk.len())?;
            if received.len() + chunk.len() > PREFIX + MAX_REPLY {
                return Err(CallError::Protocol("reply over 64 MiB".into()));
            }
            received.extend_from_slice(&chunk);
        }
        let trailers = body.trailers().await?.unwrap_or_default();
        match grpc_status(&trailers) {
            Some(status) => status?,
            None => return Err(CallError::Protocol("no grpc-status trailer".into())),
        }
        unframe(received.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_framed_request_carries_its_length_and_decodes_back() {
        let request = pb::InterceptRequest {
            source: "10.0.0.1".into(),
            payload_json: "{\"a\":1}".into(),
            sequence: 7,
            ..Default::default()
        };
        let framed = frame(&request);
        assert_eq!(framed.first(), Some(&0));
        let len = u32::from_be_bytes([framed[1], framed[2], framed[3], framed[4]]) as usize;
        assert_eq!(len, framed.len() - PREFIX);
        let back = pb::InterceptRequest::decode(framed.slice(PREFIX..)).unwrap();
        assert_eq!(back, request);
    }

    #[test]
    fn replies_with_a_bad_prefix_are_refused() {
        let reply = pb::InterceptReply {
            sequence: 3,
            ..Default::default()
        };
        let mut good = BytesMut::new();
        good.put_u8(0);
        good.put_u32(reply.encoded_len() as u32);
        reply.encode(&mut good).unwrap();
        assert_eq!(unframe(good.clone().freeze()).unwrap().sequence, 3);

        let mut compressed = good.clone();
        compressed[0] = 1;
        assert!(matches!(
            unframe(compressed.freeze()),
            Err(CallError::Protocol(_))
        ));
        let truncated = good.freeze().slice(..PREFIX + 1);
        assert!(matches!(unframe(truncated), Err(CallError::Protocol(_))));
        assert!(matches!(
            unframe(Bytes::from_static(&[0, 0])),
            Err(CallError::Protocol(_))
        ));
    }

    #[test]
    fn grpc_status_reads_code_and_message() {
        let mut ok = HeaderMap::new();
        ok.insert("grpc-status", "0".parse().unwrap());
        assert!(matches!(grpc_status(&ok), Some(Ok(()))));
        let mut failed = HeaderMap::new();
        failed.insert("grpc-status", "13".parse().unwrap());
        failed.insert("grpc-message", "boom".parse().unwrap());
        match grpc_status(&failed) {
            Some(Err(CallError::Status { code, message })) => {
                assert_eq!((code.as_str(), message.as_str()), ("13", "boom"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(grpc_status(&HeaderMap::new()).is_none());
    }
}
