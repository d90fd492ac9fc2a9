//! Chunked record storage for the audit chain.
//!
//! Records and their text live in fixed-size chunks that are allocated as the chain grows
//! and never reallocated, so an append never copies earlier records: no latency spike
//! when a multi-megabyte array would otherwise double (the quarantine appends on every
//! eviction, under its lock).

use super::{ChainHash, RecordKind};

/// Records per slot chunk (≈ 80 KiB).
const SLOTS_PER_CHUNK: usize = 1024;
/// Largest text chunk; smaller chains start with smaller chunks.
const MAX_TEXT_CHUNK: usize = 1 << 20;
const MIN_TEXT_CHUNK: usize = 4 << 10;

/// One stored record; its id and signature are adjacent in text chunk `text_chunk`.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    text_chunk: usize,
    start: usize,
    id_len: usize,
    sig_len: usize,
    pub(super) timestamp: f64,
    pub(super) hash: ChainHash,
    pub(super) kind: RecordKind,
    /// Neither id nor signature needs JSON escaping (copied verbatim when hashing).
    pub(super) plain: bool,
}

/// The chain's records, oldest first.
#[derive(Debug, Clone, Default)]
pub(super) struct Records {
    slots: Vec<Vec<Slot>>,
    text: Vec<String>,
    len: usize,
    text_len: usize,
}

impl Records {
    /// Room for about `records` records of `text_per_record` bytes before new chunks are
    /// needed (the first chunks are sized for it; later ones are allocated as usual).
    pub(super) fn with_capacity(records: usize, text_per_record: usize) -> Records {
        let mut r = Records::default();
        r.slots.reserve(records.div_ceil(SLOTS_PER_CHUNK));
        let text = records
            .saturating_mul(text_per_record)
            .clamp(MIN_TEXT_CHUNK, MAX_TEXT_CHUNK);
        r.text.push(String::with_capacity(text));
        r
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Stores a record; never moves earlier ones.
    pub(super) fn push(
        &mut self,
        id: &str,
        signature: &str,
        timestamp: f64,
        hash: ChainHash,
        kind: RecordKind,
        plain: bool,
    ) {
        let need = id.len().saturating_add(signature.len());
        if self
            .text
            .last()
            .is_none_or(|t| t.capacity() - t.len() < need)
        {
            // Grow chunk sizes with the chain (small chains stay small), capped.
            let size = self
                .text_len
                .clamp(MIN_TEXT_CHUNK, MAX_TEXT_CHUNK)
                .max(need);
            self.text.push(String::with_capacity(size));
        }
        let text_chunk = self.text.len() - 1;
        let mut start = 0;
        if let Some(t) = self.text.last_mut() {
            start = t.len();
            // Capacity was checked above, so these never reallocate.
            t.push_str(id);
            t.push_str(signature);
        }
        self.text_len = self.text_len.saturating_add(need);
        if self.slots.last().is_none_or(|c| c.len() >= SLOTS_PER_CHUNK) {
            self.slots.push(Vec::with_capacity(SLOTS_PER_CHUNK));
        }
        let slot = Slot {
            text_chunk,
            start,
            id_len: id.len(),
            sig_len: signature.len(),
            timestamp,
            hash,
            kind,
            plain,
        };
        if let Some(chunk) = self.slots.last_mut() {
            chunk.push(slot);
            self.len += 1;
        }
    }

    pub(super) fn slot(&self, index: usize) -> Option<&Slot> {
        self.slots
            .get(index / SLOTS_PER_CHUNK)?
            .get(index % SLOTS_PER_CHUNK)
    }

    /// All slots, oldest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Slot> + '_ {
        self.slots.iter().flatten()
    }

    /// The record's id and signature.
    pub(super) fn text(&self, slot: &Slot) -> (&str, &str) {
        let chunk = self.text.get(slot.text_chunk).map_or("", String::as_str);
        let id_end = slot.start.saturating_add(slot.id_len);
        let end = id_end.saturating_add(slot.sig_len);
        (
            chunk.get(slot.start..id_end).unwrap_or_default(),
            chunk.get(id_end..end).unwrap_or_default(),
        )
    }
}
