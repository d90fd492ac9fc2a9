//! Running `systemctl --user`, with failures explained (no systemd, no user manager).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Why a `systemctl --user` step did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SystemctlError {
    /// The program is not installed.
    #[error("{program} not found: is this a systemd system?")]
    Missing { program: String },
    /// It could not be started for another reason.
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// It ran and failed, typically without a user manager ("Failed to connect to bus").
    #[error("`{command}` failed ({status}): {stderr}{hint}")]
    Failed {
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
        hint: &'static str,
    },
}

/// The `systemctl` program: `$SECRETIVEX_SYSTEMCTL` when set (another systemctl, or a stand-in
/// in tests), else `systemctl` on `PATH`.
pub struct Systemctl {
    program: PathBuf,
}

impl Systemctl {
    /// The program named by the environment.
    pub fn from_env() -> Self {
        let program = std::env::var_os("SECRETIVEX_SYSTEMCTL")
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| OsString::from("systemctl"));
        Systemctl {
            program: PathBuf::from(program),
        }
    }

    /// The command line of `systemctl --user ARGS`, for messages.
    pub fn describe(&self, args: &[&str]) -> String {
        let mut s = format!("{} --user", self.program.display());
        for a in args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }

    /// Runs `systemctl --user ARGS` and waits for it.
    pub fn user(&self, args: &[&str]) -> Result<(), SystemctlError> {
        let program = self.program.display().to_string();
        let output = Command::new(&self.program)
            .arg("--user")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::NotFound => SystemctlError::Missing {
                    program: program.clone(),
                },
                _ => SystemctlError::Spawn {
                    program: program.clone(),
                    source,
                },
            })?;
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        let hint = if stderr.contains("connect to bus") || stderr.contains("XDG_RUNTIME_DIR") {
            " (no user manager for this session: containers and sessions without lingering \
             have none)"
        } else {
            ""
        };
        Err(SystemctlError::Failed {
            command: self.describe(args),
            status: output.status,
            stderr,
            hint,
        })
    }
}
