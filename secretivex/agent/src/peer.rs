//! Who may talk to the agent: the owner's uid and root, as OpenSSH's `ssh-agent` decides
//! after `getpeereid()`. Checked on every accepted connection from `SO_PEERCRED`.

/// The credentials of a connected peer, as the kernel reported them at `connect()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
}

/// Whether a peer with effective uid `peer_uid` may use an agent owned by `owner_uid`.
pub fn is_allowed(peer_uid: u32, owner_uid: u32) -> bool {
    peer_uid == owner_uid || peer_uid == 0
}

/// Reads the peer credentials of a connected socket.
pub fn peer_of(stream: &tokio::net::UnixStream) -> std::io::Result<Peer> {
    let cred = stream.peer_cred()?;
    Ok(Peer {
        uid: cred.uid(),
        gid: cred.gid(),
        pid: cred.pid(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_and_root_only() {
        assert!(is_allowed(1000, 1000));
        assert!(is_allowed(0, 1000));
        assert!(is_allowed(0, 0));
        assert!(!is_allowed(1001, 1000));
        assert!(!is_allowed(65534, 0));
    }

    #[tokio::test]
    async fn reads_own_credentials_from_a_socket_pair() {
        let (a, _b) = tokio::net::UnixStream::pair().unwrap();
        let peer = peer_of(&a).unwrap();
        assert_eq!(peer.uid, rustix::process::geteuid().as_raw());
        assert_eq!(peer.pid, Some(std::process::id() as i32));
    }
}
