//! Destination constraints (`ssh-add -h`, `restrict-destination-v00@openssh.com`) and the
//! per-connection session binds (`session-bind@openssh.com`) they are checked against.
//!
//! The semantics follow OpenSSH's agent (see <https://www.openssh.com/agent-restrict.html>):
//! a connection with no bind is local use and sees every key; a connection whose bind
//! attempt failed sees no constrained key; otherwise every recorded hop `from -> to` must
//! be allowed by one of the key's constraints, the user is checked at the last hop only,
//! a signature may not be made on a forwarding hop, and forwarded listings hide keys that
//! may not go any further.

use secretivex_proto::{DestinationConstraint, Hop};

/// Binds kept per connection (OpenSSH `AGENT_MAX_SESSION_IDS`).
pub const MAX_SESSION_BINDS: usize = 16;
/// Longest session identifier accepted (OpenSSH `AGENT_MAX_SID_LEN`).
pub const MAX_SESSION_ID_LEN: usize = 128;
/// Most destination constraints on one key (OpenSSH `AGENT_MAX_DEST_CONSTRAINTS`).
pub const MAX_DESTINATION_CONSTRAINTS: usize = 1024;

/// One verified `session-bind@openssh.com`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub host_key: Vec<u8>,
    pub session_id: Vec<u8>,
    pub forwarded: bool,
}

/// Why a session bind was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    #[error("connection already bound for authentication")]
    BoundForAuthentication,
    #[error("session id already bound to a different host key")]
    SessionIdReused,
    #[error("too many session binds on this connection")]
    TooMany,
    #[error("session id too long or empty")]
    BadSessionId,
}

/// The binds recorded on one connection.
#[derive(Debug, Default, Clone)]
pub struct SessionBinds {
    binds: Vec<Bind>,
    attempted: bool,
}

impl SessionBinds {
    /// Notes that a bind was tried, before it is checked: a connection whose bind failed
    /// must not be mistaken for local use.
    pub fn mark_attempted(&mut self) {
        self.attempted = true;
    }

    /// True once a bind was attempted or recorded (the connection is not plain local use).
    pub fn is_remote(&self) -> bool {
        self.attempted || !self.binds.is_empty()
    }

    /// The recorded binds, oldest first.
    pub fn binds(&self) -> &[Bind] {
        &self.binds
    }

    /// Records a bind whose host-key signature has already been verified.
    /// Returns `Ok(false)` when the same bind was already recorded.
    pub fn record(&mut self, bind: Bind) -> Result<bool, BindError> {
        self.attempted = true;
        if bind.session_id.is_empty() || bind.session_id.len() > MAX_SESSION_ID_LEN {
            return Err(BindError::BadSessionId);
        }
        for existing in &self.binds {
            if !existing.forwarded {
                return Err(BindError::BoundForAuthentication);
            }
            if existing.session_id == bind.session_id {
                if existing.host_key == bind.host_key {
                    return Ok(false);
                }
                return Err(BindError::SessionIdReused);
            }
        }
        if self.binds.len() >= MAX_SESSION_BINDS {
            return Err(BindError::TooMany);
        }
        self.binds.push(bind);
        Ok(true)
    }
}

/// What the agent needs to know about a host certificate to match it against a CA hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCert {
    /// Blob of the CA key that signed the certificate.
    pub signature_key: Vec<u8>,
    /// Certificate type is "host".
    pub is_host: bool,
    /// Principals; empty means any host.
    pub principals: Vec<String>,
    pub valid_after: u64,
    pub valid_before: u64,
}

/// Looks inside certificate blobs; returns `None` for plain keys or unparsable blobs.
pub trait CertInspector {
    fn host_cert(&self, blob: &[u8]) -> Option<HostCert>;
    /// Current time in seconds since the epoch, for certificate validity.
    fn now(&self) -> u64;
}

/// Why a key is not permitted on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("a previous session bind failed on this connection")]
    FailedBind,
    #[error("tried to sign on a forwarding hop")]
    SignOnForwardingHop,
    #[error("tried to forward through a binding made for authentication")]
    ForwardThroughAuthBind,
    #[error("no destination constraint matches hop {hop}")]
    NoMatchingConstraint { hop: usize },
    #[error("key permitted at this host but not beyond it")]
    NotPermittedBeyond,
}

/// Key type name at the start of an SSH public key blob.
pub fn blob_key_type(blob: &[u8]) -> Option<&str> {
    let len_bytes: [u8; 4] = blob.get(..4)?.try_into().ok()?;
    let len = usize::try_from(u32::from_be_bytes(len_bytes)).ok()?;
    let end = len.checked_add(4)?;
    std::str::from_utf8(blob.get(4..end)?).ok()
}

/// True for `*-cert-v01@openssh.com` blobs.
pub fn is_certificate_blob(blob: &[u8]) -> bool {
    blob_key_type(blob).is_some_and(|t| t.ends_with("-cert-v01@openssh.com"))
}

