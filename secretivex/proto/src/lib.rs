//! The SSH agent protocol (RFC 9987 and the OpenSSH extensions) as Rust types.
//!
//! This crate owns the wire format and nothing else: no sockets, no crypto, no clocks.
//! Both directions are covered so that the agent, the `secretivex` client and the bench
//! share one codec:
//!
//! * agent side: [`frame::body_len`] validates a frame header, [`Request::decode`] parses a body,
//!   [`Response::encode_frame`] writes a reply;
//! * client side: [`Request::encode_frame`] and [`Response::decode`].
//!
//! Decoding never panics and never allocates more than the input could justify: every
//! length and count is checked against the bytes that remain.

mod message;

pub use message::*;
