//! Checking a log's chain across its files and naming the first broken line.
//!
//! Every line must carry `seq` one more than the line before and `prev` equal to the SHA-256
//! of the line before. The first line of the log carries `seq` 1 and the genesis `prev`, or —
//! when `keep` removed older files — the `seq` and `prev` that a later `pruned` line recorded as
//! the new start. At the first line that breaks these rules the cause is worked out from the
//! lines around it:
//!
//! * `seq` right but `prev` wrong: a line was edited. If the next line still chains to this
//!   one, the line before was edited; otherwise this one (its `prev` was changed).
//! * `prev` right but `seq` wrong: this line was edited (its `seq`).
//! * both wrong: lines are out of order when the expected `seq` appears later, else missing.
//!
//! The newest line is protected only once a line follows it: an edit of it, or its removal,
//! is not detectable from the log alone. Keep the `head` that `verify` reports to compare later.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::files::MAX_LINE;
use crate::record::{hex32, line_hash, LineHead, GENESIS};

/// Why a line breaks the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakKind {
    /// The line's bytes were changed.
    Edited,
    /// One or more lines before this one are missing.
    Missing,
    /// This line is out of order.
    Reordered,
    /// Not an audit line: not JSON, no `seq`/`prev`, or cut short.
    BadLine,
}

impl BreakKind {
    /// The word used in messages and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakKind::Edited => "edited",
            BreakKind::Missing => "missing",
            BreakKind::Reordered => "reordered",
            BreakKind::BadLine => "bad_line",
        }
    }
}

/// The first line that breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Broken {
    /// The file holding it.
    pub file: PathBuf,
    /// Its line number in that file, from 1.
    pub line: u64,
    /// What is wrong.
    pub kind: BreakKind,
    /// A sentence for people.
    pub detail: String,
}

/// An intact log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Intact {
    /// Files read.
    pub files: usize,
    /// Lines checked.
    pub lines: u64,
    /// `seq` of the first line, if any.
    pub first_seq: Option<u64>,
    /// `seq` of the last line, if any.
    pub last_seq: Option<u64>,
    /// SHA-256 of the last line (what the next line will carry as `prev`): record it to detect
    /// later changes to the newest lines.
    pub head: String,
}

/// The result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every line chains to the one before.
    Intact(Intact),
    /// The first line that does not.
    Broken(Broken),
}

/// A log that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// A file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// No file was given.
    #[error("no files to verify")]
    NoFiles,
}

/// One line read, with where it is.
struct Line {
    file: usize,
    no: u64,
    bytes: Vec<u8>,
    /// Ended with a newline (and was not over the length cap).
    complete: bool,
}

/// Reads the lines of several files in order.
struct Lines<'a> {
    files: &'a [PathBuf],
    next_file: usize,
    current: Option<(usize, BufReader<File>, u64)>,
}

impl<'a> Lines<'a> {
    fn new(files: &'a [PathBuf]) -> Lines<'a> {
        Lines {
            files,
            next_file: 0,
            current: None,
        }
    }

    fn next(&mut self) -> Result<Option<Line>, VerifyError> {
        loop {
            if self.current.is_none() {
                let Some(path) = self.files.get(self.next_file) else {
                    return Ok(None);
                };
                let file = File::open(path).map_err(|source| VerifyError::Io {
                    path: path.clone(),
                    source,
                })?;
                self.current = Some((self.next_file, BufReader::new(file), 0));
                self.next_file += 1;
            }
            let Some((idx, reader, no)) = self.current.as_mut() else {
                continue;
            };
            let mut bytes = Vec::new();
            let n = reader
                .by_ref()
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut bytes)
                .map_err(|source| VerifyError::Io {
                    path: self.files.get(*idx).cloned().unwrap_or_default(),
                    source,
                })?;
            if n == 0 {
                self.current = None;
                continue;
            }
            *no += 1;
            let complete = bytes.last() == Some(&b'\n');
            if complete {
                bytes.pop();
            }
            return Ok(Some(Line {
                file: *idx,
                no: *no,
                bytes,
                complete,
            }));
        }
    }
}

/// The chain position after one good line.
struct Prev {
    seq: u64,
    hash: [u8; 32],
    file: usize,
    no: u64,
}

