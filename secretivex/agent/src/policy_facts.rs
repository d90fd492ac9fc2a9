//! The facts of a request that policy rules and audit lines look at, gathered from the
//! connection (peer credentials, `/proc`, session binds) and the sign request's data.

use secretivex_policy::Request;

use crate::destination::SessionBinds;
use crate::peer::Peer;
use crate::peer_process::PeerProcess;

/// SHA-256 of `bytes` (key blobs' fingerprints, host keys, signed data for audit).
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// What the connection tells about where signatures go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Destination {
    /// SHA-256 of the host key of the connection's last session bind; `None` when there
    /// is no bind (or the sign data names another session).
    pub host_key: Option<[u8; 32]>,
    /// Whether the use is forwarded; `None` when a bind was attempted and failed.
    pub forwarded: Option<bool>,
}

impl Destination {
    /// From the connection's binds: no bind attempted is local use (as OpenSSH's agent
    /// treats it); any forwarding hop makes the use forwarded; the destination is the
    /// last hop.
    pub(crate) fn of(binds: &SessionBinds) -> Destination {
        let recorded = binds.binds();
        let forwarded = if !binds.is_remote() {
            Some(false)
        } else if recorded.is_empty() {
            None // a bind was attempted and failed: fail closed
        } else {
            Some(recorded.iter().any(|b| b.forwarded))
        };
        Destination {
            host_key: recorded.last().map(|b| sha256(&b.host_key)),
            forwarded,
        }
    }
}

/// The destination facts of one sign request: the connection's, narrowed by the
/// signed data when it is a userauth request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SignDestination {
    /// See [`Destination`].
    pub dest: Destination,
    /// The user being authenticated, when the data is a userauth request.
    pub user: Option<String>,
}

impl SignDestination {
    /// A userauth request for a session other than the last bound one (or naming another
    /// host key) is not going to the bound host: the host key is then unknown.
    pub(crate) fn of(binds: &SessionBinds, data: &[u8]) -> SignDestination {
        let mut dest = Destination::of(binds);
        let Some(req) = secretivex_proto::parse_userauth_request(data) else {
            return SignDestination { dest, user: None };
        };
        if let Some(last) = binds.binds().last() {
            let same_session = req.session_id == last.session_id;
            let same_host = req
                .server_host_key
                .as_ref()
                .is_none_or(|hk| *hk == last.host_key);
            if !(same_session && same_host) {
                dest.host_key = None;
            }
        }
        SignDestination {
            dest,
            user: Some(req.user),
        }
    }
}

/// Builds the policy's view of a request.
pub(crate) fn request<'a>(
    key_digest: &'a [u8; 32],
    comment: Option<&'a str>,
    peer: &Peer,
    process: &'a PeerProcess,
    dest: &'a Destination,
    user: Option<&'a str>,
) -> Request<'a> {
    Request {
        key_digest: Some(key_digest),
        key_comment: comment,
        peer_uid: Some(peer.uid),
        peer_exe: process.exe.as_deref(),
        peer_name: process.name.as_deref(),
        dest_host_key: dest.host_key.as_ref(),
        dest_user: user,
        forwarded: dest.forwarded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::Bind;
    use secretivex_proto::UserauthRequest;

    fn bind(host: u8, session: u8, forwarded: bool) -> Bind {
        Bind {
            host_key: vec![host; 8],
            session_id: vec![session; 32],
            forwarded,
        }
    }

    fn userauth(session: u8, host: Option<u8>) -> Vec<u8> {
        UserauthRequest {
            session_id: vec![session; 32],
            user: "deploy".to_owned(),
            service: "ssh-connection".to_owned(),
            method: if host.is_some() {
                "publickey-hostbound-v00@openssh.com".to_owned()
            } else {
                "publickey".to_owned()
            },
            algorithm: "ssh-ed25519".to_owned(),
            key_blob: vec![9; 8],
            server_host_key: host.map(|h| vec![h; 8]),
        }
        .encode()
    }

    #[test]
    fn connection_destination_facts() {
        let local = SessionBinds::default();
        assert_eq!(
            Destination::of(&local),
            Destination {
                host_key: None,
                forwarded: Some(false)
            }
        );
        let mut failed = SessionBinds::default();
        failed.mark_attempted();
        assert_eq!(Destination::of(&failed).forwarded, None);

        let mut hops = SessionBinds::default();
        hops.record(bind(1, 1, true)).unwrap();
        hops.record(bind(2, 2, false)).unwrap();
        assert_eq!(
            Destination::of(&hops),
            Destination {
                host_key: Some(sha256(&[2; 8])),
                forwarded: Some(true)
            }
        );
    }

    #[test]
    fn sign_data_narrows_the_destination() {
        let mut binds = SessionBinds::default();
        binds.record(bind(1, 1, false)).unwrap();
        let host = Some(sha256(&[1; 8]));

        let same = SignDestination::of(&binds, &userauth(1, Some(1)));
        assert_eq!(
            (same.dest.host_key, same.user.as_deref()),
            (host, Some("deploy"))
        );
        let plain = SignDestination::of(&binds, &userauth(1, None));
        assert_eq!(plain.dest.host_key, host);
        // Another session, or another host key named in the request: not the bound host.
        let other_session = SignDestination::of(&binds, &userauth(7, None));
        assert_eq!(other_session.dest.host_key, None);
        assert_eq!(other_session.user.as_deref(), Some("deploy"));
        let other_host = SignDestination::of(&binds, &userauth(1, Some(5)));
        assert_eq!(other_host.dest.host_key, None);
        // Not a userauth request: the bound host, no user.
        let blob = SignDestination::of(&binds, b"arbitrary data");
        assert_eq!((blob.dest.host_key, blob.user), (host, None));
        // No bind: the destination is unknown even if the request names a host key.
        let unbound = SignDestination::of(&SessionBinds::default(), &userauth(1, Some(1)));
        assert_eq!(unbound.dest.host_key, None);
    }
}
