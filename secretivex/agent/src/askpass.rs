//! Reading a passphrase through `SSH_ASKPASS` (for `--key` files that are encrypted):
//! the program gets the prompt as `argv[1]` and prints the passphrase on stdout.

use std::path::Path;
use std::process::{Command, Stdio};

use zeroize::Zeroizing;

/// Why no passphrase could be read.
#[derive(Debug, thiserror::Error)]
pub enum AskpassError {
    #[error("cannot run askpass program {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("askpass program {program} exited with {status}")]
    Status { program: String, status: String },
}

/// Runs `program` with `prompt` and returns its first output line (without the line end).
/// The output buffer is zeroized.
pub fn read_passphrase(program: &Path, prompt: &str) -> Result<Zeroizing<Vec<u8>>, AskpassError> {
    let output = Command::new(program)
        .arg(prompt)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|source| AskpassError::Spawn {
            program: program.display().to_string(),
            source,
        })?;
    let stdout = Zeroizing::new(output.stdout);
    if !output.status.success() {
        return Err(AskpassError::Status {
            program: program.display().to_string(),
            status: output.status.to_string(),
        });
    }
    let end = stdout
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .unwrap_or(stdout.len());
    Ok(Zeroizing::new(
        stdout.get(..end).unwrap_or_default().to_vec(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn reads_first_line_and_passes_prompt() {
        let tmp = tempfile::tempdir().unwrap();
        let prog = tmp.path().join("askpass");
        std::fs::write(
            &prog,
            "#!/bin/sh\nprintf 'pw-for:%s\\nsecond line\\n' \"$1\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
        let pass = read_passphrase(&prog, "key.pem").unwrap();
        assert_eq!(&pass[..], b"pw-for:key.pem");
    }

    #[test]
    fn failing_program_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let prog = tmp.path().join("askpass");
        std::fs::write(&prog, "#!/bin/sh\necho secret; exit 3\n").unwrap();
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(
            read_passphrase(&prog, "p"),
            Err(AskpassError::Status { .. })
        ));
        assert!(matches!(
            read_passphrase(&tmp.path().join("none"), "p"),
            Err(AskpassError::Spawn { .. })
        ));
    }
}
