//! Key constraints (RFC 9987 §5.2.7) and OpenSSH's `restrict-destination-v00`.
//!
//! Wire forms:
//!
//! * `byte 1, uint32 seconds` — lifetime;
//! * `byte 2` — confirm each use;
//! * `byte 255, string name, ...` — extension; only
//!   `restrict-destination-v00@openssh.com` is accepted, as
//!   `string { (string constraint)* }` where a constraint is
//!   `string from_hop, string to_hop, string reserved` and a hop is
//!   `string user, string hostname, string reserved, (string keyblob, bool is_ca)*`.
//!
//! Anything else (max-signatures, `sk-provider@openssh.com`,
//! `associated-certs-v00@openssh.com`, unknown ids) fails with
//! [`ProtoError::UnknownConstraint`] so the caller refuses the key whole, as the
//! RFC requires. The validity rules are OpenSSH's (`parse_dest_constraint`).

use crate::error::ProtoError;
use crate::key_wire::blob_type_name;
use crate::reader::Reader;
use crate::writer::{encoded_len, Sink};
use crate::{Constraint, DestinationConstraint, Hop, HostKeySpec};

/// `SSH_AGENT_CONSTRAIN_LIFETIME`.
pub const CONSTRAIN_LIFETIME: u8 = 1;
/// `SSH_AGENT_CONSTRAIN_CONFIRM`.
pub const CONSTRAIN_CONFIRM: u8 = 2;
/// `SSH_AGENT_CONSTRAIN_MAXSIGN` (XMSS only; refused).
pub const CONSTRAIN_MAXSIGN: u8 = 3;
/// `SSH_AGENT_CONSTRAIN_EXTENSION`.
pub const CONSTRAIN_EXTENSION: u8 = 255;
/// Name of the destination-restriction constraint extension.
pub const RESTRICT_DESTINATION: &str = "restrict-destination-v00@openssh.com";
/// Most destination constraints accepted on one key (OpenSSH `AGENT_MAX_DEST_CONSTRAINTS`).
pub const MAX_DEST_CONSTRAINTS: usize = 1024;
/// Longest user name in a hop, in bytes (OpenSSH 10.4).
pub const MAX_DEST_USER_LEN: usize = 256;

/// Reads constraints until `r` is exhausted.
///
/// Each kind may appear at most once. An empty `restrict-destination` list is
/// refused: OpenSSH would silently treat it as "unrestricted", and a request that
/// asks for a restriction but names no destination is better refused than
/// loaded without one.
pub(crate) fn read_constraints(r: &mut Reader<'_>) -> Result<Vec<Constraint>, ProtoError> {
    let mut out = Vec::new();
    let (mut lifetime, mut confirm, mut dest) = (false, false, false);
    while !r.is_empty() {
        match r.u8("constraint type")? {
            CONSTRAIN_LIFETIME => {
                if std::mem::replace(&mut lifetime, true) {
                    return Err(ProtoError::DuplicateConstraint("lifetime"));
                }
                out.push(Constraint::Lifetime(r.u32("lifetime")?));
            }
            CONSTRAIN_CONFIRM => {
                if std::mem::replace(&mut confirm, true) {
                    return Err(ProtoError::DuplicateConstraint("confirm"));
                }
                out.push(Constraint::Confirm);
            }
            CONSTRAIN_EXTENSION => {
                let name = r.cstring_bytes("constraint extension name")?;
                if name != RESTRICT_DESTINATION.as_bytes() {
                    return Err(ProtoError::unknown_constraint_extension(name));
                }
                if std::mem::replace(&mut dest, true) {
                    return Err(ProtoError::DuplicateConstraint("restrict-destination"));
                }
                out.push(Constraint::RestrictDestination(read_destinations(r)?));
            }
            id => return Err(ProtoError::UnknownConstraint { id, name: None }),
        }
    }
    Ok(out)
}

