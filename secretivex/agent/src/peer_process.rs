//! The requesting process's executable and name, from `/proc/PID/exe` and
//! `/proc/PID/comm`, for policy rules and audit lines.
//!
//! Read at most once per connection, and only when the policy or the audit trail needs
//! them: a connection per request is the fan-out pattern, and each read is two system
//! calls. A process that has exited, a pid from another pid namespace, or a process we
//! may not inspect leaves the fact unknown; the policy then fails closed.

/// Longest `comm` read; the kernel's limit is 16 bytes with the newline.
const MAX_COMM: usize = 64;

/// What `/proc` said about the peer process. `None` fields are unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerProcess {
    /// The executable's path (without the kernel's ` (deleted)` suffix).
    pub exe: Option<String>,
    /// The process name (`comm`), at most 15 bytes.
    pub name: Option<String>,
}

impl PeerProcess {
    /// Reads the facts of `pid` (nothing when the pid is not visible to us).
    pub fn read(pid: Option<i32>) -> PeerProcess {
        let Some(pid) = pid.filter(|&pid| pid > 0) else {
            return PeerProcess::default();
        };
        PeerProcess {
            exe: read_exe(pid),
            name: read_comm(pid),
        }
    }
}

fn read_exe(pid: i32) -> Option<String> {
    let target = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let text = target.to_str()?;
    // An executable replaced on disk (a package upgrade) keeps running under its old path
    // with this suffix; the rules name the path.
    Some(text.strip_suffix(" (deleted)").unwrap_or(text).to_owned())
}

fn read_comm(pid: i32) -> Option<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(format!("/proc/{pid}/comm")).ok()?;
    let mut bytes = Vec::with_capacity(MAX_COMM);
    file.by_ref()
        .take(MAX_COMM as u64)
        .read_to_end(&mut bytes)
        .ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let name = text.strip_suffix('\n').unwrap_or(text);
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_process() {
        let me = PeerProcess::read(Some(std::process::id() as i32));
        let exe = std::env::current_exe().unwrap();
        assert_eq!(me.exe.as_deref(), exe.to_str());
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
        assert_eq!(me.name.as_deref(), Some(comm.trim_end()));
    }

    #[test]
    fn unknown_pids_leave_facts_unknown() {
        assert_eq!(PeerProcess::read(None), PeerProcess::default());
        assert_eq!(PeerProcess::read(Some(0)), PeerProcess::default());
        assert_eq!(PeerProcess::read(Some(-5)), PeerProcess::default());
        // Above the kernel's pid_max (at most 2^22): never a live process.
        assert_eq!(PeerProcess::read(Some(i32::MAX)), PeerProcess::default());
    }

    #[test]
    fn reads_a_child_process() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        // Until the child has exec'd, /proc shows our own image: poll for the change.
        let mut info = PeerProcess::read(Some(child.id() as i32));
        for _ in 0..5000 {
            if info.name.as_deref() == Some("sleep") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
            info = PeerProcess::read(Some(child.id() as i32));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(info.name.as_deref(), Some("sleep"));
        assert!(
            info.exe.as_deref().is_some_and(|e| e.ends_with("/sleep")),
            "{info:?}"
        );
    }
}
