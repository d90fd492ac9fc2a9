//! Confirmation of key use (`ssh-add -c`) through `SSH_ASKPASS`, as OpenSSH's agent does:
//! the program runs with the prompt as its only argument and `SSH_ASKPASS_PROMPT=confirm`;
//! use is allowed when it exits with status 0 and prints nothing or "yes" (any case).
//!
//! The program runs as an async child process: only the connection asking waits for it,
//! and no signing thread is held meanwhile.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use zeroize::Zeroizing;

/// OpenSSH's default askpass on Debian-like systems, used when `SSH_ASKPASS` is unset.
pub const DEFAULT_ASKPASS: &str = "/usr/lib/openssh/ssh-askpass";

/// Most bytes of askpass output read; the answer is a word, anything longer is a refusal.
const MAX_OUTPUT: u64 = 1024;

/// The askpass program to run: the configured one, else `$SSH_ASKPASS`, else the default.
pub fn askpass_program(configured: Option<&Path>) -> PathBuf {
    if let Some(p) = configured {
        return p.to_path_buf();
    }
    match std::env::var_os("SSH_ASKPASS") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_ASKPASS),
    }
}

/// The prompt OpenSSH shows for a confirm-constrained key.
pub fn confirm_prompt(comment: &str, fingerprint: &str, extra: Option<&str>) -> String {
    let mut prompt = format!("Allow use of key {comment}?\nKey fingerprint {fingerprint}.");
    if let Some(extra) = extra {
        prompt.push('\n');
        prompt.push_str(extra);
    }
    prompt
}

/// Interprets askpass output for a confirmation: the first line, empty or "yes".
pub fn answer_allows(output: &[u8]) -> bool {
    let line_end = output
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .unwrap_or(output.len());
    let line = output.get(..line_end).unwrap_or_default();
    line.is_empty() || line.eq_ignore_ascii_case(b"yes")
}

/// Runs the askpass program and returns whether the user allowed the use of the key.
/// Any failure to run it is a refusal.
pub async fn ask_permission(program: &Path, prompt: &str) -> bool {
    let child = tokio::process::Command::new(program)
        .arg(prompt)
        .env("SSH_ASKPASS_PROMPT", "confirm")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(program = %program.display(), error = %e, "cannot run askpass; refusing key use");
            return false;
        }
    };
    let mut output = Zeroizing::new(Vec::new());
    if let Some(stdout) = child.stdout.take() {
        if let Err(e) = stdout.take(MAX_OUTPUT).read_to_end(&mut output).await {
            tracing::warn!(error = %e, "reading askpass output failed; refusing key use");
            return false;
        }
    }
    match child.wait().await {
        Ok(status) if status.success() => answer_allows(&output),
        Ok(_) => false,
        Err(e) => {
            tracing::warn!(error = %e, "waiting for askpass failed; refusing key use");
            false
        }
    }
}

/// How a prompt with a time limit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptAnswer {
    /// Exit status 0 and an empty or "yes" answer.
    Allowed,
    /// Any other answer, or the program could not be run.
    Refused,
    /// No answer within the limit; the prompt's process group was killed.
    TimedOut,
}

