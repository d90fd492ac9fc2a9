//! Segment files: naming, listing, creation. A segment is named after its first entry
//! index (`00000000000000000042.seg`), so the directory listing orders the log.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::frame::encode_segment_header;

/// File-name suffix of segments.
const SUFFIX: &str = ".seg";

/// The file name of the segment starting at entry `first_index`.
pub fn file_name(first_index: u64) -> String {
    format!("{first_index:020}{SUFFIX}")
}

/// The first entry index encoded in a segment file name, if `name` is one.
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segments in `dir`, ordered by first index. Other files are ignored.
pub fn list(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if let Some(first) = name.to_str().and_then(parse_file_name) {
            out.push((first, entry.path()));
        }
    }
    out.sort_by_key(|(first, _)| *first);
    Ok(out)
}

/// Creates the segment starting at `first_index`, writes and syncs its header, and syncs
/// the directory so the new file survives a power loss. Returns it opened for appending.
pub fn create(dir: &Path, first_index: u64) -> io::Result<(File, PathBuf)> {
    let path = dir.join(file_name(first_index));
    let mut file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .read(true)
        .open(&path)?;
    file.write_all(&encode_segment_header(first_index))?;
    file.sync_all()?;
    sync_dir(dir)?;
    Ok((file, path))
}

/// Opens an existing segment for appending.
pub fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().append(true).read(true).open(path)
}

/// fsyncs a directory, making file creations and removals in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order() {
        assert_eq!(file_name(42), "00000000000000000042.seg");
        assert_eq!(parse_file_name(&file_name(u64::MAX)), Some(u64::MAX));
        for bad in [
            "42.seg",
            "0000000000000000004x.seg",
            "00000000000000000042.log",
            "99999999999999999999.seg",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
        assert!(file_name(9) < file_name(10));
    }
}
