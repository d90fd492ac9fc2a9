//! Message types. This file is the contract between the protocol, key and agent crates.

use zeroize::Zeroizing;

/// Largest frame body the agent accepts (OpenSSH's `AGENT_MAX_LEN`).
pub const MAX_FRAME_LEN: usize = 256 * 1024;

/// Message numbers (RFC 9987 §5.1).
pub mod msg {
    /// `SSH_AGENT_FAILURE`.
    pub const FAILURE: u8 = 5;
    /// `SSH_AGENT_SUCCESS`.
    pub const SUCCESS: u8 = 6;
    /// `SSH_AGENTC_REQUEST_IDENTITIES`.
    pub const REQUEST_IDENTITIES: u8 = 11;
    /// `SSH_AGENT_IDENTITIES_ANSWER`.
    pub const IDENTITIES_ANSWER: u8 = 12;
    /// `SSH_AGENTC_SIGN_REQUEST`.
    pub const SIGN_REQUEST: u8 = 13;
    /// `SSH_AGENT_SIGN_RESPONSE`.
    pub const SIGN_RESPONSE: u8 = 14;
    /// `SSH_AGENTC_ADD_IDENTITY`.
    pub const ADD_IDENTITY: u8 = 17;
    /// `SSH_AGENTC_REMOVE_IDENTITY`.
    pub const REMOVE_IDENTITY: u8 = 18;
    /// `SSH_AGENTC_REMOVE_ALL_IDENTITIES`.
    pub const REMOVE_ALL_IDENTITIES: u8 = 19;
    /// `SSH_AGENTC_ADD_SMARTCARD_KEY`.
    pub const ADD_SMARTCARD_KEY: u8 = 20;
    /// `SSH_AGENTC_REMOVE_SMARTCARD_KEY`.
    pub const REMOVE_SMARTCARD_KEY: u8 = 21;
    /// `SSH_AGENTC_LOCK`.
    pub const LOCK: u8 = 22;
    /// `SSH_AGENTC_UNLOCK`.
    pub const UNLOCK: u8 = 23;
    /// `SSH_AGENTC_ADD_ID_CONSTRAINED`.
    pub const ADD_ID_CONSTRAINED: u8 = 25;
    /// `SSH_AGENTC_ADD_SMARTCARD_KEY_CONSTRAINED`.
    pub const ADD_SMARTCARD_KEY_CONSTRAINED: u8 = 26;
    /// `SSH_AGENTC_EXTENSION`.
    pub const EXTENSION: u8 = 27;
    /// `SSH_AGENT_EXTENSION_FAILURE`.
    pub const EXTENSION_FAILURE: u8 = 28;
    /// `SSH_AGENT_EXTENSION_RESPONSE`.
    pub const EXTENSION_RESPONSE: u8 = 29;
}

/// Sign request flags.
pub mod sign_flags {
    /// `SSH_AGENT_RSA_SHA2_256`: sign an RSA key with `rsa-sha2-256`.
    pub const RSA_SHA2_256: u32 = 0x02;
    /// `SSH_AGENT_RSA_SHA2_512`: sign an RSA key with `rsa-sha2-512`.
    pub const RSA_SHA2_512: u32 = 0x04;
}

/// A request from a client to the agent.
// `Debug` is written by hand in `redact.rs` so secrets never reach a log.
#[derive(Clone, PartialEq, Eq)]
pub enum Request {
    /// `REQUEST_IDENTITIES` (11).
    RequestIdentities,
    /// `SIGN_REQUEST` (13).
    Sign(SignRequest),
    /// `ADD_IDENTITY` (17) and `ADD_ID_CONSTRAINED` (25); the former has no constraints.
    AddIdentity(AddIdentity),
    /// `REMOVE_IDENTITY` (18).
    RemoveIdentity {
        /// Public key or certificate blob.
        key_blob: Vec<u8>,
    },
    /// `REMOVE_ALL_IDENTITIES` (19).
    RemoveAllIdentities,
    /// `ADD_SMARTCARD_KEY` (20) and `..._CONSTRAINED` (26).
    AddSmartcardKey(SmartcardKey),
    /// `REMOVE_SMARTCARD_KEY` (21).
    RemoveSmartcardKey {
        /// Token id (OpenSSH: PKCS#11 provider path).
        id: String,
        /// PIN as sent (OpenSSH ignores it).
        pin: Zeroizing<Vec<u8>>,
    },
    /// `LOCK` (22).
    Lock {
        /// Passphrase that will unlock the agent.
        passphrase: Zeroizing<Vec<u8>>,
    },
    /// `UNLOCK` (23).
    Unlock {
        /// Passphrase given at lock time.
        passphrase: Zeroizing<Vec<u8>>,
    },
    /// `EXTENSION` (27).
    Extension(ExtensionRequest),
    /// A message number this agent does not implement; answered with FAILURE.
    Unknown {
        /// The message number received.
        msg_type: u8,
    },
}

