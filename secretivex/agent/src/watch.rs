//! `watch = true`: reload when the configuration file or a key file changes.
//!
//! The parent directories are watched rather than the files, because editors and
//! deployment tools replace a file by renaming a new one over it (a watch on the old
//! inode would go quiet). Events are debounced: a burst of writes makes one reload,
//! started once the files have been quiet for [`DEBOUNCE`].

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};

/// Quiet time after the last change before reloading.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// What to watch: exact files, and directories in which any file counts (globs).
#[derive(Debug, Default, PartialEq, Eq)]
struct WatchSet {
    files: BTreeSet<PathBuf>,
    dirs: BTreeSet<PathBuf>,
    any_in: BTreeSet<PathBuf>,
}

impl WatchSet {
    /// `paths` are files (config, key files) or, for globs, directories.
    fn of(paths: &[PathBuf]) -> WatchSet {
        let mut set = WatchSet::default();
        for p in paths {
            if p.is_dir() {
                set.any_in.insert(p.clone());
                set.dirs.insert(p.clone());
            } else {
                set.files.insert(p.clone());
                let mut cert = p.as_os_str().to_os_string();
                cert.push("-cert.pub");
                set.files.insert(PathBuf::from(cert));
                if let Some(dir) = p.parent() {
                    set.dirs.insert(dir.to_path_buf());
                }
            }
        }
        set
    }

    fn interesting(&self, path: &Path) -> bool {
        self.files.contains(path) || path.parent().is_some_and(|d| self.any_in.contains(d))
    }
}

/// Watches the files named by `paths` (updated after each reload) and sends on `trigger`
/// once per debounced burst of changes. Returns when `trigger`'s receiver is gone.
///
/// # Errors
/// When no watcher can be created (inotify unavailable or out of instances).
pub async fn watch_files(
    mut paths: watch::Receiver<Vec<PathBuf>>,
    trigger: mpsc::Sender<()>,
) -> notify::Result<()> {
    let (tx, mut events) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher: RecommendedWatcher =
        notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(event) = res {
                if event.kind.is_access() {
                    return;
                }
                for path in event.paths {
                    let _ = tx.send(path);
                }
            }
        })?;
    let mut set = WatchSet::default();
    loop {
        let wanted = WatchSet::of(&paths.borrow_and_update());
        if wanted != set {
            for dir in set.dirs.difference(&wanted.dirs) {
                let _ = watcher.unwatch(dir);
            }
            for dir in wanted.dirs.difference(&set.dirs) {
                if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory");
                }
            }
            set = wanted;
        }
        tokio::select! {
            changed = paths.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
            }
            Some(path) = events.recv() => {
                if !set.interesting(&path) {
                    continue;
                }
                // Debounce: wait until nothing relevant happened for DEBOUNCE. Other files
                // in the same directories (known_hosts, sockets, logs) never extend it.
                let mut quiet_from = tokio::time::Instant::now();
                loop {
                    match tokio::time::timeout_at(quiet_from + DEBOUNCE, events.recv()).await {
                        Ok(Some(other)) if set.interesting(&other) => {
                            quiet_from = tokio::time::Instant::now();
                        }
                        Ok(Some(_)) => {}
                        Ok(None) | Err(_) => break,
                    }
                }
                tracing::info!(path = %path.display(), "watched file changed; reloading");
                if trigger.send(()).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_glob_directories() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("agent.toml");
        let globbed = dir.path().join("keys");
        std::fs::create_dir(&globbed).unwrap();
        let set = WatchSet::of(&[conf.clone(), globbed.clone()]);
        assert!(set.interesting(&conf));
        assert!(set.interesting(&globbed.join("new_ed25519")));
        assert!(!set.interesting(&dir.path().join("audit.jsonl")));
        assert!(set.dirs.contains(dir.path()) && set.dirs.contains(&globbed));
    }
}