fn read_destinations(r: &mut Reader<'_>) -> Result<Vec<DestinationConstraint>, ProtoError> {
    let mut list = Reader::new(r.string("restrict-destination list")?);
    let mut out = Vec::new();
    while !list.is_empty() {
        if out.len() >= MAX_DEST_CONSTRAINTS {
            return Err(ProtoError::TooManyDestinationConstraints);
        }
        out.push(read_destination(&mut list)?);
    }
    if out.is_empty() {
        return Err(ProtoError::InvalidDestinationConstraint("empty list"));
    }
    Ok(out)
}

fn read_destination(list: &mut Reader<'_>) -> Result<DestinationConstraint, ProtoError> {
    let mut b = Reader::new(list.string("destination constraint")?);
    let from = read_hop(b.string("from hop")?)?;
    let to = read_hop(b.string("to hop")?)?;
    if !b.string("destination constraint reserved")?.is_empty() {
        return Err(ProtoError::ReservedNotEmpty("destination constraint"));
    }
    b.finish("destination constraint")?;
    if !from.user.is_empty() {
        return Err(ProtoError::InvalidDestinationConstraint(
            "\"from\" must not name a user",
        ));
    }
    if from.hostname.is_empty() != from.keys.is_empty() {
        return Err(ProtoError::InvalidDestinationConstraint(
            "\"from\" needs both a hostname and host keys, or neither",
        ));
    }
    if to.hostname.is_empty() || to.keys.is_empty() {
        return Err(ProtoError::InvalidDestinationConstraint(
            "\"to\" needs a hostname and host keys",
        ));
    }
    Ok(DestinationConstraint { from, to })
}

fn read_hop(buf: &[u8]) -> Result<Hop, ProtoError> {
    let mut r = Reader::new(buf);
    let user = r.cstring("hop user")?;
    if user.len() > MAX_DEST_USER_LEN {
        return Err(ProtoError::UsernameTooLong);
    }
    let hostname = r.cstring("hop hostname")?;
    if !r.string("hop reserved")?.is_empty() {
        return Err(ProtoError::ReservedNotEmpty("hop"));
    }
    let mut keys = Vec::new();
    while !r.is_empty() {
        let key_blob = r.string("hop host key")?;
        if blob_type_name(key_blob).is_none() {
            return Err(ProtoError::InvalidDestinationConstraint(
                "malformed host key blob",
            ));
        }
        let is_ca = r.bool("hop host key is_ca")?;
        keys.push(HostKeySpec {
            key_blob: key_blob.to_vec(),
            is_ca,
        });
    }
    Ok(Hop {
        user: user.to_owned(),
        hostname: hostname.to_owned(),
        keys,
    })
}

/// Writes a constraint list in wire form.
pub(crate) fn write_constraints(s: &mut dyn Sink, constraints: &[Constraint]) {
    for c in constraints {
        match c {
            Constraint::Lifetime(secs) => {
                s.put_u8(CONSTRAIN_LIFETIME);
                s.put_u32(*secs);
            }
            Constraint::Confirm => s.put_u8(CONSTRAIN_CONFIRM),
            Constraint::RestrictDestination(list) => {
                s.put_u8(CONSTRAIN_EXTENSION);
                s.put_string(RESTRICT_DESTINATION.as_bytes());
                put_nested(s, &|s| {
                    for dc in list {
                        put_nested(s, &|s| {
                            put_nested(s, &|s| write_hop(s, &dc.from));
                            put_nested(s, &|s| write_hop(s, &dc.to));
                            s.put_string(&[]);
                        });
                    }
                });
            }
        }
    }
}

fn write_hop(s: &mut dyn Sink, hop: &Hop) {
    s.put_string(hop.user.as_bytes());
    s.put_string(hop.hostname.as_bytes());
    s.put_string(&[]);
    for k in &hop.keys {
        s.put_string(&k.key_blob);
        s.put_bool(k.is_ca);
    }
}

/// Writes the output of `f` as one SSH `string` (length first).
fn put_nested(s: &mut dyn Sink, f: &dyn Fn(&mut dyn Sink)) {
    s.put_u32(u32::try_from(encoded_len(f)).unwrap_or(u32::MAX));
    f(s);
}
