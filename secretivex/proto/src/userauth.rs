//! The `SSH2_MSG_USERAUTH_REQUEST` that `ssh` asks the agent to sign.
//!
//! Destination constraints only allow signing data that is a publickey
//! userauth request (RFC 4252 §7, plus OpenSSH's hostbound variant); the agent
//! takes the user, session id and server host key from it. The layout is:
//!
//! `string session_id, byte 50, string user, string service, string method,
//! bool TRUE, string algorithm, string key_blob [, string server_host_key]`
//!
//! with the last field present only for
//! `publickey-hostbound-v00@openssh.com`. The checks are OpenSSH's
//! (`parse_userauth_request`) except matching the key and algorithm against
//! the signing key, which needs the key and is left to the caller.

use crate::error::ProtoError;
use crate::reader::Reader;
use crate::writer::{append_exact, Sink};
use crate::UserauthRequest;

/// `SSH2_MSG_USERAUTH_REQUEST`.
pub const MSG_USERAUTH_REQUEST: u8 = 50;
/// The only service a signature may be for.
pub const SERVICE_CONNECTION: &str = "ssh-connection";
/// Plain publickey method.
pub const METHOD_PUBLICKEY: &str = "publickey";
/// OpenSSH's host-bound publickey method, which names the server host key.
pub const METHOD_PUBLICKEY_HOSTBOUND: &str = "publickey-hostbound-v00@openssh.com";

/// Parses sign-request data as a publickey userauth request; `None` when it is
/// anything else. See [`UserauthRequest::parse`] for the reason on failure.
pub fn parse_userauth_request(data: &[u8]) -> Option<UserauthRequest> {
    UserauthRequest::parse(data).ok()
}

impl UserauthRequest {
    /// Parses sign-request data as a publickey userauth request, consuming it
    /// exactly.
    pub fn parse(data: &[u8]) -> Result<UserauthRequest, ProtoError> {
        let mut r = Reader::new(data);
        let session_id = r.string("session id")?;
        if session_id.is_empty() {
            return Err(ProtoError::InvalidUserauth("empty session id"));
        }
        if r.u8("userauth message type")? != MSG_USERAUTH_REQUEST {
            return Err(ProtoError::InvalidUserauth("not SSH2_MSG_USERAUTH_REQUEST"));
        }
        let user = r.cstring("userauth user")?;
        let service = r.cstring("userauth service")?;
        let method = r.cstring("userauth method")?;
        if r.u8("userauth has-signature flag")? != 1 {
            return Err(ProtoError::InvalidUserauth(
                "has-signature flag is not TRUE",
            ));
        }
        let algorithm = r.cstring("userauth algorithm")?;
        let key_blob = r.string("userauth key blob")?;
        if service != SERVICE_CONNECTION {
            return Err(ProtoError::InvalidUserauth("service is not ssh-connection"));
        }
        let server_host_key = match method {
            METHOD_PUBLICKEY => None,
            METHOD_PUBLICKEY_HOSTBOUND => Some(r.string("userauth server host key")?.to_vec()),
            _ => return Err(ProtoError::InvalidUserauth("method is not publickey")),
        };
        r.finish("userauth request")?;
        Ok(UserauthRequest {
            session_id: session_id.to_vec(),
            user: user.to_owned(),
            service: service.to_owned(),
            method: method.to_owned(),
            algorithm: algorithm.to_owned(),
            key_blob: key_blob.to_vec(),
            server_host_key,
        })
    }

    /// Encodes the request as `ssh` presents it for signing (for tests and
    /// clients). `server_host_key` is written whenever it is present.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        append_exact(&mut out, |s| self.write(s));
        out
    }

    fn write(&self, s: &mut dyn Sink) {
        s.put_string(&self.session_id);
        s.put_u8(MSG_USERAUTH_REQUEST);
        s.put_string(self.user.as_bytes());
        s.put_string(self.service.as_bytes());
        s.put_string(self.method.as_bytes());
        s.put_bool(true);
        s.put_string(self.algorithm.as_bytes());
        s.put_string(&self.key_blob);
        if let Some(hk) = &self.server_host_key {
            s.put_string(hk);
        }
    }
}