/// Checks the chain through `files`, oldest first.
///
/// # Errors
/// When a file cannot be read, or no file is given.
pub fn verify(files: &[PathBuf]) -> Result<Verdict, VerifyError> {
    if files.is_empty() {
        return Err(VerifyError::NoFiles);
    }
    let name = |i: usize| files.get(i).cloned().unwrap_or_default();
    let broken = |file: usize, line: u64, kind: BreakKind, detail: String| {
        Ok(Verdict::Broken(Broken {
            file: name(file),
            line,
            kind,
            detail,
        }))
    };
    let mut lines = Lines::new(files);
    let mut prev: Option<Prev> = None;
    let mut index: u64 = 0;
    let mut first_seq = None;
    // A log that starts after seq 1 must be explained by a `pruned` line (checked at the end).
    let mut late_start: Option<Start> = None;
    // The break, and the index of the line where it showed.
    let mut found: Option<(Verdict, u64)> = None;
    while let Some(line) = lines.next()? {
        index += 1;
        if !line.complete {
            let detail = if line.bytes.len() > MAX_LINE {
                "line longer than 1 MiB".to_owned()
            } else {
                "last line has no newline (cut short, or still being written)".to_owned()
            };
            found = Some((
                broken(line.file, line.no, BreakKind::BadLine, detail)?,
                index,
            ));
            break;
        }
        let head = match LineHead::parse(&line.bytes) {
            Ok(head) => head,
            Err(e) => {
                let detail = format!("not an audit line: {e}");
                found = Some((
                    broken(line.file, line.no, BreakKind::BadLine, detail)?,
                    index,
                ));
                break;
            }
        };
        let hash = line_hash(&line.bytes);
        match &prev {
            None => {
                first_seq = Some(head.seq);
                if head.seq == 1 {
                    if head.prev != GENESIS {
                        let detail = "the first line (seq 1) must carry the genesis prev";
                        let b = broken(line.file, line.no, BreakKind::Edited, detail.to_owned())?;
                        found = Some((b, index));
                        break;
                    }
                } else {
                    late_start = Some(Start {
                        file: line.file,
                        no: line.no,
                        seq: head.seq,
                        prev: head.prev.clone(),
                        // A `pruned` line that names itself (or half of itself, after an edit)
                        // as the start: written when `keep = 0` left no rotated file.
                        // (Only `pruned` lines carry resume fields; the event is not
                        // required, as it may be the edited part.)
                        names_itself: head.resume_seq == Some(head.seq)
                            || head.resume_prev.as_deref() == Some(head.prev.as_str()),
                    });
                }
            }
            Some(p) => {
                let prev_ok = head.prev_hash() == Some(p.hash);
                let seq_ok = head.seq == p.seq + 1;
                if !(prev_ok && seq_ok) {
                    let b = classify(files, index, &line, &head, hash, p, prev_ok)?;
                    found = Some((b, index));
                    break;
                }
            }
        }
        prev = Some(Prev {
            seq: head.seq,
            hash,
            file: line.file,
            no: line.no,
        });
    }
    if let Some(start) = late_start {
        // A start that no `pruned` line explains is reported before a break further on,
        // except a bad line or one past the second (where a tampered `pruned` line itself
        // shows up).
        let start_first = match &found {
            None => true,
            Some((Verdict::Broken(b), at)) => b.kind != BreakKind::BadLine && *at <= 2,
            Some((Verdict::Intact(_), _)) => false,
        };
        if start_first {
            if let Some(b) = explain_start(files, &start)? {
                return Ok(Verdict::Broken(b));
            }
        }
    }
    if let Some((verdict, _)) = found {
        return Ok(verdict);
    }
    Ok(Verdict::Intact(Intact {
        files: files.len(),
        lines: index,
        first_seq,
        last_seq: prev.as_ref().map(|p| p.seq),
        head: match &prev {
            Some(p) => String::from_utf8_lossy(&hex32(&p.hash)).into_owned(),
            None => GENESIS.to_owned(),
        },
    }))
}

/// The first line of a log that does not start at seq 1.
struct Start {
    file: usize,
    no: u64,
    seq: u64,
    prev: String,
    /// The first line is a `pruned` line recording (at least partly) itself as the start.
    names_itself: bool,
}

/// Why the log may start at `start`: `None` when a `pruned` line anywhere in the files records
/// exactly this start (the lines after a break are searched too, so a break further on is not
/// mistaken for a bad start), else the reason it may not.
fn explain_start(files: &[PathBuf], start: &Start) -> Result<Option<Broken>, VerifyError> {
    let mut resumes = Vec::new();
    let mut lines = Lines::new(files);
    while let Some(line) = lines.next()? {
        if let Ok(head) = LineHead::parse(&line.bytes) {
            if let (Some("pruned"), Some(rs), Some(rp)) =
                (head.event.as_deref(), head.resume_seq, head.resume_prev)
            {
                resumes.push((rs, rp));
            }
        }
    }
    if resumes
        .iter()
        .any(|(rs, rp)| *rs == start.seq && *rp == start.prev)
    {
        return Ok(None);
    }
    let name = files.get(start.file).cloned().unwrap_or_default();
    let seq = start.seq;
    let (kind, detail) = if start.names_itself {
        let detail = "the log starts with a `pruned` line that does not record this start \
                      (its resume_seq or resume_prev changed)"
            .to_owned();
        (BreakKind::Edited, detail)
    } else if resumes.iter().any(|(rs, _)| *rs == seq) {
        let detail = format!(
            "seq {seq} starts the log, but its prev differs from the one the `pruned` line \
             recorded"
        );
        (BreakKind::Edited, detail)
    } else {
        // Where the log should start: the latest recorded start before this one, or seq 1.
        let expected = resumes
            .iter()
            .map(|(rs, _)| *rs)
            .filter(|rs| *rs < seq)
            .max()
            .unwrap_or(1);
        match find_seq(files, 1, expected)? {
            Some((f, n)) => {
                let at = files.get(f).cloned().unwrap_or_default();
                let detail = format!(
                    "seq {seq} comes first, but seq {expected} is at {}:{n}",
                    at.display()
                );
                (BreakKind::Reordered, detail)
            }
            None => {
                let detail = format!(
                    "the log starts at seq {seq} and no `pruned` line accounts for seq \
                     {expected} to {}: lines or files are missing (pass every file of the \
                     log, oldest first)",
                    seq - 1
                );
                (BreakKind::Missing, detail)
            }
        }
    };
    Ok(Some(Broken {
        file: name,
        line: start.no,
        kind,
        detail,
    }))
}

