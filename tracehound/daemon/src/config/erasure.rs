//! `[erasure]`: erasure (GDPR) by scent id, source or signature, and the key vault that
//! makes it final for cold storage (crypto-shredding). Restart required to change.
//!
//! ```toml
//! [erasure]
//! vault_dir = "/var/lib/tracehound/vault"   # required: one key file per cold object
//! max_keys = 1000000                        # the vault refuses new keys past this
//! index_capacity = 100000                   # signatures remembered with their sources
//! ```
//!
//! Without the section, `Erase` still removes evidence from the quarantine, cold storage
//! and pending notifications, but cold objects are v1 plaintext envelopes and the link
//! from a source to its evidence lives only in memory (lost at restart).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Smallest index when none is configured.
const MIN_INDEX: usize = 1024;
/// Largest accepted index or vault size (memory stays bounded by it).
const MAX_ENTRIES: usize = 1 << 26;

/// The `[erasure]` table. Present means the key vault is on; `vault_dir` is required.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ErasureSection {
    /// Directory of the key vault (created 0700; refused if group or others can read it).
    pub vault_dir: Option<PathBuf>,
    /// Most keys (cold objects sealed) the vault holds.
    pub max_keys: usize,
    /// Signatures whose sources and scent ids are remembered in memory (absent: twice
    /// `quarantine.max_count`); at least `quarantine.max_count`, so everything the
    /// quarantine holds can be found by source.
    pub index_capacity: Option<usize>,
}

impl Default for ErasureSection {
    fn default() -> Self {
        ErasureSection {
            vault_dir: None,
            max_keys: 1_000_000,
            index_capacity: None,
        }
    }
}

impl ErasureSection {
    /// Range checks against the quarantine size; the dotted field and the reason.
    pub fn validate(&self, quarantine_max_count: usize) -> Result<(), (&'static str, String)> {
        if self
            .vault_dir
            .as_deref()
            .is_none_or(|d| d.as_os_str().is_empty())
        {
            return Err((
                "erasure",
                "`vault_dir` is required: the directory of the key vault".into(),
            ));
        }
        if self.max_keys == 0 || self.max_keys > MAX_ENTRIES {
            return Err((
                "erasure.max_keys",
                format!("must be within 1..={MAX_ENTRIES}"),
            ));
        }
        if let Some(n) = self.index_capacity {
            if n < quarantine_max_count || n > MAX_ENTRIES {
                return Err((
                    "erasure.index_capacity",
                    format!(
                        "must be within quarantine.max_count ({quarantine_max_count})..={MAX_ENTRIES}"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The vault directory (validated to be present).
    pub fn vault_dir(&self) -> &Path {
        self.vault_dir.as_deref().unwrap_or(Path::new("."))
    }
}

/// The erasure index's capacity for `section` (or its absence).
pub fn index_capacity(section: Option<&ErasureSection>, quarantine_max_count: usize) -> usize {
    section.and_then(|s| s.index_capacity).unwrap_or_else(|| {
        quarantine_max_count
            .saturating_mul(2)
            .clamp(MIN_INDEX, MAX_ENTRIES)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigError, DaemonConfig};

    fn parse(text: &str) -> Result<DaemonConfig, ConfigError> {
        DaemonConfig::parse(text, Path::new("t.toml"))
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let err = parse(
            "[quarantine]\nmax_count = 10\n\n[erasure]\nvault_dir = \"/v\"\nindex_capacity = 5\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("t.toml:6: field `erasure.index_capacity`"),
            "{err}"
        );
        let err = parse("[erasure]\nmax_keys = 3\n").unwrap_err().to_string();
        assert!(
            err.contains("field `erasure`") && err.contains("vault_dir"),
            "{err}"
        );
        let err = parse("[erasure]\nvault_dir = \"/v\"\nbogus = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("t.toml:3"), "{err}");
    }

    #[test]
    fn a_valid_section_loads_and_needs_a_restart() {
        let c = parse("[erasure]\nvault_dir = \"/v\"\n").unwrap();
        let s = c.erasure.clone().unwrap();
        assert_eq!((s.vault_dir(), s.max_keys), (Path::new("/v"), 1_000_000));
        assert_eq!(index_capacity(Some(&s), 10_000), 20_000);
        assert_eq!(index_capacity(None, 10), MIN_INDEX);
        let running = DaemonConfig::default();
        assert!(c.restart_only_changes(&running).contains(&"erasure"));
        assert_eq!(c.reloadable_part(&running).erasure, None);
    }
}
