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

/// Reads the peer credentials of a connected socket given as a file descriptor.
///
/// Through `libc` rather than rustix: rustix's `UCred` holds the pid as a non-zero type,
/// but the kernel reports 0 when the peer's pid is not visible from our pid namespace.
pub fn peer_of_fd(fd: &impl std::os::fd::AsFd) -> std::io::Result<Peer> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let size = std::mem::size_of::<libc::ucred>();
    let mut len = libc::socklen_t::try_from(size).map_err(std::io::Error::other)?;
    // SAFETY: `cred` is a plain C struct valid for writes of `len` bytes (its exact size),
    // `len` is valid for reads and writes, and the descriptor is borrowed for the call.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            std::ptr::from_mut(&mut cred).cast::<libc::c_void>(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if usize::try_from(len).ok() != Some(size) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "short SO_PEERCRED answer",
        ));
    }
    Ok(Peer {
        uid: cred.uid,
        gid: cred.gid,
        pid: (cred.pid != 0).then_some(cred.pid),
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
        let by_fd = peer_of_fd(&a).unwrap();
        assert_eq!(by_fd, peer);
    }
}
