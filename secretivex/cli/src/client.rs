//! A minimal blocking SSH agent client over a Unix socket, speaking through
//! `secretivex_proto`. It works with any agent (OpenSSH's, ours, others).

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secretivex_proto::{
    frame, ExtensionRequest, FrameError, Identity, ProtoError, Request, Response, SignRequest,
};

/// What can go wrong talking to an agent.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket could not be opened.
    #[error("cannot connect to the agent at {path}: {source}")]
    Connect { path: PathBuf, source: io::Error },
    /// Reading or writing failed (includes timeouts).
    #[error("agent I/O failed: {0}")]
    Io(#[from] io::Error),
    /// The agent hung up before a complete reply.
    #[error("the agent closed the connection")]
    Closed,
    /// The reply header was refused (empty or over 256 KiB).
    #[error("the agent sent a bad frame: {0}")]
    Frame(#[from] FrameError),
    /// The reply body did not decode.
    #[error("the agent sent a malformed reply: {0}")]
    Decode(#[from] ProtoError),
    /// SSH_AGENT_FAILURE.
    #[error("the agent refused the request")]
    Refused,
    /// A well-formed reply of the wrong kind.
    #[error("unexpected reply from the agent: {0}")]
    Unexpected(&'static str),
}

/// One connection to an agent.
pub struct AgentClient {
    stream: UnixStream,
}

impl AgentClient {
    /// Connects to `path`; `timeout` bounds each read and write (None: wait as long as the
    /// agent needs, e.g. for a confirmation prompt).
    pub fn connect(path: &Path, timeout: Option<Duration>) -> Result<Self, ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        stream.set_read_timeout(timeout)?;
        stream.set_write_timeout(timeout)?;
        Ok(AgentClient { stream })
    }

    /// Sends one request and reads its reply.
    pub fn call(&mut self, request: &Request) -> Result<Response, ClientError> {
        let mut out = Vec::new();
        request.encode_frame(&mut out);
        self.stream.write_all(&out)?;
        let mut header = [0u8; frame::HEADER_LEN];
        read_exact_or_closed(&mut self.stream, &mut header)?;
        let len = frame::body_len(header)?;
        let mut body = vec![0u8; len];
        read_exact_or_closed(&mut self.stream, &mut body)?;
        Ok(Response::decode(&body)?)
    }

    /// The identities the agent lists.
    pub fn identities(&mut self) -> Result<Vec<Identity>, ClientError> {
        match self.call(&Request::RequestIdentities)? {
            Response::Identities(ids) => Ok(ids),
            Response::Failure => Err(ClientError::Refused),
            _ => Err(ClientError::Unexpected("expected an identities answer")),
        }
    }

    /// Asks the agent to sign `data` with the key `key_blob`; returns the signature blob.
    pub fn sign(
        &mut self,
        key_blob: &[u8],
        data: &[u8],
        flags: u32,
    ) -> Result<Vec<u8>, ClientError> {
        let request = Request::Sign(SignRequest {
            key_blob: key_blob.to_vec(),
            data: data.to_vec(),
            flags,
        });
        match self.call(&request)? {
            Response::SignResponse(sig) => Ok(sig),
            Response::Failure => Err(ClientError::Refused),
            _ => Err(ClientError::Unexpected("expected a sign response")),
        }
    }

    /// The extensions the agent supports, via the `query` extension (RFC 9987 §5.8.1);
    /// `None` when the agent does not implement `query`.
    pub fn query(&mut self) -> Result<Option<Vec<String>>, ClientError> {
        match self.call(&Request::Extension(ExtensionRequest::Query))? {
            Response::ExtensionResponse { name, contents } if name == "query" => {
                parse_names(&contents).map(Some)
            }
            Response::Failure | Response::ExtensionFailure => Ok(None),
            _ => Err(ClientError::Unexpected("expected a query response")),
        }
    }
}

/// The `query` reply contents: extension names as consecutive SSH strings.
fn parse_names(mut rest: &[u8]) -> Result<Vec<String>, ClientError> {
    let mut names = Vec::new();
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or(ClientError::Unexpected(
                "truncated extension list in the query reply",
            ))?;
        let len = usize::try_from(u32::from_be_bytes(*len))
            .map_err(|_| ClientError::Unexpected("extension name length does not fit in memory"))?;
        let name = tail.get(..len).ok_or(ClientError::Unexpected(
            "extension name longer than the query reply",
        ))?;
        names.push(String::from_utf8_lossy(name).into_owned());
        rest = tail.get(len..).unwrap_or_default();
    }
    Ok(names)
}

fn read_exact_or_closed(stream: &mut UnixStream, buf: &mut [u8]) -> Result<(), ClientError> {
    stream.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => ClientError::Closed,
        _ => ClientError::Io(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_names_are_consecutive_strings() {
        let mut contents = Vec::new();
        for n in ["query", "session-bind@openssh.com"] {
            contents.extend_from_slice(&u32::try_from(n.len()).unwrap().to_be_bytes());
            contents.extend_from_slice(n.as_bytes());
        }
        assert_eq!(
            parse_names(&contents).unwrap(),
            vec!["query".to_string(), "session-bind@openssh.com".to_string()]
        );
        assert!(parse_names(&[]).unwrap().is_empty());
    }

    #[test]
    fn malformed_query_names_are_errors_not_panics() {
        assert!(parse_names(&[0, 0]).is_err());
        assert!(parse_names(&[0, 0, 0, 9, b'a']).is_err());
        assert!(parse_names(&[0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
