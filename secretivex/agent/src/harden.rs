//! Process hardening applied at start-up: no ptrace attach by other processes of the same
//! user, no core dumps (memory holds private keys), and as many file descriptors as the
//! hard limit allows so fan-out clients are not refused for lack of fds.

use rustix::process::{getrlimit, setrlimit, DumpableBehavior, Resource, Rlimit};

/// What [`harden_process`] achieved; failures are reported, not fatal, as OpenSSH does.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HardenReport {
    /// `prctl(PR_SET_DUMPABLE, 0)` succeeded.
    pub not_dumpable: bool,
    /// `RLIMIT_CORE` is 0.
    pub no_core_dumps: bool,
    /// Soft `RLIMIT_NOFILE` after raising (`None`: unlimited or unknown).
    pub nofile: Option<u64>,
}

/// Forbids ptrace attach and core dumps of this process (`PR_SET_DUMPABLE` 0).
/// Reset by `execve`, so it is safe to call before forking a command.
pub fn disable_tracing() -> bool {
    match rustix::process::set_dumpable_behavior(DumpableBehavior::NotDumpable) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "prctl(PR_SET_DUMPABLE, 0) failed");
            false
        }
    }
}

/// Sets `RLIMIT_CORE` to 0 (soft and hard). Inherited across `execve`: call it only in the
/// agent process itself, never before running a user's command.
pub fn disable_core_dumps() -> bool {
    let zero = Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    match setrlimit(Resource::Core, zero) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "setrlimit(RLIMIT_CORE, 0) failed");
            false
        }
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the new soft limit.
pub fn raise_nofile_limit() -> Option<u64> {
    let limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        return limit.current;
    }
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => limit.maximum,
        Err(e) => {
            tracing::warn!(error = %e, "could not raise RLIMIT_NOFILE to the hard limit");
            limit.current
        }
    }
}

/// All of the above, for the agent process.
pub fn harden_process() -> HardenReport {
    HardenReport {
        not_dumpable: disable_tracing(),
        no_core_dumps: disable_core_dumps(),
        nofile: raise_nofile_limit(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Runs in a child process so the test binary itself keeps its limits.
    #[test]
    fn hardening_takes_effect_in_a_child() {
        // SAFETY: fork in a test: the child only makes async-signal-safe system calls
        // (prctl, getrlimit/setrlimit) and `_exit`s without touching Rust runtime state.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let ok_dump =
                rustix::process::set_dumpable_behavior(DumpableBehavior::NotDumpable).is_ok();
            let ok_core = setrlimit(
                Resource::Core,
                Rlimit {
                    current: Some(0),
                    maximum: Some(0),
                },
            )
            .is_ok();
            let core = getrlimit(Resource::Core);
            // SAFETY: PR_GET_DUMPABLE takes no pointer arguments.
            let dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE) };
            let code = if ok_dump && ok_core && core.current == Some(0) && dumpable == 0 {
                0
            } else {
                1
            };
            // SAFETY: leave the forked child without running destructors or atexit hooks.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waiting for the child we just forked; `status` is a valid pointer.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(waited, pid);
        assert!(libc::WIFEXITED(status));
        assert_eq!(libc::WEXITSTATUS(status), 0);
    }

    #[test]
    fn nofile_is_raised_to_hard_limit() {
        let after = raise_nofile_limit();
        let limit = getrlimit(Resource::Nofile);
        assert_eq!(after, limit.current);
        assert_eq!(limit.current, limit.maximum);
    }
}
