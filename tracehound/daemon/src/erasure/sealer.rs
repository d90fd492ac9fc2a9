//! The cold store's [`EvidenceSealer`] over the key vault: one key per evidence, created
//! when the evidence is first sealed, with the sources and scent ids the erasure index
//! knows for it; signatures being erased are refused.

use std::sync::Arc;

use tracehound_cold::{EvidenceSealer, SealerError};
use tracehound_vault::{KeyId, KeyMeta, Vault, VaultError};

use super::index::ErasureIndex;

/// See the [module docs](self).
#[derive(Debug)]
pub struct VaultSealer {
    vault: Arc<Vault>,
    index: Arc<ErasureIndex>,
}

impl VaultSealer {
    /// A sealer over `vault`, taking key metadata from `index`.
    pub fn new(vault: Arc<Vault>, index: Arc<ErasureIndex>) -> Self {
        VaultSealer { vault, index }
    }
}

fn sealer_error(e: VaultError) -> SealerError {
    match e {
        VaultError::Erased { .. } => SealerError::Erased,
        VaultError::Tampered { .. } => SealerError::Tampered,
        other => SealerError::Failed(other.to_string()),
    }
}

impl EvidenceSealer for VaultSealer {
    fn key_for(&self, signature: &str) -> Result<[u8; 16], SealerError> {
        if self.index.is_tombstoned(signature) {
            return Err(SealerError::Erased);
        }
        let links = self.index.links(signature);
        let meta = KeyMeta {
            signature: signature.to_owned(),
            sources: links.sources,
            scent_ids: links.scent_ids,
        };
        let id = self.vault.key_for(&meta).map_err(sealer_error)?;
        // An erasure that started while the key was being made: it may have looked for
        // the key before it existed, so destroy it here rather than leave it behind.
        if self.index.is_tombstoned(signature) {
            let _ = self.vault.destroy(&id);
            return Err(SealerError::Erased);
        }
        Ok(id.0)
    }

    fn encrypt(
        &self,
        key_id: &[u8; 16],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, SealerError> {
        self.vault
            .encrypt(&KeyId(*key_id), aad, plaintext)
            .map_err(sealer_error)
    }

    fn discard(&self, signature: &str) -> Result<(), SealerError> {
        match self.vault.find_signature(signature) {
            Some(id) => self.vault.destroy(&id).map(|_| ()).map_err(sealer_error),
            None => Ok(()),
        }
    }

    fn decrypt(
        &self,
        key_id: &[u8; 16],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, SealerError> {
        self.vault
            .decrypt(&KeyId(*key_id), aad, sealed)
            .map_err(sealer_error)
    }
}
