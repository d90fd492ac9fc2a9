//! Process management like `ssh-agent`: the shell export lines, forking into the
//! background, `-k`, and running a COMMAND under the agent.
//!
//! Forking happens before the tokio runtime or any other thread exists.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;

use anyhow::{bail, Context};
use rustix::process::{Pid, Signal};

use crate::cli::Shell;

/// `SSH_AUTH_SOCK=…; export SSH_AUTH_SOCK;` and friends, as ssh-agent prints them.
pub fn export_lines(shell: Shell, socket: &Path, pid: u32) -> String {
    let sock = socket.display();
    match shell {
        Shell::Sh => format!(
            "SSH_AUTH_SOCK={sock}; export SSH_AUTH_SOCK;\n\
             SSH_AGENT_PID={pid}; export SSH_AGENT_PID;\n\
             echo Agent pid {pid};\n"
        ),
        Shell::Csh => format!(
            "setenv SSH_AUTH_SOCK {sock};\n\
             setenv SSH_AGENT_PID {pid};\n\
             echo Agent pid {pid};\n"
        ),
    }
}

/// What `-k` prints after killing the agent.
pub fn kill_lines(shell: Shell, pid: i32) -> String {
    match shell {
        Shell::Sh => {
            format!("unset SSH_AUTH_SOCK;\nunset SSH_AGENT_PID;\necho Agent pid {pid} killed;\n")
        }
        Shell::Csh => format!(
            "unsetenv SSH_AUTH_SOCK;\nunsetenv SSH_AGENT_PID;\necho Agent pid {pid} killed;\n"
        ),
    }
}

/// Parses `$SSH_AGENT_PID`.
pub fn agent_pid_from_env(value: Option<&str>) -> anyhow::Result<Pid> {
    let Some(text) = value else {
        bail!("SSH_AGENT_PID not set, cannot kill agent");
    };
    let raw: i32 = text
        .trim()
        .parse()
        .with_context(|| format!("SSH_AGENT_PID={text:?} is not a process id"))?;
    // Checked before `Pid::from_raw`, which asserts on negative values.
    if raw <= 1 {
        bail!("SSH_AGENT_PID={text:?} is not a valid process id");
    }
    Pid::from_raw(raw).with_context(|| format!("SSH_AGENT_PID={text:?} is not a valid process id"))
}

/// `-k`: sends SIGTERM to the agent in `$SSH_AGENT_PID` and prints the unset lines.
pub fn kill_agent(shell: Shell) -> anyhow::Result<()> {
    let env = std::env::var("SSH_AGENT_PID").ok();
    let pid = agent_pid_from_env(env.as_deref())?;
    rustix::process::kill_process(pid, Signal::TERM)
        .with_context(|| format!("kill {}", pid.as_raw_nonzero()))?;
    print!("{}", kill_lines(shell, pid.as_raw_nonzero().get()));
    Ok(())
}

/// Which side of a fork we are on.
pub enum Forked {
    /// The original process; holds the child's pid.
    Parent(u32),
    /// The new process.
    Child,
}

/// Forks the process.
///
/// Must be called while the process has a single thread (before the runtime starts).
pub fn fork() -> anyhow::Result<Forked> {
    // SAFETY: called from `main` before the tokio runtime or the signing pool exists, so
    // the process has one thread and the child may go on running ordinary Rust code.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(std::io::Error::last_os_error()).context("fork"),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid.unsigned_abs())),
    }
}

/// Detaches the agent process: new session, working directory `/`, stdio on /dev/null.
pub fn detach() -> anyhow::Result<()> {
    rustix::process::setsid().context("setsid")?;
    std::env::set_current_dir("/").context("chdir /")?;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .context("open /dev/null")?;
    for target in [0, 1, 2] {
        // SAFETY: `null` is an open descriptor for the whole call and 0..=2 are the
        // standard descriptors; dup2 only replaces what they point to.
        if unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), target) } == -1 {
            return Err(std::io::Error::last_os_error()).context("dup2 /dev/null");
        }
    }
    Ok(())
}

/// Replaces this process with `command`, with the agent variables set. Only returns on
/// failure.
pub fn exec_command(command: &[OsString], socket: &Path, agent_pid: u32) -> anyhow::Error {
    let Some((program, args)) = command.split_first() else {
        return anyhow::anyhow!("no command given");
    };
    let err = std::process::Command::new(program)
        .args(args)
        .env("SSH_AUTH_SOCK", socket)
        .env("SSH_AGENT_PID", agent_pid.to_string())
        .exec();
    anyhow::Error::new(err).context(format!("cannot run {}", program.to_string_lossy()))
}

/// True while the process that started us (pid `parent`) is still our parent.
pub fn parent_alive(parent: u32) -> bool {
    let current = rustix::process::getppid().map(|p| p.as_raw_nonzero().get().unsigned_abs());
    current == Some(parent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sh_and_csh_exports() {
        assert_eq!(
            export_lines(Shell::Sh, Path::new("/run/a.sock"), 42),
            "SSH_AUTH_SOCK=/run/a.sock; export SSH_AUTH_SOCK;\n\
             SSH_AGENT_PID=42; export SSH_AGENT_PID;\necho Agent pid 42;\n"
        );
        assert_eq!(
            export_lines(Shell::Csh, Path::new("/run/a.sock"), 42),
            "setenv SSH_AUTH_SOCK /run/a.sock;\nsetenv SSH_AGENT_PID 42;\necho Agent pid 42;\n"
        );
        assert_eq!(
            kill_lines(Shell::Sh, 7),
            "unset SSH_AUTH_SOCK;\nunset SSH_AGENT_PID;\necho Agent pid 7 killed;\n"
        );
        assert!(kill_lines(Shell::Csh, 7).starts_with("unsetenv SSH_AUTH_SOCK;"));
    }

    #[test]
    fn agent_pid_parsing() {
        assert_eq!(
            agent_pid_from_env(Some("1234"))
                .unwrap()
                .as_raw_nonzero()
                .get(),
            1234
        );
        assert!(agent_pid_from_env(None).is_err());
        assert!(agent_pid_from_env(Some("abc")).is_err());
        assert!(agent_pid_from_env(Some("0")).is_err());
        assert!(agent_pid_from_env(Some("1")).is_err());
        assert!(agent_pid_from_env(Some("-5")).is_err());
    }

    #[test]
    fn our_parent_is_alive() {
        let ppid = rustix::process::getppid().unwrap().as_raw_nonzero().get() as u32;
        assert!(parent_alive(ppid));
        assert!(!parent_alive(ppid.wrapping_add(1)));
    }
}
