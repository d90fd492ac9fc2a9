//! Reading entries back, proofs and checkpoints (full verification is in `verify`).

use std::fs::File;
use std::os::unix::fs::FileExt;

use tracehound_core::audit::AuditRecord;

use super::{Ledger, Segment};
use crate::checkpoint::{Checkpoint, CheckpointSigner};
use crate::error::LedgerError;
use crate::frame::{FRAME_OVERHEAD, MAX_ENTRY_BYTES};
use crate::merkle::{leaf_hash, Hash};
use crate::record::decode_entry;

impl Ledger {
    fn locate(&self, index: u64) -> Result<(&Segment, u32), LedgerError> {
        let len = self.len();
        let no_entry = || LedgerError::NoSuchEntry { index, len };
        if index >= len {
            return Err(no_entry());
        }
        let pos = self.segments.partition_point(|s| s.first_index <= index);
        let seg = pos
            .checked_sub(1)
            .and_then(|p| self.segments.get(p))
            .ok_or_else(no_entry)?;
        let within = usize::try_from(index - seg.first_index).map_err(|_| no_entry())?;
        let offset = *seg.offsets.get(within).ok_or_else(no_entry)?;
        Ok((seg, offset))
    }

    /// The bytes of entry `index` (one v1 audit record as JSON), read from disk and
    /// checked against the tree's leaf hash.
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, LedgerError> {
        let (seg, offset) = self.locate(index)?;
        let corrupt = |reason| LedgerError::Corrupt {
            segment: seg.name(),
            offset: u64::from(offset),
            reason,
        };
        let file = File::open(&seg.path).map_err(LedgerError::io("opening", &seg.path))?;
        let mut header = [0u8; FRAME_OVERHEAD];
        file.read_exact_at(&mut header, u64::from(offset))
            .map_err(LedgerError::io("reading", &seg.path))?;
        let (len, rest) = header.split_at(4);
        let mut le = [0u8; 4];
        le.copy_from_slice(len);
        let n = u32::from_le_bytes(le) as usize;
        if n > MAX_ENTRY_BYTES {
            return Err(corrupt("length field larger than any entry"));
        }
        let mut payload = vec![0u8; n];
        file.read_exact_at(&mut payload, u64::from(offset) + FRAME_OVERHEAD as u64)
            .map_err(LedgerError::io("reading", &seg.path))?;
        let leaf = leaf_hash(&payload);
        if rest.get(4..) != Some(&leaf[..]) || self.tree.leaf(index) != Some(leaf) {
            return Err(corrupt("entry changed on disk since the ledger was opened"));
        }
        Ok(payload)
    }

    /// Entry `index` parsed as an audit record.
    pub fn record(&self, index: u64) -> Result<AuditRecord, LedgerError> {
        let bytes = self.entry(index)?;
        decode_entry(&bytes).map_err(|source| LedgerError::Entry { index, source })
    }

    /// The tree head of the first `size` entries.
    pub fn root(&self, size: u64) -> Result<Hash, LedgerError> {
        self.tree.root(size).ok_or(LedgerError::Proof(
            crate::merkle::ProofError::SizeBeyondTree,
        ))
    }

    /// The inclusion proof of entry `index` in the tree of the first `size` entries.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, LedgerError> {
        Ok(self.tree.inclusion_proof(index, size)?)
    }

    /// The consistency proof between the trees of the first `first` and `second` entries.
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, LedgerError> {
        Ok(self.tree.consistency_proof(first, second)?)
    }

    /// The checkpoint of the acknowledged entries (call [`sync`](Ledger::sync) first to
    /// cover everything appended): a checkpoint never commits to an entry a crash could
    /// still take back.
    pub fn checkpoint(&self, origin: &str) -> Result<Checkpoint, LedgerError> {
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size: self.acked,
            root: self.root(self.acked)?,
        })
    }

    /// [`checkpoint`](Self::checkpoint), signed: the signed note text.
    pub fn signed_checkpoint(
        &self,
        origin: &str,
        signer: &CheckpointSigner,
    ) -> Result<String, LedgerError> {
        Ok(signer.sign(&self.checkpoint(origin)?)?)
    }
}
