//! Client → agent messages: decoding (agent side) and encoding (client side).
//!
//! Every decoder consumes the body exactly; leftover bytes are an error. That
//! is stricter than OpenSSH in places (it ignores trailing bytes after a sign
//! request, for instance) but matches what OpenSSH's clients send.

use zeroize::Zeroizing;

use crate::constraint::{read_constraints, write_constraints};
use crate::error::ProtoError;
use crate::msg;
use crate::reader::Reader;
use crate::writer::{append_exact, write_frame, Sink};
use crate::{
    AddIdentity, ExtensionRequest, PrivateKeyWire, Request, SessionBind, SignRequest, SmartcardKey,
};

/// Extension name of `query` (RFC 9987 §5.8.1).
pub const EXT_QUERY: &str = "query";
/// Extension name of OpenSSH's `session-bind@openssh.com`.
pub const EXT_SESSION_BIND: &str = "session-bind@openssh.com";

impl Request {
    /// Decodes a message body: the type byte followed by its contents (the frame
    /// length prefix already removed, see [`crate::frame`]).
    ///
    /// Message numbers this crate does not know decode to
    /// [`Request::Unknown`] so the agent can answer `FAILURE` (RFC 9987 §5.1).
    /// `ADD_IDENTITY` (17) is parsed with the same constraint tail as
    /// `ADD_ID_CONSTRAINED` (25), as OpenSSH does, so constraints are never
    /// silently dropped; likewise for 20 and 26.
    pub fn decode(body: &[u8]) -> Result<Request, ProtoError> {
        let mut r = Reader::new(body);
        let msg_type = r.u8("message type").map_err(|_| ProtoError::Empty)?;
        let req = match msg_type {
            msg::REQUEST_IDENTITIES => Request::RequestIdentities,
            msg::SIGN_REQUEST => {
                let key_blob = r.string("sign key blob")?.to_vec();
                let data = r.string("sign data")?.to_vec();
                let flags = r.u32("sign flags")?;
                Request::Sign(SignRequest {
                    key_blob,
                    data,
                    flags,
                })
            }
            msg::ADD_IDENTITY | msg::ADD_ID_CONSTRAINED => {
                let key = PrivateKeyWire::read(&mut r)?;
                // OpenSSH reads the comment as a C string but does not require
                // UTF-8 (key files named in other encodings exist). The comment is
                // informational, so decode it lossily rather than refuse the key.
                let comment = String::from_utf8_lossy(r.cstring_bytes("comment")?).into_owned();
                let constraints = read_constraints(&mut r)?;
                Request::AddIdentity(AddIdentity {
                    key,
                    comment,
                    constraints,
                })
            }
            msg::REMOVE_IDENTITY => Request::RemoveIdentity {
                key_blob: r.string("remove key blob")?.to_vec(),
            },
            msg::REMOVE_ALL_IDENTITIES => Request::RemoveAllIdentities,
            msg::ADD_SMARTCARD_KEY | msg::ADD_SMARTCARD_KEY_CONSTRAINED => {
                let id = r.cstring("smartcard id")?.to_owned();
                let pin = Zeroizing::new(r.cstring_bytes("smartcard pin")?.to_vec());
                let constraints = read_constraints(&mut r)?;
                Request::AddSmartcardKey(SmartcardKey {
                    id,
                    pin,
                    constraints,
                })
            }
            msg::REMOVE_SMARTCARD_KEY => {
                let id = r.cstring("smartcard id")?.to_owned();
                let pin = Zeroizing::new(r.cstring_bytes("smartcard pin")?.to_vec());
                Request::RemoveSmartcardKey { id, pin }
            }
            msg::LOCK => Request::Lock {
                passphrase: Zeroizing::new(r.string("passphrase")?.to_vec()),
            },
            msg::UNLOCK => Request::Unlock {
                passphrase: Zeroizing::new(r.string("passphrase")?.to_vec()),
            },
            msg::EXTENSION => Request::Extension(read_extension(&mut r)?),
            other => {
                // Contents of unknown messages are not ours to judge.
                r.rest();
                Request::Unknown { msg_type: other }
            }
        };
        r.finish("request")?;
        Ok(req)
    }

