//! The `[audit]` table of the agent's configuration.
//!
//! Every value is checked while it is deserialized, so a TOML parser reports a bad value with
//! the line, column and field it came from.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

/// Default size past which the current file is rotated: 64 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Default number of rotated files kept next to the current one.
pub const DEFAULT_KEEP: u32 = 10;
/// Default capacity of the queue between the agent and the writer thread.
pub const DEFAULT_QUEUE: usize = 65_536;

/// Smallest accepted `max_bytes`: below this, rotation would churn files for a handful of lines.
pub const MIN_MAX_BYTES: u64 = 4096;
/// Largest accepted `keep`: more files than this is a misconfiguration, not a retention policy.
pub const MAX_KEEP: u32 = 100_000;
/// Largest accepted `queue`: each slot costs a pointer even when empty.
pub const MAX_QUEUE: usize = 1 << 24;

/// The `[audit]` table of the agent's configuration.
///
/// ```toml
/// [audit]
/// path = "~/.local/state/secretivex/audit.jsonl"
/// max_bytes = 67108864   # rotate past this size; the chain continues in the next file
/// keep = 10              # rotated files kept (the oldest beyond this are removed)
/// queue = 65536          # bounded queue between the agent and the writer thread
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSpec {
    /// The current log file; rotated files sit next to it (`PATH.1`, `PATH.2`, … oldest
    /// first). A leading `~/` stands for `$HOME`.
    #[serde(deserialize_with = "de_path")]
    pub path: PathBuf,
    /// Rotate the current file before a line would take it past this many bytes.
    #[serde(default = "default_max_bytes", deserialize_with = "de_max_bytes")]
    pub max_bytes: u64,
    /// How many rotated files to keep; older ones are removed (and the removal is audited).
    /// `0` keeps none: only the current file remains.
    #[serde(default = "default_keep", deserialize_with = "de_keep")]
    pub keep: u32,
    /// Capacity of the bounded queue in front of the writer thread; a decision arriving when it
    /// is full is dropped and counted, never waited for.
    #[serde(default = "default_queue", deserialize_with = "de_queue")]
    pub queue: usize,
}

impl AuditSpec {
    /// A spec for `path` with every other field at its default.
    pub fn new(path: impl Into<PathBuf>) -> AuditSpec {
        AuditSpec {
            path: path.into(),
            max_bytes: DEFAULT_MAX_BYTES,
            keep: DEFAULT_KEEP,
            queue: DEFAULT_QUEUE,
        }
    }

    /// The path with a leading `~/` replaced by `home` (when given).
    pub fn resolved_path(&self, home: Option<&Path>) -> PathBuf {
        match (self.path.strip_prefix("~"), home) {
            (Ok(rest), Some(home)) => home.join(rest),
            _ => self.path.clone(),
        }
    }
}

fn default_max_bytes() -> u64 {
    DEFAULT_MAX_BYTES
}

fn default_keep() -> u32 {
    DEFAULT_KEEP
}

fn default_queue() -> usize {
    DEFAULT_QUEUE
}

fn de_path<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    let raw = String::deserialize(d)?;
    if raw.trim().is_empty() {
        return Err(serde::de::Error::custom("must name a file"));
    }
    if raw.ends_with('/') {
        return Err(serde::de::Error::custom(format!(
            "{raw:?} names a directory; name the log file inside it"
        )));
    }
    Ok(PathBuf::from(raw))
}

fn de_max_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = u64::deserialize(d)?;
    if v < MIN_MAX_BYTES {
        return Err(serde::de::Error::custom(format!(
            "{v} is too small: at least {MIN_MAX_BYTES} bytes"
        )));
    }
    Ok(v)
}

fn de_keep<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = u32::deserialize(d)?;
    if v > MAX_KEEP {
        return Err(serde::de::Error::custom(format!(
            "{v} is too many rotated files: at most {MAX_KEEP}"
        )));
    }
    Ok(v)
}

fn de_queue<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let v = usize::deserialize(d)?;
    if v == 0 || v > MAX_QUEUE {
        return Err(serde::de::Error::custom(format!(
            "{v} is out of range: 1 to {MAX_QUEUE}"
        )));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        audit: AuditSpec,
    }

    fn parse(text: &str) -> Result<AuditSpec, String> {
        toml::from_str::<Doc>(text)
            .map(|d| d.audit)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_fill_missing_fields() {
        let spec = parse("[audit]\npath = \"/var/log/a.jsonl\"\n").unwrap();
        assert_eq!(spec, AuditSpec::new("/var/log/a.jsonl"));
    }

    #[test]
    fn all_fields_parse() {
        let spec =
            parse("[audit]\npath = \"a.jsonl\"\nmax_bytes = 5000\nkeep = 0\nqueue = 7\n").unwrap();
        assert_eq!(spec.max_bytes, 5000);
        assert_eq!(spec.keep, 0);
        assert_eq!(spec.queue, 7);
    }

    #[test]
    fn unknown_field_is_refused_with_its_line() {
        let err = parse("[audit]\npath = \"a\"\nmax_byte = 5000\n").unwrap_err();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("max_byte"), "{err}");
    }

    #[test]
    fn bad_values_are_refused_with_their_line() {
        for (text, line, needle) in [
            ("[audit]\npath = \"a\"\n\nmax_bytes = 10\n", 4, "too small"),
            ("[audit]\npath = \"a\"\nqueue = 0\n", 3, "out of range"),
            ("[audit]\npath = \"a\"\nkeep = 100001\n", 3, "too many"),
            ("[audit]\npath = \"\"\n", 2, "must name a file"),
            ("[audit]\npath = \"/var/log/\"\n", 2, "directory"),
            ("[audit]\npath = \"a\"\nkeep = -1\n", 3, ""),
            ("[audit]\npath = \"a\"\nqueue = \"big\"\n", 3, ""),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(&format!("line {line}")), "{text:?}: {err}");
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn missing_path_is_refused() {
        let err = parse("[audit]\nkeep = 3\n").unwrap_err();
        assert!(err.contains("path"), "{err}");
    }

    #[test]
    fn tilde_resolves_against_home() {
        let spec = AuditSpec::new("~/state/a.jsonl");
        assert_eq!(
            spec.resolved_path(Some(Path::new("/home/u"))),
            PathBuf::from("/home/u/state/a.jsonl")
        );
        assert_eq!(spec.resolved_path(None), PathBuf::from("~/state/a.jsonl"));
        let abs = AuditSpec::new("/x/a.jsonl");
        assert_eq!(
            abs.resolved_path(Some(Path::new("/home/u"))),
            PathBuf::from("/x/a.jsonl")
        );
    }

    #[test]
    fn serializes_back_to_the_same_spec() {
        let spec = AuditSpec {
            path: "/a/b.jsonl".into(),
            max_bytes: 9999,
            keep: 2,
            queue: 5,
        };
        let text = toml::to_string(&spec).unwrap();
        let back: AuditSpec = toml::from_str(&text).unwrap();
        assert_eq!(back, spec);
    }
}
