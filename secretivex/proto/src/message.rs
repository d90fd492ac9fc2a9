//! Message types. This file is the contract between the protocol, key and agent crates.

use zeroize::Zeroizing;

/// Largest frame body the agent accepts (OpenSSH's `AGENT_MAX_LEN`).
pub const MAX_FRAME_LEN: usize = 256 * 1024;

/// Message numbers (RFC 9987 §5.1).
pub mod msg {
    pub const FAILURE: u8 = 5;
    pub const SUCCESS: u8 = 6;
    pub const REQUEST_IDENTITIES: u8 = 11;
    pub const IDENTITIES_ANSWER: u8 = 12;
    pub const SIGN_REQUEST: u8 = 13;
    pub const SIGN_RESPONSE: u8 = 14;
    pub const ADD_IDENTITY: u8 = 17;
    pub const REMOVE_IDENTITY: u8 = 18;
    pub const REMOVE_ALL_IDENTITIES: u8 = 19;
    pub const ADD_SMARTCARD_KEY: u8 = 20;
    pub const REMOVE_SMARTCARD_KEY: u8 = 21;
    pub const LOCK: u8 = 22;
    pub const UNLOCK: u8 = 23;
    pub const ADD_ID_CONSTRAINED: u8 = 25;
    pub const ADD_SMARTCARD_KEY_CONSTRAINED: u8 = 26;
    pub const EXTENSION: u8 = 27;
    pub const EXTENSION_FAILURE: u8 = 28;
    pub const EXTENSION_RESPONSE: u8 = 29;
}

/// Sign request flags.
pub mod sign_flags {
    pub const RSA_SHA2_256: u32 = 0x02;
    pub const RSA_SHA2_512: u32 = 0x04;
}

/// A request from a client to the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    RequestIdentities,
    Sign(SignRequest),
    /// `ADD_IDENTITY` (17) and `ADD_ID_CONSTRAINED` (25); the former has no constraints.
    AddIdentity(AddIdentity),
    RemoveIdentity { key_blob: Vec<u8> },
    RemoveAllIdentities,
    /// `ADD_SMARTCARD_KEY` (20) and `..._CONSTRAINED` (26).
    AddSmartcardKey(SmartcardKey),
    RemoveSmartcardKey { id: String, pin: Zeroizing<Vec<u8>> },
    Lock { passphrase: Zeroizing<Vec<u8>> },
    Unlock { passphrase: Zeroizing<Vec<u8>> },
    Extension(ExtensionRequest),
    /// A message number this agent does not implement; answered with FAILURE.
    Unknown { msg_type: u8 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignRequest {
    /// Public key blob (or certificate blob) as listed by the agent.
    pub key_blob: Vec<u8>,
    pub data: Vec<u8>,
    pub flags: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddIdentity {
    pub key: PrivateKeyWire,
    pub comment: String,
    pub constraints: Vec<Constraint>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmartcardKey {
    pub id: String,
    pub pin: Zeroizing<Vec<u8>>,
    pub constraints: Vec<Constraint>,
}

/// ECDSA curves, by their SSH identifiers (`nistp256`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EcdsaCurve {
    NistP256,
    NistP384,
    NistP521,
}

/// Private key fields exactly as `ssh-add` sends them (OpenSSH `sshkey_private_serialize`).
///
/// Multiple-precision integers are unsigned big-endian magnitudes with the SSH `mpint`
/// sign-padding byte removed. Secret parts are zeroized on drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrivateKeyWire {
    Ed25519 {
        public: [u8; 32],
        /// OpenSSH's 64-byte form: seed ‖ public.
        keypair: Zeroizing<Vec<u8>>,
    },
    Ecdsa {
        curve: EcdsaCurve,
        /// SEC1 uncompressed point.
        public_point: Vec<u8>,
        scalar: Zeroizing<Vec<u8>>,
    },
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
        d: Zeroizing<Vec<u8>>,
        iqmp: Zeroizing<Vec<u8>>,
        p: Zeroizing<Vec<u8>>,
        q: Zeroizing<Vec<u8>>,
    },
    /// `*-cert-v01@openssh.com`: the certificate blob and the private part of its key
    /// (the public part is inside the certificate).
    Certificate {
        cert_blob: Vec<u8>,
        private: CertPrivate,
    },
}

/// The private fields that follow a certificate blob in an add-identity request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertPrivate {
    Ed25519 { public: [u8; 32], keypair: Zeroizing<Vec<u8>> },
    Ecdsa { scalar: Zeroizing<Vec<u8>> },
    Rsa { d: Zeroizing<Vec<u8>>, iqmp: Zeroizing<Vec<u8>>, p: Zeroizing<Vec<u8>>, q: Zeroizing<Vec<u8>> },
}

/// Key constraints (RFC 9987 §5.2.7). Any constraint not listed here makes decoding fail,
/// so a key with an unknown constraint is refused whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constraint {
    Lifetime(u32),
    Confirm,
    /// `restrict-destination-v00@openssh.com`.
    RestrictDestination(Vec<DestinationConstraint>),
}

/// One permitted hop `from -> to` of `restrict-destination-v00@openssh.com`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationConstraint {
    pub from: Hop,
    pub to: Hop,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hop {
    /// Empty when unspecified (OpenSSH requires it empty on `from`).
    pub user: String,
    /// Empty on `from` means "the local host the key was added on".
    pub hostname: String,
    pub keys: Vec<HostKeySpec>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKeySpec {
    pub key_blob: Vec<u8>,
    pub is_ca: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtensionRequest {
    /// `query`: list supported extensions.
    Query,
    /// `session-bind@openssh.com`.
    SessionBind(SessionBind),
    /// Any other extension name; answered with FAILURE.
    Other { name: String, contents: Vec<u8> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionBind {
    pub host_key: Vec<u8>,
    pub session_id: Vec<u8>,
    /// SSH signature blob by `host_key` over `session_id`.
    pub signature: Vec<u8>,
    pub is_forwarding: bool,
}

/// A reply from the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Failure,
    Success,
    Identities(Vec<Identity>),
    /// SSH signature blob: `string algorithm, string signature`.
    SignResponse(Vec<u8>),
    ExtensionFailure,
    /// `name` is written as an SSH string, `contents` raw after it.
    ExtensionResponse { name: String, contents: Vec<u8> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub key_blob: Vec<u8>,
    pub comment: String,
}

/// The fields of an `SSH2_MSG_USERAUTH_REQUEST` (publickey) found in sign-request data,
/// used to enforce destination constraints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserauthRequest {
    pub session_id: Vec<u8>,
    pub user: String,
    pub service: String,
    pub method: String,
    pub algorithm: String,
    pub key_blob: Vec<u8>,
    /// Present for `publickey-hostbound-v00@openssh.com`.
    pub server_host_key: Option<Vec<u8>>,
}