    /// The message number this request is sent with. `AddIdentity` and
    /// `AddSmartcardKey` use the constrained form only when they carry
    /// constraints, as `ssh-add` does.
    pub fn msg_type(&self) -> u8 {
        match self {
            Request::RequestIdentities => msg::REQUEST_IDENTITIES,
            Request::Sign(_) => msg::SIGN_REQUEST,
            Request::AddIdentity(a) if a.constraints.is_empty() => msg::ADD_IDENTITY,
            Request::AddIdentity(_) => msg::ADD_ID_CONSTRAINED,
            Request::RemoveIdentity { .. } => msg::REMOVE_IDENTITY,
            Request::RemoveAllIdentities => msg::REMOVE_ALL_IDENTITIES,
            Request::AddSmartcardKey(k) if k.constraints.is_empty() => msg::ADD_SMARTCARD_KEY,
            Request::AddSmartcardKey(_) => msg::ADD_SMARTCARD_KEY_CONSTRAINED,
            Request::RemoveSmartcardKey { .. } => msg::REMOVE_SMARTCARD_KEY,
            Request::Lock { .. } => msg::LOCK,
            Request::Unlock { .. } => msg::UNLOCK,
            Request::Extension(_) => msg::EXTENSION,
            Request::Unknown { msg_type } => *msg_type,
        }
    }

    /// Appends the length-prefixed frame for this request to `out`.
    ///
    /// Key-adding, lock and PIN requests put secrets into `out`: hold it in a
    /// `Zeroizing` buffer. The exact size is reserved first so `out` does not
    /// reallocate mid-write. `Unknown` is written as its bare type byte.
    pub fn encode_frame(&self, out: &mut Vec<u8>) {
        write_frame(out, |s| self.write_body(s));
    }

    /// Appends the body (type byte and contents, no length prefix) to `out`.
    pub fn encode_body(&self, out: &mut Vec<u8>) {
        append_exact(out, |s| self.write_body(s));
    }

    fn write_body(&self, s: &mut dyn Sink) {
        s.put_u8(self.msg_type());
        match self {
            Request::RequestIdentities | Request::RemoveAllIdentities | Request::Unknown { .. } => {
            }
            Request::Sign(req) => {
                s.put_string(&req.key_blob);
                s.put_string(&req.data);
                s.put_u32(req.flags);
            }
            Request::AddIdentity(a) => {
                a.key.write(s);
                s.put_string(a.comment.as_bytes());
                write_constraints(s, &a.constraints);
            }
            Request::RemoveIdentity { key_blob } => s.put_string(key_blob),
            Request::AddSmartcardKey(k) => {
                s.put_string(k.id.as_bytes());
                s.put_string(&k.pin);
                write_constraints(s, &k.constraints);
            }
            Request::RemoveSmartcardKey { id, pin } => {
                s.put_string(id.as_bytes());
                s.put_string(pin);
            }
            Request::Lock { passphrase } | Request::Unlock { passphrase } => {
                s.put_string(passphrase)
            }
            Request::Extension(ext) => write_extension(s, ext),
        }
    }
}

fn read_extension(r: &mut Reader<'_>) -> Result<ExtensionRequest, ProtoError> {
    let name = r.cstring("extension name")?;
    Ok(match name {
        EXT_QUERY => ExtensionRequest::Query,
        EXT_SESSION_BIND => {
            let host_key = r.string("session-bind host key")?.to_vec();
            let session_id = r.string("session-bind session id")?.to_vec();
            let signature = r.string("session-bind signature")?.to_vec();
            let is_forwarding = r.bool("session-bind is_forwarding")?;
            ExtensionRequest::SessionBind(SessionBind {
                host_key,
                session_id,
                signature,
                is_forwarding,
            })
        }
        other => ExtensionRequest::Other {
            name: other.to_owned(),
            contents: r.rest().to_vec(),
        },
    })
}

fn write_extension(s: &mut dyn Sink, ext: &ExtensionRequest) {
    match ext {
        ExtensionRequest::Query => s.put_string(EXT_QUERY.as_bytes()),
        ExtensionRequest::SessionBind(b) => {
            s.put_string(EXT_SESSION_BIND.as_bytes());
            s.put_string(&b.host_key);
            s.put_string(&b.session_id);
            s.put_string(&b.signature);
            s.put_bool(b.is_forwarding);
        }
        ExtensionRequest::Other { name, contents } => {
            s.put_string(name.as_bytes());
            s.put(contents);
        }
    }
}
