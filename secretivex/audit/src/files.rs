//! Which files make up one log, in order, and reading their first and last lines.
//!
//! The current file is `PATH`. Rotation renames it to `PATH.N`, where `N` is one more than the
//! highest number already present, so a larger `N` is always newer and no file is ever renamed
//! twice: `PATH.1`, `PATH.2`, …, then `PATH`. Numbers are compared as numbers, not as text.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Longest line the writer reads back (its own lines are far shorter); a longer one means the
/// file is not an audit log.
pub(crate) const MAX_LINE: usize = 1 << 20;

/// The lock file that keeps two writers off one log: `PATH.lock`.
pub(crate) fn lock_path(active: &Path) -> PathBuf {
    with_suffix(active, ".lock")
}

/// The name rotation gives the current file: `PATH.N`.
pub(crate) fn rotated_path(active: &Path, n: u64) -> PathBuf {
    with_suffix(active, &format!(".{n}"))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = OsString::from(path.as_os_str());
    s.push(suffix);
    PathBuf::from(s)
}

/// The rotated files of the log whose current file is `active`, oldest first, with their
/// numbers.
pub(crate) fn rotated_files(active: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let Some(name) = active.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let dir = match active.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(candidate) = file_name.to_str() else {
            continue;
        };
        if let Some(n) = rotation_number(name, candidate) {
            found.push((n, dir.join(candidate)));
        }
    }
    found.sort_by_key(|(n, _)| *n);
    Ok(found)
}

/// `N` when `candidate` is `base.N` (N decimal digits).
fn rotation_number(base: &str, candidate: &str) -> Option<u64> {
    let digits = candidate.strip_prefix(base)?.strip_prefix('.')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Every file of the log whose current file is `active`, oldest first: the rotated files, then
/// `active` itself when it exists.
pub fn log_files(active: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = rotated_files(active)?.into_iter().map(|(_, p)| p).collect();
    if active.exists() {
        files.push(active.to_path_buf());
    }
    Ok(files)
}

/// The one log kept in `dir`, oldest file first.
///
/// # Errors
/// When `dir` cannot be read, holds no log, or holds several (their names are listed).
pub fn log_files_in_dir(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        if let (true, Some(name)) = (is_file, entry.file_name().to_str()) {
            names.push(name.to_owned());
        }
    }
    let exists = |n: &str| names.iter().any(|m| m == n);
    let is_rotated = |n: &str| {
        n.rsplit_once('.').is_some_and(|(base, digits)| {
            exists(base) && rotation_number(base, n).is_some() && !digits.is_empty()
        })
    };
    let mut bases: Vec<&String> = names
        .iter()
        .filter(|n| !n.ends_with(".lock") && !is_rotated(n))
        .collect();
    bases.sort();
    match bases.as_slice() {
        [] => Err(format!("{}: no audit log in this directory", dir.display())),
        [base] => log_files(&dir.join(base)).map_err(|e| format!("{}: {e}", dir.display())),
        many => Err(format!(
            "{}: several logs ({}); name the files to verify",
            dir.display(),
            many.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The end of a file: its last complete line and where the complete lines end.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Tail {
    /// The last line ending in `\n` (without it), if any.
    pub(crate) last_line: Option<Vec<u8>>,
    /// Length of the file up to and including that newline; bytes past it are a torn write.
    pub(crate) complete_len: u64,
}

/// Reads the last complete line of `file` (of length `len`) by scanning backwards.
pub(crate) fn read_tail(file: &mut File, len: u64) -> io::Result<Tail> {
    const CHUNK: u64 = 8192;
    // Newline positions found so far, scanning from the end: the last one ends the complete
    // lines; the one before it starts the last line.
    let mut last_nl: Option<u64> = None;
    let mut end = len;
    let mut buf = vec![0u8; CHUNK as usize];
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let n = (end - start) as usize;
        let chunk = buf.get_mut(..n).ok_or_else(|| io::Error::other("chunk"))?;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        for (i, b) in chunk.iter().enumerate().rev() {
            if *b != b'\n' {
                continue;
            }
            let pos = start + i as u64;
            match last_nl {
                None => last_nl = Some(pos),
                Some(l) => {
                    let line = read_range(file, pos + 1, l)?;
                    return Ok(Tail {
                        last_line: Some(line),
                        complete_len: l + 1,
                    });
                }
            }
        }
        if let Some(l) = last_nl {
            if l - start > MAX_LINE as u64 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "last line longer than 1 MiB: not an audit log",
                ));
            }
        }
        end = start;
    }
    match last_nl {
        None => Ok(Tail {
            last_line: None,
            complete_len: 0,
        }),
        Some(l) => Ok(Tail {
            last_line: Some(read_range(file, 0, l)?),
            complete_len: l + 1,
        }),
    }
}

