//! Hot reload: SIGHUP and a debounced watch of the config file's directory.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::ConfigError;
use crate::engine::{Engine, ReloadOutcome};
use crate::DaemonError;

/// Reloads and logs the outcome; a refused file is logged with file, line and field.
pub(crate) fn reload_logged(engine: &Engine, why: &str) -> Result<ReloadOutcome, ConfigError> {
    let result = engine.reload_from_file();
    match &result {
        Ok(o) if o.restart_required.is_empty() => {
            tracing::info!(
                generation = o.generation,
                trigger = why,
                "configuration reloaded"
            );
        }
        Ok(o) => tracing::warn!(
            generation = o.generation,
            trigger = why,
            "configuration reloaded; changes to {} need a restart and were not applied",
            o.restart_required.join(", ")
        ),
        Err(e) => tracing::warn!(
            trigger = why,
            "configuration reload refused, keeping the running configuration: {e}"
        ),
    }
    result
}

/// Resolves once `stop` is set or its sender is gone (without holding its lock guard
/// across an await, which would make the task non-`Send`).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

/// Reloads on every SIGHUP until `stop`.
pub(crate) fn on_sighup(
    engine: Arc<Engine>,
    mut stop: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, DaemonError> {
    let mut hup = signal(SignalKind::hangup()).map_err(|e| DaemonError::Reload(e.to_string()))?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                got = hup.recv() => {
                    if got.is_none() {
                        return;
                    }
                    let _ = reload_logged(&engine, "SIGHUP");
                }
                () = stopped(&mut stop) => return,
            }
        }
    }))
}

/// Reloads after `file` changes and then stays quiet for `debounce`.
///
/// The directory is watched rather than the file, because editors and config managers
/// replace files by renaming a new one over them, which ends a watch on the old inode.
pub(crate) fn watch_file(
    engine: Arc<Engine>,
    file: &Path,
    debounce: Duration,
    mut stop: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, DaemonError> {
    let file = std::path::absolute(file).map_err(|e| DaemonError::Reload(e.to_string()))?;
    let dir = file
        .parent()
        .map(Path::to_owned)
        .ok_or_else(|| DaemonError::Reload("config file has no directory".into()))?;
    let name = file.file_name().map(|n| n.to_owned());
    // Bounded: a burst of events only needs one pending wake-up.
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        let Ok(ev) = ev else { return };
        let relevant = matches!(
            ev.kind,
            EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
        ) && ev.paths.iter().any(|p| p.file_name() == name.as_deref());
        if relevant {
            let _ = tx.try_send(());
        }
    })
    .map_err(|e| DaemonError::Reload(e.to_string()))?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(|e| DaemonError::Reload(format!("{}: {e}", dir.display())))?;
    Ok(tokio::spawn(async move {
        // Owned by the task: the watch lasts as long as the task.
        let _watcher = watcher;
        loop {
            tokio::select! {
                got = rx.recv() => {
                    if got.is_none() {
                        return;
                    }
                    // Wait until the writes stop for `debounce`.
                    while let Ok(Some(())) = tokio::time::timeout(debounce, rx.recv()).await {}
                    let _ = reload_logged(&engine, "file change");
                }
                () = stopped(&mut stop) => return,
            }
        }
    }))
}
