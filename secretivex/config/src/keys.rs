//! Key sources: `[[keys]]` paths and globs resolved to files.

use std::path::{Path, PathBuf};

use crate::load::expand_tilde;
use crate::schema::KeySpec;

impl KeySpec {
    /// The key files this entry names, `~` expanded, sorted. A plain path is returned as
    /// is (reading it reports a missing file); a glob returns its matching regular files,
    /// skipping `*.pub` and `*-cert.pub` companions.
    ///
    /// # Errors
    /// When the glob cannot be evaluated (a directory it walks cannot be read).
    pub fn resolve(&self, home: Option<&Path>) -> Result<Vec<PathBuf>, String> {
        let expanded = expand_tilde(Path::new(self.path.as_str()), home);
        if !self.path.is_glob() {
            return Ok(vec![expanded]);
        }
        let pattern = expanded
            .to_str()
            .ok_or_else(|| "the expanded path is not UTF-8".to_string())?;
        let mut out = Vec::new();
        for entry in glob::glob(pattern).map_err(|e| e.to_string())? {
            let path = entry.map_err(|e| e.to_string())?;
            let is_pub = path.extension().is_some_and(|e| e == "pub");
            if path.is_file() && !is_pub {
                out.push(path);
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::schema::{KeyPath, KeySpec, Unlock};

    fn spec(path: &str) -> KeySpec {
        KeySpec {
            path: KeyPath::try_from(path.to_string()).unwrap(),
            unlock: Unlock::Start,
            confirm: false,
            lifetime: None,
        }
    }

    #[test]
    fn globs_match_files_and_skip_public_halves() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a_ed25519", "a_ed25519.pub", "b_ed25519", "c_rsa"] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        std::fs::create_dir(dir.path().join("d_ed25519")).unwrap();
        let home = dir.path();
        let found = spec("~/*_ed25519*").resolve(Some(home)).unwrap();
        let names: Vec<_> = found
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["a_ed25519", "b_ed25519"]);
        let plain = spec("~/c_rsa").resolve(Some(home)).unwrap();
        assert_eq!(plain, vec![home.join("c_rsa")]);
        assert!(spec("~/nothing*").resolve(Some(home)).unwrap().is_empty());
    }
}