fn read_range(file: &mut File, from: u64, to: u64) -> io::Result<Vec<u8>> {
    let len = usize::try_from(to - from).map_err(io::Error::other)?;
    if len > MAX_LINE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "line longer than 1 MiB: not an audit log",
        ));
    }
    let mut line = vec![0u8; len];
    file.seek(SeekFrom::Start(from))?;
    file.read_exact(&mut line)?;
    Ok(line)
}

/// The first line of `path` (without its newline), or `None` for an empty file.
pub(crate) fn read_first_line(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let file = File::open(path)?;
    let mut reader = BufReader::new(file).take(MAX_LINE as u64 + 1);
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    if line.last() == Some(&b'\n') {
        line.pop();
        return Ok(Some(line));
    }
    if line.is_empty() {
        return Ok(None);
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "first line incomplete or longer than 1 MiB",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tail_of(bytes: &[u8]) -> Tail {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, bytes).unwrap();
        let mut f = File::open(&path).unwrap();
        read_tail(&mut f, bytes.len() as u64).unwrap()
    }

    #[test]
    fn tail_finds_the_last_complete_line() {
        assert_eq!(
            tail_of(b""),
            Tail {
                last_line: None,
                complete_len: 0
            }
        );
        assert_eq!(
            tail_of(b"abc"),
            Tail {
                last_line: None,
                complete_len: 0
            }
        );
        assert_eq!(tail_of(b"one\n").last_line.as_deref(), Some(&b"one"[..]));
        let t = tail_of(b"one\ntwo\nthr");
        assert_eq!(t.last_line.as_deref(), Some(&b"two"[..]));
        assert_eq!(t.complete_len, 8);
    }

    #[test]
    fn tail_crosses_chunk_boundaries() {
        let long = vec![b'x'; 20_000];
        let mut bytes = b"first\n".to_vec();
        bytes.extend_from_slice(&long);
        bytes.push(b'\n');
        bytes.extend_from_slice(b"torn");
        let t = tail_of(&bytes);
        assert_eq!(t.last_line, Some(long));
        assert_eq!(t.complete_len, bytes.len() as u64 - 4);
    }

    #[test]
    fn rotated_files_sort_numerically_and_ignore_strangers() {
        let dir = tempfile::tempdir().unwrap();
        let active = dir.path().join("audit.jsonl");
        for name in [
            "audit.jsonl",
            "audit.jsonl.10",
            "audit.jsonl.9",
            "audit.jsonl.1",
            "audit.jsonl.lock",
            "audit.jsonl.x1",
            "audit.jsonl.",
            "other.jsonl.3",
        ] {
            File::create(dir.path().join(name)).unwrap();
        }
        let names: Vec<String> = log_files(&active)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            names,
            [
                "audit.jsonl.1",
                "audit.jsonl.9",
                "audit.jsonl.10",
                "audit.jsonl"
            ]
        );
    }

    #[test]
    fn a_directory_resolves_to_its_single_log() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a.jsonl", "a.jsonl.2", "a.jsonl.1", "a.jsonl.lock"] {
            File::create(dir.path().join(name)).unwrap();
        }
        let files = log_files_in_dir(dir.path()).unwrap();
        assert_eq!(files.len(), 3);
        assert!(files[2].ends_with("a.jsonl"));
        File::create(dir.path().join("b.jsonl")).unwrap();
        let err = log_files_in_dir(dir.path()).unwrap_err();
        assert!(err.contains("a.jsonl, b.jsonl"), "{err}");
        let empty = tempfile::tempdir().unwrap();
        assert!(log_files_in_dir(empty.path()).is_err());
    }

    #[test]
    fn first_line_reads_up_to_the_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut f = File::create(&path).unwrap();
        f.write_all(b"hello\nworld\n").unwrap();
        assert_eq!(read_first_line(&path).unwrap(), Some(b"hello".to_vec()));
        std::fs::write(&path, b"").unwrap();
        assert_eq!(read_first_line(&path).unwrap(), None);
        std::fs::write(&path, b"partial").unwrap();
        assert!(read_first_line(&path).is_err());
    }
}
