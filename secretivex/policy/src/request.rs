//! The facts of one request, as the agent learned them. `None` is an unknown fact.

/// What the policy is asked about: the key, the requesting process, the destination and
/// whether the use is forwarded. The agent fills in what it knows; `None` marks a fact
/// it could not learn (see the crate documentation for how unknown facts count).
#[derive(Debug, Clone, Copy, Default)]
pub struct Request<'a> {
    /// SHA-256 digest of the key's public blob (its `SHA256:` fingerprint).
    pub key_digest: Option<&'a [u8; 32]>,
    /// The key's comment.
    pub key_comment: Option<&'a str>,
    /// The peer's uid (`SO_PEERCRED`).
    pub peer_uid: Option<u32>,
    /// The peer's executable path (`/proc/PID/exe`).
    pub peer_exe: Option<&'a str>,
    /// The peer's process name (`/proc/PID/comm`).
    pub peer_name: Option<&'a str>,
    /// SHA-256 digest of the destination host key (the connection's last session-bind).
    pub dest_host_key: Option<&'a [u8; 32]>,
    /// The user name being authenticated (the sign request's userauth data).
    pub dest_user: Option<&'a str>,
    /// Whether the use is forwarded (session-bind's flag; a connection without
    /// session-bind is local use, as OpenSSH's agent treats it).
    pub forwarded: Option<bool>,
}

/// The facts a policy looks at, so the agent gathers only those (reading `/proc` costs
/// system calls on every connection).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// Some rule looks at the key comment.
    pub key_comment: bool,
    /// Some rule looks at the peer's executable.
    pub peer_exe: bool,
    /// Some rule looks at the peer's process name.
    pub peer_name: bool,
    /// Some rule looks at the destination host key.
    pub dest_host_key: bool,
    /// Some rule looks at the destination user.
    pub dest_user: bool,
}