/// Body of `SIGN_REQUEST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignRequest {
    /// Public key blob (or certificate blob) as listed by the agent.
    pub key_blob: Vec<u8>,
    /// The bytes to sign.
    pub data: Vec<u8>,
    /// [`sign_flags`] bits.
    pub flags: u32,
}

/// Body of `ADD_IDENTITY` / `ADD_ID_CONSTRAINED`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddIdentity {
    /// The private key.
    pub key: PrivateKeyWire,
    /// Comment shown in identity listings.
    pub comment: String,
    /// Constraints, in wire order; each kind at most once.
    pub constraints: Vec<Constraint>,
}

/// Body of `ADD_SMARTCARD_KEY` / `ADD_SMARTCARD_KEY_CONSTRAINED`.
// `Debug` is written by hand in `redact.rs` so secrets never reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct SmartcardKey {
    /// Token id (OpenSSH: PKCS#11 provider path).
    pub id: String,
    /// Token PIN.
    pub pin: Zeroizing<Vec<u8>>,
    /// Constraints applied to every key loaded from the token.
    pub constraints: Vec<Constraint>,
}

/// ECDSA curves, by their SSH identifiers (`nistp256`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EcdsaCurve {
    /// NIST P-256 (`nistp256`).
    NistP256,
    /// NIST P-384 (`nistp384`).
    NistP384,
    /// NIST P-521 (`nistp521`).
    NistP521,
}

/// Private key fields exactly as `ssh-add` sends them (OpenSSH `sshkey_private_serialize`).
///
/// Multiple-precision integers are unsigned big-endian magnitudes with the SSH `mpint`
/// sign-padding byte removed. Secret parts are zeroized on drop.
// `Debug` is written by hand in `redact.rs` so secrets never reach a log.
#[derive(Clone, PartialEq, Eq)]
pub enum PrivateKeyWire {
    /// `ssh-ed25519`.
    Ed25519 {
        /// Public key.
        public: [u8; 32],
        /// OpenSSH's 64-byte form: seed ‖ public.
        keypair: Zeroizing<Vec<u8>>,
    },
    /// `ecdsa-sha2-nistp256|384|521`.
    Ecdsa {
        /// The curve, from the key type (the wire's curve name must agree).
        curve: EcdsaCurve,
        /// SEC1 uncompressed point.
        public_point: Vec<u8>,
        /// Private scalar, big-endian, at most the curve's scalar length.
        scalar: Zeroizing<Vec<u8>>,
    },
    /// `ssh-rsa`.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
        /// Private exponent.
        d: Zeroizing<Vec<u8>>,
        /// q⁻¹ mod p.
        iqmp: Zeroizing<Vec<u8>>,
        /// First prime.
        p: Zeroizing<Vec<u8>>,
        /// Second prime.
        q: Zeroizing<Vec<u8>>,
    },
    /// `*-cert-v01@openssh.com`: the certificate blob and the private part of its key
    /// (the public part is inside the certificate).
    Certificate {
        /// The certificate as sent; it starts with the certificate type name.
        cert_blob: Vec<u8>,
        /// The private part, by base key type.
        private: CertPrivate,
    },
}

