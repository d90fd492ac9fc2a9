//! SecretiveX PKCS#11 support: the helper process that hosts one token module, and the
//! protocol the agent speaks with it.
//!
//! A PKCS#11 module is foreign code loaded into a process; a crash or a hang in it must not
//! take the agent down, and the agent must not hand it its other keys. So, as OpenSSH does
//! with `ssh-pkcs11-helper` and RFC 9987 §10 advises, each module runs in its own process,
//! `secretivex-pkcs11-helper MODULE`, spawned and supervised by the agent and talking to it
//! over its stdin/stdout with the length-prefixed messages of [`wire`].
//!
//! * [`wire`]: the request/response codec (request ids, several requests in flight).
//! * [`module`]: `cryptoki` calls: login (a refused PIN is never retried; a locked or
//!   final-try PIN is not tried), key discovery (RSA, ECDSA P-256/384/521, Ed25519 where the
//!   token has `CKM_EDDSA`), signing with per-worker sessions, one retry after a throttled
//!   refresh when a session or handle went stale.
//! * [`sshenc`]: SSH encodings: public blobs from token attributes, RSA PKCS#1 v1.5 over a
//!   SHA-1/256/512 DigestInfo for `ssh-rsa`/`rsa-sha2-*`, ECDSA raw r‖s → SSH mpints.
//! * [`x509`]: the subject key of a token's X.509 certificate, for keys without a public
//!   key object (PIV cards and the like).
//! * [`helper`]: the helper's serve loop (a bounded pool of signing threads).

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod helper;
pub mod module;
pub mod sshenc;
pub mod wire;
pub mod x509;
