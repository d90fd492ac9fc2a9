//! Reading the files offline commands verify: a path or `-` for standard input, capped,
//! so an endless or oversized input is refused instead of exhausting memory.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// Reads `file` (`-`: standard input), at most `max` bytes; a longer input is refused
/// as "larger than any `what`".
pub fn read_capped(file: &Path, max: usize, what: &str) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    if file == Path::new("-") {
        std::io::stdin()
            .take(limit)
            .read_to_end(&mut buf)
            .context("reading standard input")?;
    } else {
        std::fs::File::open(file)
            .and_then(|f| f.take(limit).read_to_end(&mut buf))
            .with_context(|| format!("reading {}", file.display()))?;
    }
    if buf.len() > max {
        bail!("{}: larger than any {what}", file.display());
    }
    Ok(buf)
}

/// [`read_capped`], as UTF-8 text.
pub fn read_capped_text(file: &Path, max: usize, what: &str) -> Result<String> {
    let buf = read_capped(file, max, what)?;
    String::from_utf8(buf).with_context(|| format!("{} is not UTF-8 text", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_over_the_cap_are_refused_and_text_must_be_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("in");
        std::fs::write(&f, b"12345").unwrap();
        assert_eq!(read_capped(&f, 5, "thing").unwrap(), b"12345");
        let e = read_capped(&f, 4, "thing").unwrap_err().to_string();
        assert!(e.contains("larger than any thing"), "{e}");
        std::fs::write(&f, [0xff, 0xfe]).unwrap();
        assert!(read_capped_text(&f, 10, "thing").is_err());
        assert!(read_capped(&dir.path().join("missing"), 10, "thing").is_err());
    }
}
