//! Helpers shared by the ledger's integration tests.

use std::fs;
use std::path::{Path, PathBuf};

/// The segment files in `dir`, in order.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    out.sort();
    out
}
