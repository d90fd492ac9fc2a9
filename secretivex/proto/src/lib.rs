//! The SSH agent protocol (RFC 9987 and the OpenSSH extensions) as Rust types.
//!
//! This crate owns the wire format and nothing else: no sockets, no crypto, no clocks.
//! Both directions are covered so that the agent, the `secretivex` client and the bench
//! share one codec:
//!
//! * agent side: [`frame::body_len`] validates a frame header, [`Request::decode`] parses a body,
//!   [`Response::encode_frame`] writes a reply;
//! * client side: [`Request::encode_frame`] and [`Response::decode`];
//! * [`parse_userauth_request`] reads the userauth request inside sign data, for
//!   destination constraints.
//!
//! Decoding never panics and never allocates more than the input could justify: every
//! length and count is checked against the bytes that remain. Decoders are strict:
//! trailing bytes, unknown constraints and unsupported key types are typed
//! [`ProtoError`]s, so a caller can refuse a request whole.
//!
//! ```
//! use secretivex_proto::{frame, Request, Response};
//!
//! // Client side: write a request.
//! let mut wire = Vec::new();
//! Request::RequestIdentities.encode_frame(&mut wire);
//!
//! // Agent side: check the header, decode the body, answer.
//! let (header, rest) = wire.split_first_chunk::<4>().unwrap();
//! let len = frame::body_len(*header).unwrap();
//! assert_eq!(Request::decode(&rest[..len]), Ok(Request::RequestIdentities));
//! let mut reply = Vec::new();
//! Response::Identities(vec![]).encode_frame(&mut reply);
//! assert_eq!(reply, [0, 0, 0, 5, 12, 0, 0, 0, 0]);
//! ```
//!
//! What is in:
//! * every request and reply of RFC 9987 §5 plus `query` and `session-bind@openssh.com`;
//! * private keys in OpenSSH's agent form for Ed25519, ECDSA P-256/384/521 and RSA,
//!   plain and as `-cert-v01@openssh.com` certificates ([`key_wire`]);
//! * lifetime, confirm and `restrict-destination-v00@openssh.com` constraints with
//!   OpenSSH's limits and consistency rules ([`constraint`]).
//!
//! What is deliberately out:
//! * security-key (`sk-*`), DSA, XMSS and ML-DSA private keys (refused as
//!   [`ProtoError::UnsupportedKeyType`]);
//! * the max-signatures, `sk-provider@openssh.com` and `associated-certs-v00@openssh.com`
//!   constraints (refused as [`ProtoError::UnknownConstraint`]);
//! * any check that needs crypto: whether key numbers form a valid key, whether a
//!   certificate is well formed beyond its type name, signature verification, matching
//!   the userauth key to the signing key. Those belong to the key crate and the agent.
//! * I/O: callers read the 4-byte header, check it with [`frame::body_len`], then read
//!   the body themselves.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod constraint;
mod error;
pub mod frame;
pub mod key_wire;
mod message;
mod reader;
mod redact;
mod request;
mod response;
pub mod userauth;
mod writer;

pub use error::{FrameError, ProtoError};
pub use message::*;
pub use request::{EXT_QUERY, EXT_SESSION_BIND};
pub use userauth::parse_userauth_request;
