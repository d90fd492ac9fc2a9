//! `secretivex audit`: checking the agent's hash-chained audit trail.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use secretivex_audit::{log_files_in_dir, verify, Verdict};

use crate::Outcome;

/// Subcommands of `secretivex audit`.
#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Check the hash chain of an audit log and name its first broken line.
    ///
    /// Exit status: 0 when the chain is intact, 1 when a line is edited, missing, out of
    /// order or not an audit line, 2 when the files cannot be read.
    Verify {
        /// Log files, or a directory holding one log. Rotated files (`PATH.N`) are put in
        /// order (by N, then `PATH`) whatever order they are given in.
        #[arg(required = true, value_name = "FILE|DIR")]
        paths: Vec<PathBuf>,
        /// Print the result as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// Runs the subcommand.
pub fn run(cmd: AuditCmd) -> anyhow::Result<Outcome> {
    match cmd {
        AuditCmd::Verify { paths, json } => verify_cmd(&paths, json, &mut std::io::stdout().lock()),
    }
}

fn verify_cmd(paths: &[PathBuf], json: bool, out: &mut impl Write) -> anyhow::Result<Outcome> {
    let files = expand(paths)?;
    let verdict = verify(&files).context("reading the audit log")?;
    let outcome = match &verdict {
        Verdict::Intact(_) => Outcome::Ok,
        Verdict::Broken(_) => Outcome::Negative,
    };
    if json {
        let value = match &verdict {
            Verdict::Intact(i) => serde_json::json!({
                "ok": true,
                "files": i.files,
                "lines": i.lines,
                "first_seq": i.first_seq,
                "last_seq": i.last_seq,
                "head": i.head,
            }),
            Verdict::Broken(b) => serde_json::json!({
                "ok": false,
                "file": b.file.display().to_string(),
                "line": b.line,
                "reason": b.kind.as_str(),
                "detail": b.detail,
            }),
        };
        writeln!(out, "{value}")?;
    } else {
        match &verdict {
            Verdict::Intact(i) => {
                let range = match (i.first_seq, i.last_seq) {
                    (Some(a), Some(b)) => format!(", seq {a} to {b}"),
                    _ => String::new(),
                };
                writeln!(
                    out,
                    "intact: {} lines in {} file(s){range}; head {}",
                    i.lines, i.files, i.head
                )?;
            }
            Verdict::Broken(b) => writeln!(
                out,
                "{}:{}: {}: {}",
                b.file.display(),
                b.line,
                b.kind.as_str(),
                b.detail
            )?,
        }
    }
    Ok(outcome)
}

/// The files to check, oldest first: directories replaced by their log's files, and rotated
/// files of one log ordered by their number, the current file last.
fn expand(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
        if meta.is_dir() {
            files.extend(log_files_in_dir(path).map_err(anyhow::Error::msg)?);
        } else {
            files.push(path.clone());
        }
    }
    // Group by log (first appearance order), then order each log's files by rotation number.
    let mut bases: Vec<PathBuf> = Vec::new();
    let mut keyed: Vec<(usize, u64, PathBuf)> = Vec::with_capacity(files.len());
    for file in files {
        let (base, n) = rotation_key(&file);
        let group = match bases.iter().position(|b| *b == base) {
            Some(g) => g,
            None => {
                bases.push(base);
                bases.len() - 1
            }
        };
        keyed.push((group, n, file));
    }
    keyed.sort_by_key(|(g, n, _)| (*g, *n));
    let mut ordered: Vec<PathBuf> = keyed.into_iter().map(|(_, _, f)| f).collect();
    ordered.dedup();
    Ok(ordered)
}

/// (`PATH`, N) for `PATH.N`; (`PATH`, u64::MAX) for a current file, which comes last.
fn rotation_key(file: &Path) -> (PathBuf, u64) {
    let s = file.to_string_lossy();
    if let Some((base, digits)) = s.rsplit_once('.') {
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = digits.parse::<u64>() {
                return (PathBuf::from(base), n);
            }
        }
    }
    (file.to_path_buf(), u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_files_are_ordered_by_number_then_current() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        for n in ["a.jsonl", "a.jsonl.2", "a.jsonl.10", "b.log"] {
            std::fs::write(p(n), b"").unwrap();
        }
        let given = vec![p("a.jsonl"), p("a.jsonl.10"), p("b.log"), p("a.jsonl.2")];
        let got = expand(&given).unwrap();
        assert_eq!(
            got,
            vec![p("a.jsonl.2"), p("a.jsonl.10"), p("a.jsonl"), p("b.log")]
        );
    }

    #[test]
    fn a_missing_path_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(expand(&[dir.path().join("nope")]).is_err());
    }
}
