//! The checkpoint signing key: loaded from its file, or generated (0600) on first start.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use tracehound_ledger::CheckpointSigner;

/// Loads the PKCS#8 Ed25519 key at `path`, generating it first if the file is missing.
/// A key readable or writable by group or others is refused: it signs the log's
/// checkpoints, so whoever can read it can forge them.
pub fn load_or_generate(path: &Path, name: &str) -> Result<CheckpointSigner, String> {
    let shown = path.display();
    let pkcs8 = match fs::read(path) {
        Ok(bytes) => {
            let mode = fs::metadata(path)
                .map_err(|e| format!("{shown}: {e}"))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(format!(
                    "{shown}: the checkpoint signing key is accessible to group or others \
                     (mode {:o}); chmod 600 it",
                    mode & 0o777
                ));
            }
            bytes
        }
        Err(e) if e.kind() == ErrorKind::NotFound => generate(path)?,
        Err(e) => return Err(format!("{shown}: cannot read the signing key: {e}")),
    };
    CheckpointSigner::from_pkcs8(name, &pkcs8)
        .map_err(|e| format!("{shown}: not a usable Ed25519 PKCS#8 key: {e}"))
}

fn generate(path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| format!("{}: cannot create: {e}", parent.display()))?;
    }
    let pkcs8 = CheckpointSigner::generate_pkcs8()
        .map_err(|e| format!("{shown}: cannot generate a key: {e}"))?;
    // create_new: two daemons racing to create the key never overwrite each other's.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{shown}: cannot create the signing key: {e}"))?;
    file.write_all(&pkcs8)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{shown}: cannot write the signing key: {e}"))?;
    tracing::info!(key = %shown, "generated a new checkpoint signing key");
    Ok(pkcs8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_with_mode_0600_then_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("k.key");
        let a = load_or_generate(&path, "n").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = load_or_generate(&path, "n").unwrap();
        assert_eq!(
            a.verifier().to_verifier_key(),
            b.verifier().to_verifier_key()
        );
    }

    #[test]
    fn open_or_garbage_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        load_or_generate(&path, "n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load_or_generate(&path, "n")
            .unwrap_err()
            .contains("chmod 600"));
        fs::write(&path, b"not a key").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(load_or_generate(&path, "n")
            .unwrap_err()
            .contains("not a usable"));
    }
}
