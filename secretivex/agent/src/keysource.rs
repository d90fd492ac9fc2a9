//! Key files named by the configuration (`[[keys]]`, `--key`): resolved, read and, when
//! encrypted, unlocked through askpass now or listed for their first use.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use secretivex_config::{ConfigError, Loaded, Unlock};
use secretivex_keys::{KeyPair, OpensshKeyFile};
use secretivex_proto::PrivateKeyWire;
use zeroize::Zeroizing;

use crate::keystore::NewIdentity;
use crate::pending::PendingKey;
use crate::{askpass, confirm, keyops};

/// A key file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct KeyFileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

fn fail(path: &Path, message: impl std::fmt::Display) -> KeyFileError {
    KeyFileError {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// What the configuration's keys come to: the agent's config-sourced key set.
#[derive(Default)]
pub struct KeyPlan {
    /// Configuration keys already loaded and still configured (left untouched).
    pub keep: Vec<Vec<u8>>,
    /// Keys read now.
    pub load: Vec<NewIdentity>,
    /// Encrypted keys listed until their first use.
    pub pending: Vec<Arc<PendingKey>>,
    /// Files and directories whose changes should trigger a reload.
    pub watched: Vec<PathBuf>,
}

/// One key source: from `[[keys]]` (index given) or `--key`.
struct Source<'a> {
    field: String,
    paths: Vec<PathBuf>,
    unlock: Unlock,
    confirm: bool,
    lifetime: Option<Duration>,
    glob_dir: Option<&'a Path>,
}

/// Reads every configured key. Keys in `loaded_now` (config keys the agent holds) are
/// kept without reading them again, so a reload never asks for a passphrase twice.
/// With `decrypt` false (`--check-config`), encrypted keys are only parsed, never
/// unlocked. Blocking (file reads, askpass): call from a blocking thread.
///
/// # Errors
/// The first key source that cannot be used, located at its `[[keys]]` entry.
pub fn plan(
    config: &Loaded,
    extra: &[PathBuf],
    home: Option<&Path>,
    loaded_now: &[Vec<u8>],
    askpass_program: Option<&Path>,
    decrypt: bool,
) -> Result<KeyPlan, ConfigError> {
    let default_lifetime = config.default_lifetime();
    let mut sources = Vec::new();
    let mut plan = KeyPlan::default();
    let globs: Vec<PathBuf> = config
        .config
        .keys
        .iter()
        .map(|k| secretivex_config::expand_tilde(Path::new(k.path.as_str()), home))
        .collect();
    for (i, (spec, expanded)) in config.config.keys.iter().zip(&globs).enumerate() {
        let field = format!("keys[{i}].path");
        let paths = spec
            .resolve(home)
            .map_err(|e| config.error_at(&field, format!("{}: {e}", spec.path.as_str())))?;
        if paths.is_empty() {
            tracing::warn!(pattern = spec.path.as_str(), "key glob matches no file");
        }
        sources.push(Source {
            field,
            paths,
            unlock: spec.unlock,
            confirm: spec.confirm,
            lifetime: spec.lifetime.map(|d| d.get()).or(default_lifetime),
            glob_dir: spec.path.is_glob().then(|| expanded.parent()).flatten(),
        });
    }
    for path in extra {
        sources.push(Source {
            field: "--key".into(),
            paths: vec![path.clone()],
            unlock: Unlock::Start,
            confirm: false,
            lifetime: default_lifetime,
            glob_dir: None,
        });
    }
    if let Some(file) = &config.file {
        plan.watched.push(file.clone());
    }
    for source in sources {
        if let Some(dir) = source.glob_dir {
            plan.watched.push(dir.to_path_buf());
        }
        for path in &source.paths {
            plan.watched.push(path.clone());
            let located = |e: KeyFileError| match source.field.as_str() {
                "--key" => ConfigError::Other {
                    field: "--key".into(),
                    message: e.to_string(),
                },
                field => config.error_at(field, e),
            };
            let text = read_text(path).map_err(located)?;
            let file = OpensshKeyFile::parse(&text)
                .map_err(|e| located(fail(path, format!("not an OpenSSH private key: {e}"))))?;
            let blob = file.public_blob().to_vec();
            if loaded_now.contains(&blob) {
                plan.keep.push(blob);
                // The certificate loaded with it stays too.
                if let Some(cert) = certificate_blob(path).filter(|c| loaded_now.contains(c)) {
                    plan.keep.push(cert);
                }
                continue;
            }
            if file.is_encrypted() && (source.unlock == Unlock::FirstUse || !decrypt) {
                let pending = PendingKey::new(blob, path.clone(), source.confirm, source.lifetime)
                    .map_err(|e| located(fail(path, format!("unusable public key: {e}"))))?;
                plan.pending.push(Arc::new(pending));
                continue;
            }
            let keys = unlock(path, &file, askpass_program).map_err(located)?;
            for k in keys {
                plan.load.push(k.into_new(source.confirm, source.lifetime));
            }
        }
    }
    Ok(plan)
}

fn read_text(path: &Path) -> Result<Zeroizing<String>, KeyFileError> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|e| fail(path, format!("cannot read: {e}")))
}