/// The private fields that follow a certificate blob in an add-identity request.
// `Debug` is written by hand in `redact.rs` so secrets never reach a log.
#[derive(Clone, PartialEq, Eq)]
pub enum CertPrivate {
    /// Ed25519: public key and OpenSSH's 64-byte seed ‖ public.
    Ed25519 {
        /// Public key (repeated from the certificate).
        public: [u8; 32],
        /// Seed ‖ public.
        keypair: Zeroizing<Vec<u8>>,
    },
    /// ECDSA: private scalar only.
    Ecdsa {
        /// Private scalar, big-endian.
        scalar: Zeroizing<Vec<u8>>,
    },
    /// RSA: the private numbers (n and e are in the certificate).
    Rsa {
        /// Private exponent.
        d: Zeroizing<Vec<u8>>,
        /// q⁻¹ mod p.
        iqmp: Zeroizing<Vec<u8>>,
        /// First prime.
        p: Zeroizing<Vec<u8>>,
        /// Second prime.
        q: Zeroizing<Vec<u8>>,
    },
}

/// Key constraints (RFC 9987 §5.2.7). Any constraint not listed here makes decoding fail,
/// so a key with an unknown constraint is refused whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constraint {
    /// Remove the key after this many seconds.
    Lifetime(u32),
    /// Ask the user before each use.
    Confirm,
    /// `restrict-destination-v00@openssh.com`.
    RestrictDestination(Vec<DestinationConstraint>),
}

/// One permitted hop `from -> to` of `restrict-destination-v00@openssh.com`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationConstraint {
    /// Where the connection comes from (empty hostname: this host).
    pub from: Hop,
    /// Where the key may be used.
    pub to: Hop,
}

/// One end of a [`DestinationConstraint`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hop {
    /// Empty when unspecified (OpenSSH requires it empty on `from`).
    pub user: String,
    /// Empty on `from` means "the local host the key was added on".
    pub hostname: String,
    /// Host keys (or CA keys) that identify the host.
    pub keys: Vec<HostKeySpec>,
}

/// A host key, or a CA key that signs host certificates, of a [`Hop`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKeySpec {
    /// Public key blob.
    pub key_blob: Vec<u8>,
    /// True when `key_blob` is a CA key.
    pub is_ca: bool,
}

/// Body of `EXTENSION` (27).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtensionRequest {
    /// `query`: list supported extensions.
    Query,
    /// `session-bind@openssh.com`.
    SessionBind(SessionBind),
    /// Any other extension name; answered with FAILURE.
    Other {
        /// Extension name.
        name: String,
        /// Raw bytes after the name.
        contents: Vec<u8>,
    },
}

/// Body of `session-bind@openssh.com`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionBind {
    /// Server host key blob.
    pub host_key: Vec<u8>,
    /// SSH session identifier (exchange hash).
    pub session_id: Vec<u8>,
    /// SSH signature blob by `host_key` over `session_id`.
    pub signature: Vec<u8>,
    /// True when the connection is being forwarded rather than used to authenticate.
    pub is_forwarding: bool,
}

/// A reply from the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `FAILURE` (5).
    Failure,
    /// `SUCCESS` (6).
    Success,
    /// `IDENTITIES_ANSWER` (12).
    Identities(Vec<Identity>),
    /// SSH signature blob: `string algorithm, string signature`.
    SignResponse(Vec<u8>),
    /// `EXTENSION_FAILURE` (28): the extension is known but failed.
    ExtensionFailure,
    /// `EXTENSION_RESPONSE` (29); `name` is written as an SSH string, `contents` raw after it.
    ExtensionResponse {
        /// Extension name.
        name: String,
        /// Extension-specific bytes.
        contents: Vec<u8>,
    },
}

/// One entry of `IDENTITIES_ANSWER`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Public key or certificate blob.
    pub key_blob: Vec<u8>,
    /// Comment.
    pub comment: String,
}

/// The fields of an `SSH2_MSG_USERAUTH_REQUEST` (publickey) found in sign-request data,
/// used to enforce destination constraints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserauthRequest {
    /// Session identifier the signature is bound to.
    pub session_id: Vec<u8>,
    /// Server-side user name.
    pub user: String,
    /// Always `ssh-connection`.
    pub service: String,
    /// `publickey` or `publickey-hostbound-v00@openssh.com`.
    pub method: String,
    /// Signature algorithm name.
    pub algorithm: String,
    /// Public key (or certificate) blob being authenticated.
    pub key_blob: Vec<u8>,
    /// Present for `publickey-hostbound-v00@openssh.com`.
    pub server_host_key: Option<Vec<u8>>,
}
