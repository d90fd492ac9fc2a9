//! Agent → client messages: encoding (agent side) and decoding (client side).

use crate::error::ProtoError;
use crate::msg;
use crate::reader::Reader;
use crate::writer::{append_exact, encoded_len, write_frame, Sink};
use crate::{Identity, Response};

/// Smallest wire size of one identity (two empty strings), used to bound the
/// declared count before allocating.
const MIN_IDENTITY_LEN: usize = 8;

impl Response {
    /// The message number this reply is sent with.
    pub fn msg_type(&self) -> u8 {
        match self {
            Response::Failure => msg::FAILURE,
            Response::Success => msg::SUCCESS,
            Response::Identities(_) => msg::IDENTITIES_ANSWER,
            Response::SignResponse(_) => msg::SIGN_RESPONSE,
            Response::ExtensionFailure => msg::EXTENSION_FAILURE,
            Response::ExtensionResponse { .. } => msg::EXTENSION_RESPONSE,
        }
    }

    /// Appends the length-prefixed frame for this reply to `out`.
    ///
    /// Peers refuse replies over [`crate::MAX_FRAME_LEN`]; use
    /// [`Response::encoded_len`] to check before sending a large identity list.
    pub fn encode_frame(&self, out: &mut Vec<u8>) {
        write_frame(out, |s| self.write_body(s));
    }

    /// Appends the body (type byte and contents, no length prefix) to `out`.
    pub fn encode_body(&self, out: &mut Vec<u8>) {
        append_exact(out, |s| self.write_body(s));
    }

    /// Length of the body (type byte and contents, without the length prefix).
    pub fn encoded_len(&self) -> usize {
        encoded_len(|s| self.write_body(s))
    }

    fn write_body(&self, s: &mut dyn Sink) {
        s.put_u8(self.msg_type());
        match self {
            Response::Failure | Response::Success | Response::ExtensionFailure => {}
            Response::Identities(ids) => {
                s.put_u32(u32::try_from(ids.len()).unwrap_or(u32::MAX));
                for id in ids {
                    s.put_string(&id.key_blob);
                    s.put_string(id.comment.as_bytes());
                }
            }
            Response::SignResponse(sig) => s.put_string(sig),
            Response::ExtensionResponse { name, contents } => {
                s.put_string(name.as_bytes());
                s.put(contents);
            }
        }
    }

    /// Decodes a reply body (type byte and contents).
    ///
    /// For `EXTENSION_RESPONSE` the name is the first string and `contents` is
    /// everything after it, since the layout of the rest depends on the
    /// extension.
    pub fn decode(body: &[u8]) -> Result<Response, ProtoError> {
        let mut r = Reader::new(body);
        let msg_type = r.u8("message type").map_err(|_| ProtoError::Empty)?;
        let resp = match msg_type {
            msg::FAILURE => Response::Failure,
            msg::SUCCESS => Response::Success,
            msg::EXTENSION_FAILURE => Response::ExtensionFailure,
            msg::IDENTITIES_ANSWER => {
                let count = r.u32("identity count")?;
                let n = usize::try_from(count).unwrap_or(usize::MAX);
                // Each entry needs at least MIN_IDENTITY_LEN bytes, so a count the
                // body cannot hold is refused before anything is allocated.
                if n > r.remaining() / MIN_IDENTITY_LEN {
                    return Err(ProtoError::LengthExceedsInput {
                        what: "identity count",
                        declared: count,
                        remaining: r.remaining(),
                    });
                }
                let mut ids = Vec::with_capacity(n);
                for _ in 0..n {
                    let key_blob = r.string("identity key blob")?.to_vec();
                    let comment =
                        String::from_utf8_lossy(r.cstring_bytes("identity comment")?).into_owned();
                    ids.push(Identity { key_blob, comment });
                }
                Response::Identities(ids)
            }
            msg::SIGN_RESPONSE => Response::SignResponse(r.string("signature")?.to_vec()),
            msg::EXTENSION_RESPONSE => {
                let name = r.cstring("extension name")?.to_owned();
                Response::ExtensionResponse {
                    name,
                    contents: r.rest().to_vec(),
                }
            }
            other => return Err(ProtoError::UnknownResponse(other)),
        };
        r.finish("response")?;
        Ok(resp)
    }
}
