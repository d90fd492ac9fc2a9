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
    use crate::test_support::write_script;

    #[test]
    fn reads_first_line_and_passes_prompt() {
        let tmp = tempfile::tempdir().unwrap();
        let prog = write_script(
            tmp.path(),
            "askpass",
            "printf 'pw-for:%s\\nsecond line\\n' \"$1\"",
        );
        let pass = read_passphrase(&prog, "key.pem").unwrap();
        assert_eq!(&pass[..], b"pw-for:key.pem");
    }

    #[test]
    fn failing_program_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let prog = write_script(tmp.path(), "askpass", "echo secret; exit 3");
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