/// A key read from a file: the parsed pair, its sealable wire form, its comment.
pub struct LoadedKey {
    key: KeyPair,
    private: Zeroizing<Vec<u8>>,
    comment: String,
}

impl LoadedKey {
    /// The public blob (key or certificate).
    pub fn blob(&self) -> &[u8] {
        self.key.public_blob()
    }

    /// As an identity to add.
    pub fn into_new(self, confirm: bool, lifetime: Option<Duration>) -> NewIdentity {
        let blob = self.key.public_blob().to_vec();
        let fingerprint = self.key.fingerprint().to_string();
        NewIdentity {
            key: Arc::new(self.key),
            private: self.private,
            blob,
            comment: self.comment,
            fingerprint,
            lifetime,
            confirm,
            destinations: Vec::new(),
        }
    }
}

/// Reads a key file (asking askpass for its passphrase when encrypted), plus the
/// certificate next to it (`FILE-cert.pub`) when there is one. Blocking.
///
/// # Errors
/// When the file cannot be read, parsed or decrypted.
pub fn read_key_file(
    path: &Path,
    askpass_program: Option<&Path>,
) -> Result<Vec<LoadedKey>, KeyFileError> {
    let text = read_text(path)?;
    let file = OpensshKeyFile::parse(&text)
        .map_err(|e| fail(path, format!("not an OpenSSH private key: {e}")))?;
    unlock(path, &file, askpass_program)
}

fn unlock(
    path: &Path,
    file: &OpensshKeyFile,
    askpass_program: Option<&Path>,
) -> Result<Vec<LoadedKey>, KeyFileError> {
    let decrypted = if file.is_encrypted() {
        let program = confirm::askpass_program(askpass_program);
        let prompt = format!("Enter passphrase for {}: ", path.display());
        let passphrase = askpass::read_passphrase(&program, &prompt)
            .map_err(|e| fail(path, format!("cannot read the passphrase: {e}")))?;
        file.decrypt(Some(passphrase.as_slice()))
            .map_err(|e| fail(path, format!("cannot decrypt: {e}")))?
    } else {
        file.decrypt(None).map_err(|e| fail(path, e))?
    };
    let wire = decrypted.key;
    let comment = if decrypted.comment.is_empty() {
        path.display().to_string()
    } else {
        decrypted.comment
    };
    let key = KeyPair::from_wire(&wire).map_err(|e| fail(path, e))?;
    let mut out = vec![LoadedKey {
        key,
        private: keyops::sealable_body(&wire),
        comment: comment.clone(),
    }];
    out.extend(load_certificate_for(path, &wire, &comment));
    Ok(out)
}

/// `FILE-cert.pub`: the path next to a key file where its certificate may be.
fn certificate_path(path: &Path) -> PathBuf {
    let mut cert_path = path.as_os_str().to_os_string();
    cert_path.push("-cert.pub");
    PathBuf::from(cert_path)
}

/// The public blob written in `FILE-cert.pub`, if that file exists.
fn certificate_blob(path: &Path) -> Option<Vec<u8>> {
    let text = std::fs::read_to_string(certificate_path(path)).ok()?;
    public_key_line_blob(&text)
}

/// The key presenting `FILE-cert.pub`, when that file exists and certifies the key.
/// A certificate that cannot be used is reported and skipped, as ssh-add does.
fn load_certificate_for(path: &Path, plain: &PrivateKeyWire, comment: &str) -> Option<LoadedKey> {
    let cert_path = certificate_path(path);
    let text = std::fs::read_to_string(&cert_path).ok()?;
    let result = public_key_line_blob(&text)
        .and_then(|blob| keyops::certificate_wire(plain, blob))
        .ok_or_else(|| "not an OpenSSH certificate line".to_string())
        .and_then(|wire| {
            KeyPair::from_wire(&wire)
                .map(|key| (key, keyops::sealable_body(&wire)))
                .map_err(|e| e.to_string())
        });
    match result {
        Ok((key, private)) => Some(LoadedKey {
            key,
            private,
            comment: comment.to_string(),
        }),
        Err(e) => {
            tracing::warn!(path = %cert_path.display(), error = %e, "certificate not loaded");
            None
        }
    }
}

/// Decodes the blob of a `type base64 [comment]` public key line.
fn public_key_line_blob(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let b64 = text.split_whitespace().nth(1)?;
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}