/// OpenSSH `match_pattern`: `*` matches any run of characters, `?` any one character.
pub fn match_pattern(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    let (mut ti, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || Some(&c) == t.get(ti) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

/// Does `key` match one of the keys of `hop` (plain key equality, or a host certificate
/// signed by a listed CA and valid for the hop's host name)?
pub fn match_key_hop(key: &[u8], hop: &Hop, certs: &dyn CertInspector) -> bool {
    let hostname = if hop.hostname.is_empty() {
        "(ORIGIN)"
    } else {
        hop.hostname.as_str()
    };
    let key_is_cert = is_certificate_blob(key);
    for spec in &hop.keys {
        if !key_is_cert {
            if !spec.is_ca && spec.key_blob == key {
                return true;
            }
            continue;
        }
        if !spec.is_ca {
            continue;
        }
        let Some(cert) = certs.host_cert(key) else {
            return false;
        };
        if cert.signature_key != spec.key_blob {
            continue;
        }
        if host_cert_valid_for(&cert, hostname, certs.now()) {
            return true;
        }
    }
    false
}

fn host_cert_valid_for(cert: &HostCert, hostname: &str, now: u64) -> bool {
    if !cert.is_host || now < cert.valid_after || now >= cert.valid_before {
        return false;
    }
    cert.principals.is_empty() || cert.principals.iter().any(|p| match_pattern(hostname, p))
}

/// OpenSSH `permitted_by_dest_constraints`: is the hop `from -> to` (and `user` at the
/// final hop) allowed by one of `constraints`? `from == None` is the first hop (the
/// origin); `to == None` asks whether any onward hop from `from` is allowed.
/// Returns the index of the matching constraint.
pub fn permitted_by_constraints(
    from: Option<&[u8]>,
    to: Option<&[u8]>,
    user: Option<&str>,
    constraints: &[DestinationConstraint],
    certs: &dyn CertInspector,
) -> Option<usize> {
    constraints.iter().position(|c| {
        let from_ok = match from {
            None => c.from.hostname.is_empty() && c.from.keys.is_empty(),
            Some(key) => match_key_hop(key, &c.from, certs),
        };
        if !from_ok {
            return false;
        }
        if let Some(key) = to {
            if !match_key_hop(key, &c.to, certs) {
                return false;
            }
        }
        match user {
            Some(u) if !c.to.user.is_empty() => match_pattern(u, &c.to.user),
            _ => true,
        }
    })
}

/// OpenSSH `identity_permitted`: may a key with `constraints` be listed (`user == None`)
/// or used to sign for `user` on a connection with these binds?
pub fn identity_permitted(
    constraints: &[DestinationConstraint],
    binds: &SessionBinds,
    user: Option<&str>,
    certs: &dyn CertInspector,
) -> Result<(), Denied> {
    if constraints.is_empty() {
        return Ok(());
    }
    if binds.attempted && binds.binds.is_empty() {
        return Err(Denied::FailedBind);
    }
    let Some(last_index) = binds.binds.len().checked_sub(1) else {
        return Ok(()); // local use
    };
    let mut from: Option<&[u8]> = None;
    for (i, bind) in binds.binds.iter().enumerate() {
        let test_user = if i == last_index {
            if bind.forwarded && user.is_some() {
                return Err(Denied::SignOnForwardingHop);
            }
            user
        } else {
            if !bind.forwarded {
                return Err(Denied::ForwardThroughAuthBind);
            }
            None
        };
        if permitted_by_constraints(from, Some(&bind.host_key), test_user, constraints, certs)
            .is_none()
        {
            return Err(Denied::NoMatchingConstraint { hop: i });
        }
        from = Some(&bind.host_key);
    }
    if let Some(last) = binds.binds.last() {
        if last.forwarded
            && user.is_none()
            && permitted_by_constraints(Some(&last.host_key), None, None, constraints, certs)
                .is_none()
        {
            return Err(Denied::NotPermittedBeyond);
        }
    }
    Ok(())
}

/// Why a set of constraints is malformed (OpenSSH's consistency checks at add time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConstraintError {
    #[error("too many destination constraints")]
    TooMany,
    #[error("inconsistent \"from\" hop: a user, or a host name without keys or keys without a host name")]
    BadFrom,
    #[error("incomplete \"to\" hop: host name and keys are required")]
    BadTo,
}

/// Validates destination constraints as OpenSSH's `parse_dest_constraint` does.
pub fn validate_constraints(constraints: &[DestinationConstraint]) -> Result<(), ConstraintError> {
    if constraints.len() > MAX_DESTINATION_CONSTRAINTS {
        return Err(ConstraintError::TooMany);
    }
    for c in constraints {
        if !c.from.user.is_empty() || c.from.hostname.is_empty() != c.from.keys.is_empty() {
            return Err(ConstraintError::BadFrom);
        }
        if c.to.hostname.is_empty() || c.to.keys.is_empty() {
            return Err(ConstraintError::BadTo);
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "destination_tests.rs"]
mod tests;