/// Works out why `line` (the `index`-th line overall) does not chain to `p`.
fn classify(
    files: &[PathBuf],
    index: u64,
    line: &Line,
    head: &LineHead,
    hash: [u8; 32],
    p: &Prev,
    prev_ok: bool,
) -> Result<Verdict, VerifyError> {
    let name = |i: usize| files.get(i).cloned().unwrap_or_default();
    let expected = p.seq + 1;
    let (file, no, kind, detail) = if head.seq == expected {
        // Only `prev` is wrong: the line before changed, or this line's `prev` did. If the
        // next line no longer chains to this one, this line changed.
        let next = line_at(files, index + 1)?;
        let next_chains = match next.as_ref().map(|l| LineHead::parse(&l.bytes)) {
            Some(Ok(n)) => n.prev_hash() == Some(hash),
            Some(Err(_)) => false,
            None => true,
        };
        if next_chains {
            let detail = format!(
                "line changed: its hash no longer matches the prev recorded by the next line \
                 (seq {})",
                head.seq
            );
            (p.file, p.no, BreakKind::Edited, detail)
        } else {
            let detail = format!(
                "line changed: its prev does not match the line before, and the next line does \
                 not chain to it (seq {})",
                head.seq
            );
            (line.file, line.no, BreakKind::Edited, detail)
        }
    } else if prev_ok {
        let detail = format!(
            "line changed: seq is {} but the line before is seq {}",
            head.seq, p.seq
        );
        (line.file, line.no, BreakKind::Edited, detail)
    } else if head.seq < expected {
        let detail = format!(
            "seq {} comes after seq {}: out of order (or repeated)",
            head.seq, p.seq
        );
        (line.file, line.no, BreakKind::Reordered, detail)
    } else if let Some((f, n)) = find_seq(files, index + 1, expected)? {
        let detail = format!(
            "seq {} comes after seq {}, but seq {expected} is at {}:{n}",
            head.seq,
            p.seq,
            name(f).display()
        );
        (line.file, line.no, BreakKind::Reordered, detail)
    } else {
        let gap = head.seq - expected;
        let detail = if gap == 1 {
            format!("1 line (seq {expected}) missing before this line")
        } else {
            format!(
                "{gap} lines (seq {expected} to {}) missing before this line",
                head.seq - 1
            )
        };
        (line.file, line.no, BreakKind::Missing, detail)
    };
    Ok(Verdict::Broken(Broken {
        file: name(file),
        line: no,
        kind,
        detail,
    }))
}

/// The `index`-th line overall (from 1), if there is one.
fn line_at(files: &[PathBuf], index: u64) -> Result<Option<Line>, VerifyError> {
    let mut lines = Lines::new(files);
    let mut i = 0;
    while let Some(line) = lines.next()? {
        i += 1;
        if i == index {
            return Ok(Some(line));
        }
    }
    Ok(None)
}

/// Where the first line with `seq`, at or after the `from`-th line overall, is.
fn find_seq(files: &[PathBuf], from: u64, seq: u64) -> Result<Option<(usize, u64)>, VerifyError> {
    let mut lines = Lines::new(files);
    let mut i = 0;
    while let Some(line) = lines.next()? {
        i += 1;
        if i < from {
            continue;
        }
        if let Ok(head) = LineHead::parse(&line.bytes) {
            if head.seq == seq {
                return Ok(Some((line.file, line.no)));
            }
        }
    }
    Ok(None)
}

/// Checks one log given by its current file (`PATH`, with its rotated `PATH.N` files).
///
/// # Errors
/// As [`verify`]; also when the directory cannot be listed.
pub fn verify_log(active: &Path) -> Result<Verdict, VerifyError> {
    let files = crate::files::log_files(active).map_err(|source| VerifyError::Io {
        path: active.to_path_buf(),
        source,
    })?;
    verify(&files)
}
