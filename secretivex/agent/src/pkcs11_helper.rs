//! The agent's end of one `secretivex-pkcs11-helper` process: spawn it, send requests
//! tagged with ids, match replies to waiting callers, and notice when it dies.
//!
//! Several requests are in flight at once (the helper signs on a pool of threads). A
//! writer task owns the helper's stdin, a reader task its stdout; when the helper exits
//! or breaks the protocol, every waiting caller gets [`HelperError::Gone`] at once and
//! [`HelperClient::closed`] resolves, which is what the supervisor in
//! [`crate::pkcs11_store`] waits on to restart it.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use secretivex_pkcs11::wire::{body_len, HelperReply, HelperRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot, Notify};
use zeroize::Zeroizing;

/// Set for the helper to the agent's pid: a helper whose parent is already another
/// process (the agent died before the helper set its parent-death signal) exits.
pub const PARENT_ENV: &str = "SECRETIVEX_PKCS11_PARENT";

/// Variables a module may need, by exact name.
const KEEP: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "TZ",
    "TMPDIR",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
    "SOFTHSM2_CONF",
    "OPENSC_CONF",
    "PCSCLITE_CSOCK_NAME",
];
/// Variables a module may need, by prefix (locale, p11-kit, vendor modules).
const KEEP_PREFIX: &[&str] = &["LC_", "P11_KIT_", "YKCS11_", "TPM2_PKCS11_", "SOFTHSM2_"];

/// The helper's environment: the agent's variables that modules need, nothing else
/// (`SSH_AUTH_SOCK`, `NOTIFY_SOCKET`, `LISTEN_*`, `SECRETIVEX_*` and the rest dropped).
pub fn helper_env(
    vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    vars.filter(|(k, _)| {
        k.to_str()
            .is_some_and(|k| KEEP.contains(&k) || KEEP_PREFIX.iter().any(|p| k.starts_with(p)))
    })
    .collect()
}

/// Why a request got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelperError {
    /// The helper exited (or was killed) before answering.
    #[error("the PKCS#11 helper process is gone")]
    Gone,
    /// No reply within the time allowed.
    #[error("the PKCS#11 helper did not answer within {0:?}")]
    Timeout(Duration),
}

type Waiters = Mutex<HashMap<u32, oneshot::Sender<HelperReply>>>;

/// A running helper.
pub struct HelperClient {
    tx: mpsc::UnboundedSender<Zeroizing<Vec<u8>>>,
    waiters: Arc<Waiters>,
    next_id: AtomicU32,
    pid: Option<u32>,
    child: Arc<Mutex<Option<Child>>>,
    dead: Arc<AtomicBool>,
    closed: Arc<Notify>,
}

impl HelperClient {
    /// Starts `program MODULE SESSIONS` with piped stdin/stdout (stderr is the agent's).
    pub fn spawn(program: &Path, module: &Path, sessions: usize) -> std::io::Result<Arc<Self>> {
        let mut child = Command::new(program)
            .arg(module)
            .arg(sessions.to_string())
            // Only what modules need: no agent socket, no systemd or SecretiveX variables.
            .env_clear()
            .envs(helper_env(std::env::vars_os()))
            .env(PARENT_ENV, std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(std::io::Error::other("helper pipes missing"));
        };
        let pid = child.id();
        let (tx, mut rx) = mpsc::unbounded_channel::<Zeroizing<Vec<u8>>>();
        let waiters: Arc<Waiters> = Arc::default();
        let dead = Arc::new(AtomicBool::new(false));
        let closed = Arc::new(Notify::new());
        tokio::spawn(async move {
            while let Some(frame) = rx.recv().await {
                if stdin.write_all(&frame).await.is_err() {
                    break;
                }
            }
        });
        let child = Arc::new(Mutex::new(Some(child)));
        let (w, d, c, ch) = (waiters.clone(), dead.clone(), closed.clone(), child.clone());
        tokio::spawn(async move {
            let mut header = [0u8; 4];
            loop {
                if stdout.read_exact(&mut header).await.is_err() {
                    break;
                }
                let Ok(len) = body_len(header) else { break };
                let mut body = vec![0u8; len];
                if stdout.read_exact(&mut body).await.is_err() {
                    break;
                }
                let Ok((id, reply)) = HelperReply::decode(&body) else {
                    tracing::warn!("PKCS#11 helper sent a malformed reply; dropping it");
                    break;
                };
                if let Some(waiter) = w.lock().remove(&id) {
                    let _ = waiter.send(reply);
                }
            }
            d.store(true, Ordering::Release);
            // Dropping the senders wakes every waiter with `Gone`.
            w.lock().clear();
            c.notify_waiters();
            c.notify_one();
            // A helper that died (or broke the protocol) by itself is reaped here, not
            // left a zombie until the supervisor replaces it.
            let gone = ch.lock().take();
            if let Some(mut gone) = gone {
                let _ = gone.start_kill();
                let _ = gone.wait().await;
            }
        });
        Ok(Arc::new(HelperClient {
            tx,
            waiters,
            next_id: AtomicU32::new(1),
            pid,
            child,
            dead,
            closed,
        }))
    }