/// Runs `program args… prompt` (the SSH_ASKPASS convention, `SSH_ASKPASS_PROMPT=confirm`)
/// in its own process group and waits at most `limit` for its answer. On timeout the
/// whole group is killed, so a prompt script's own children do not linger.
pub async fn ask_with_limit(
    program: &OsStr,
    args: &[impl AsRef<OsStr>],
    prompt: &str,
    limit: Duration,
) -> PromptAnswer {
    let child = tokio::process::Command::new(program)
        .args(args)
        .arg(prompt)
        .env("SSH_ASKPASS_PROMPT", "confirm")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(program = %Path::new(program).display(), error = %e, "cannot run the confirm command; refusing");
            return PromptAnswer::Refused;
        }
    };
    let group = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw);
    let answer = tokio::time::timeout(limit, async {
        let mut output = Zeroizing::new(Vec::new());
        if let Some(stdout) = child.stdout.take() {
            if stdout
                .take(MAX_OUTPUT)
                .read_to_end(&mut output)
                .await
                .is_err()
            {
                return PromptAnswer::Refused;
            }
        }
        match child.wait().await {
            Ok(status) if status.success() && answer_allows(&output) => PromptAnswer::Allowed,
            _ => PromptAnswer::Refused,
        }
    })
    .await;
    match answer {
        Ok(answer) => answer,
        Err(_) => {
            if let Some(group) = group {
                // The group may already be gone; nothing else to do then.
                let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
            }
            let _ = child.wait().await;
            PromptAnswer::TimedOut
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_matches_openssh_wording() {
        assert_eq!(
            confirm_prompt("me@host", "SHA256:abc", None),
            "Allow use of key me@host?\nKey fingerprint SHA256:abc."
        );
        assert_eq!(
            confirm_prompt("k", "SHA256:x", Some("to host")),
            "Allow use of key k?\nKey fingerprint SHA256:x.\nto host"
        );
    }

    #[test]
    fn answers() {
        assert!(answer_allows(b""));
        assert!(answer_allows(b"\n"));
        assert!(answer_allows(b"yes\n"));
        assert!(answer_allows(b"YES"));
        assert!(answer_allows(b"Yes\r\n"));
        assert!(!answer_allows(b"no\n"));
        assert!(!answer_allows(b"yes please"));
        assert!(!answer_allows(b"y"));
    }

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        crate::test_support::write_script(dir, name, body)
    }

    #[tokio::test]
    async fn runs_askpass_with_prompt_and_hint() {
        let tmp = tempfile::tempdir().unwrap();
        let seen = tmp.path().join("seen");
        let approve = script(
            tmp.path(),
            "approve",
            &format!(
                "printf '%s|%s' \"$SSH_ASKPASS_PROMPT\" \"$1\" > '{}'; echo yes",
                seen.display()
            ),
        );
        assert!(ask_permission(&approve, "Allow?").await);
        assert_eq!(std::fs::read_to_string(&seen).unwrap(), "confirm|Allow?");

        let deny_status = script(tmp.path(), "deny-status", "exit 1");
        assert!(!ask_permission(&deny_status, "Allow?").await);
        let deny_word = script(tmp.path(), "deny-word", "echo no");
        assert!(!ask_permission(&deny_word, "Allow?").await);
        let silent = script(tmp.path(), "silent", "exit 0");
        assert!(ask_permission(&silent, "Allow?").await);
        assert!(!ask_permission(&tmp.path().join("missing"), "Allow?").await);
    }

    #[tokio::test]
    async fn limited_prompts_pass_arguments_and_time_out() {
        let tmp = tempfile::tempdir().unwrap();
        let seen = tmp.path().join("seen");
        let approve = script(
            tmp.path(),
            "approve",
            &format!(
                "printf '%s|%s|%s' \"$SSH_ASKPASS_PROMPT\" \"$1\" \"$2\" > '{}'",
                seen.display()
            ),
        );
        let limit = Duration::from_secs(60);
        let answer = ask_with_limit(approve.as_os_str(), &["--flag"], "Allow?", limit).await;
        assert_eq!(answer, PromptAnswer::Allowed);
        assert_eq!(
            std::fs::read_to_string(&seen).unwrap(),
            "confirm|--flag|Allow?"
        );
        let no: &[&str] = &[];
        let refuse = script(tmp.path(), "refuse", "echo no");
        assert_eq!(
            ask_with_limit(refuse.as_os_str(), no, "?", limit).await,
            PromptAnswer::Refused
        );
        let missing = tmp.path().join("missing");
        assert_eq!(
            ask_with_limit(missing.as_os_str(), no, "?", limit).await,
            PromptAnswer::Refused
        );

        // A prompt that never answers, with a child of its own: both are killed.
        let pid_file = tmp.path().join("pid");
        let hang = script(
            tmp.path(),
            "hang",
            &format!("sleep 600 & echo $! > '{}'; wait", pid_file.display()),
        );
        let short = Duration::from_millis(300);
        assert_eq!(
            ask_with_limit(hang.as_os_str(), no, "?", short).await,
            PromptAnswer::TimedOut
        );
        let grandchild: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Killed and reaped by init (or a subreaper) shortly after: poll, bounded by count.
        let mut gone = false;
        for _ in 0..2000 {
            let stat =
                std::fs::read_to_string(format!("/proc/{grandchild}/stat")).unwrap_or_default();
            if stat.is_empty() || stat.contains(") Z ") {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(gone, "the prompt's child survived the timeout");
    }
}