    /// The helper's process id.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// True once the helper has exited or broken the protocol.
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// Resolves when the helper is gone.
    pub async fn closed(&self) {
        let notified = self.closed.notified();
        if self.is_dead() {
            return;
        }
        notified.await;
    }

    /// Sends `request` and waits up to `limit` for its reply.
    pub async fn request(
        &self,
        request: &HelperRequest,
        limit: Duration,
    ) -> Result<HelperReply, HelperError> {
        if self.is_dead() {
            return Err(HelperError::Gone);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().insert(id, tx);
        // Re-check after registering: the reader may have cleared the table meanwhile.
        if self.is_dead() {
            self.waiters.lock().remove(&id);
            return Err(HelperError::Gone);
        }
        let mut frame = Zeroizing::new(Vec::new());
        request.encode(id, &mut frame);
        if self.tx.send(frame).is_err() {
            self.waiters.lock().remove(&id);
            return Err(HelperError::Gone);
        }
        match tokio::time::timeout(limit, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(HelperError::Gone),
            Err(_) => {
                self.waiters.lock().remove(&id);
                Err(HelperError::Timeout(limit))
            }
        }
    }

    /// Kills the helper (a hung module, a removed provider).
    pub fn kill(&self) {
        if let Some(mut child) = self.child.lock().take() {
            let _ = child.start_kill();
            // Reap it off the caller's path; without a runtime (agent shutdown) tokio's
            // orphan reaper takes it.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = child.wait().await;
                });
            }
        }
    }
}

impl Drop for HelperClient {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The identity of a module file as checked when it was added: a helper (which
/// `dlopen`s the module by path) is only started while the path still names this file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModuleFile {
    dev: u64,
    ino: u64,
}

impl ModuleFile {
    /// Opens `path` (a canonical path) without following a final symlink and checks it:
    /// a regular file, not writable by group or others, owned by root or by the agent's
    /// user. Blocking: call off the async workers.
    pub fn check(path: &Path) -> Result<ModuleFile, String> {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| format!("open: {e}"))?;
        let meta = file.metadata().map_err(|e| format!("stat: {e}"))?;
        if !meta.file_type().is_file() {
            return Err("not a regular file".into());
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!(
                "writable by group or others (mode {:o})",
                meta.mode() & 0o7777
            ));
        }
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != 0 && meta.uid() != me {
            return Err(format!(
                "owned by uid {}, neither root nor the agent's user",
                meta.uid()
            ));
        }
        Ok(ModuleFile {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// A file identity for unit tests that start no helper.
    #[cfg(test)]
    pub(crate) fn for_tests() -> ModuleFile {
        ModuleFile { dev: 0, ino: 0 }
    }

    /// Checks `path` again and that it is still the same file (device and inode).
    pub fn recheck(&self, path: &Path) -> Result<(), String> {
        let now = ModuleFile::check(path)?;
        if now != *self {
            return Err("the module file was replaced since it was added".into());
        }
        Ok(())
    }
}
