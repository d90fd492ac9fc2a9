//! The single-threaded quarantine core: a hash map by signature plus an ordered eviction
//! index keyed by `(severity rank, captured, insertion sequence)`.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

use super::{
    EvictionSink, InsertOutcome, PressureLevel, QuarantineConfig, QuarantineEvent, QuarantineStats,
    ReplaceOutcome,
};
use crate::audit::{AuditChain, RecordKind};
use crate::evidence::{
    EvacuateRecord, Evidence, EvidenceHandle, NeutralizationRecord, PurgeReason, PurgeRecord,
    PurgedScent,
};

/// Id prefix of the audit records [`QuarantineStore::append_erasure`] appends: erasures
/// are v1-shaped records (kind `neutralization`, so v1 tools still import and verify the
/// chain) told apart by their id, `erasure-{secure id}`.
pub const ERASURE_ID_PREFIX: &str = "erasure-";

/// Pending events kept for [`QuarantineStore::drain_events`]; older ones are dropped (and
/// counted) if nobody drains, so an unobserved store stays bounded.
const MAX_PENDING_EVENTS: usize = 256;

/// Eviction order: lowest rank, then oldest `captured`, then earliest insertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct EvictKey {
    rank: u8,
    captured: u64,
    seq: u64,
}

/// Maps an f64 to a u64 with the same order (IEEE total order; `-0` is folded into `+0`
/// as v1's `a.captured - b.captured` treats them as equal). NaN sorts by its bit pattern
/// (positive NaN after +∞), where v1's comparator is inconsistent.
fn ordered_bits(x: f64) -> u64 {
    let x = if x == 0.0 { 0.0 } else { x };
    let b = x.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

/// Hash-map key: the evidence's own handle, hashed and compared as its signature, so the
/// signature is stored once and lookups by `&str` work.
#[derive(Debug, Clone)]
struct SigKey(EvidenceHandle);

impl Hash for SigKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.signature().hash(state);
    }
}
impl PartialEq for SigKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.signature() == other.0.signature()
    }
}
impl Eq for SigKey {}
impl Borrow<str> for SigKey {
    fn borrow(&self) -> &str {
        self.0.signature()
    }
}

#[derive(Debug)]
struct Entry {
    evidence: Evidence,
    key: EvictKey,
}

/// The installed [`EvictionSink`]; a newtype so the store can keep deriving `Debug`.
#[derive(Clone)]
struct SinkSlot(std::sync::Arc<dyn EvictionSink>);

impl std::fmt::Debug for SinkSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EvictionSink")
    }
}

/// The quarantine without locking; see the [module docs](super).
#[derive(Debug)]
pub struct QuarantineStore {
    config: QuarantineConfig,
    entries: HashMap<SigKey, Entry>,
    order: BTreeMap<EvictKey, EvidenceHandle>,
    bytes: usize,
    by_severity: [usize; 4],
    next_seq: u64,
    level: PressureLevel,
    events: Vec<QuarantineEvent>,
    dropped_events: u64,
    audit: AuditChain,
    eviction_sink: Option<SinkSlot>,
}

impl QuarantineStore {
    /// An empty store with a fresh audit chain.
    pub fn new(config: QuarantineConfig) -> QuarantineStore {
        QuarantineStore::with_audit(config, AuditChain::new())
    }

    /// An empty store that appends to `audit` (e.g. a chain continued from an import).
    pub fn with_audit(config: QuarantineConfig, audit: AuditChain) -> QuarantineStore {
        QuarantineStore {
            config,
            entries: HashMap::new(),
            order: BTreeMap::new(),
            bytes: 0,
            by_severity: [0; 4],
            next_seq: 0,
            level: PressureLevel::Normal,
            events: Vec::new(),
            dropped_events: 0,
            audit,
            eviction_sink: None,
        }
    }

    /// The bounds in force.
    pub fn config(&self) -> QuarantineConfig {
        self.config
    }

    /// v1 `insert(ev)`. A held signature gives `Duplicate` (the new evidence is handed
    /// back). Otherwise the evidence is stored and, while the store exceeds `max_count` or
    /// `max_bytes`, the first evidence in eviction order is neutralized with a record
    /// appended to the audit chain (timestamp `now_ms`) — possibly the new one itself.
    pub fn insert(&mut self, evidence: Evidence, now_ms: f64) -> InsertOutcome {
        if let Some(existing) = self.entries.get(evidence.signature()) {
            return InsertOutcome::Duplicate {
                existing: existing.evidence.handle(),
                rejected: evidence,
            };
        }
        let handle = evidence.handle();
        let key = EvictKey {
            rank: evidence.severity().rank(),
            captured: ordered_bits(evidence.captured()),
            seq: self.next_seq,
        };
        self.next_seq += 1;
        self.account_add(&evidence);
        self.order.insert(key, handle.clone());
        self.entries
            .insert(SigKey(handle.clone()), Entry { evidence, key });

        let mut evicted = Vec::new();
        let mut self_evicted = false;
        while self.entries.len() > self.config.max_count || self.bytes > self.config.max_bytes {
            let Some((_, victim)) = self.order.pop_first() else {
                break;
            };
            let Some((_, entry)) = self.entries.remove_entry(victim.signature()) else {
                continue;
            };
            self.account_remove(&entry.evidence);
            self_evicted |= entry.key == key;
            match self.eviction_sink.clone() {
                Some(SinkSlot(sink)) => {
                    self.audit_neutralization(&entry.evidence, now_ms);
                    sink.evicted(entry.evidence);
                }
                None => self.audit_neutralization(&entry.evidence, now_ms),
            }
            evicted.push(victim);
        }
        self.note_level();
        InsertOutcome::Inserted {
            handle,
            evicted,
            self_evicted,
        }
    }

    /// Hands every piece of evidence evicted for capacity (by [`insert`](Self::insert))
    /// to `sink` instead of dropping it, e.g. to evacuate it to cold storage; `None`
    /// restores v1's behaviour. The audit record is the same neutralization either way.
    /// `flush`, `neutralize` and `purge` never reach the sink: they are explicit requests.
    pub fn set_eviction_sink(&mut self, sink: Option<std::sync::Arc<dyn EvictionSink>>) {
        self.eviction_sink = sink.map(SinkSlot);
    }

    /// v1 `get(sig)`: a read-only handle.
    pub fn get(&self, signature: &str) -> Option<EvidenceHandle> {
        self.entries.get(signature).map(|e| e.evidence.handle())
    }

    /// v1 `has(sig)`.
    pub fn has(&self, signature: &str) -> bool {
        self.entries.contains_key(signature)
    }

    /// Calls `f` with the stored bytes of `signature` without removing them.
    pub fn with_bytes<R>(&self, signature: &str, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        self.entries.get(signature).map(|e| f(e.evidence.bytes()))
    }

    /// v1 `neutralize(sig)`: removes the evidence, appends its neutralization record to
    /// the audit chain and returns the record; `None` if not held.
    pub fn neutralize(&mut self, signature: &str, now_ms: f64) -> Option<NeutralizationRecord> {
        let evidence = self.remove(signature)?;
        let record = evidence.neutralize(self.audit.last_hash(), now_ms);
        self.audit.append_neutralization(&record);
        Some(record)
    }

    /// Removes the evidence and hands its bytes over with an evacuation record, which is
    /// appended to the audit chain (v1 has `Evidence.evacuate` but never records it).
    pub fn evacuate(
        &mut self,
        signature: &str,
        destination: &str,
        now_ms: f64,
    ) -> Option<(Vec<u8>, EvacuateRecord)> {
        let evidence = self.remove(signature)?;
        let (bytes, record) = evidence.evacuate(destination, now_ms);
        self.audit.append_evacuation(&record);
        Some((bytes, record))
    }

    /// v1 `transfer()` through the store: removes and returns the evidence, with no audit
    /// record (as in v1). Prefer [`evacuate`](Self::evacuate) when the move must be audited.
    pub fn take(&mut self, signature: &str) -> Option<Evidence> {
        self.remove(signature)
    }

    /// v1 `purge(sig, reason)`: removes and drops the evidence; returns v1's purge record.
    /// Not appended to the audit chain (v1 semantics).
    pub fn purge(
        &mut self,
        signature: &str,
        reason: PurgeReason,
        now_ms: f64,
    ) -> Option<PurgeRecord> {
        let evidence = self.remove(signature)?;
        Some(PurgeRecord {
            id: crate::evidence::purge_id(now_ms),
            reason,
            scent: PurgedScent {
                id: evidence.signature().to_owned(),
                source: "unknown".to_owned(),
                timestamp: evidence.captured(),
                payload_hash: evidence.hash().to_owned(),
                payload_size: evidence.size(),
            },
            purge_timestamp: now_ms,
        })
    }

    /// v1 `replace(oldSig, newEv)`: neutralizes the old evidence if held, then inserts.
    pub fn replace(
        &mut self,
        old_signature: &str,
        evidence: Evidence,
        now_ms: f64,
    ) -> ReplaceOutcome {
        let neutralized = self.neutralize(old_signature, now_ms);
        let inserted = self.insert(evidence, now_ms);
        ReplaceOutcome {
            neutralized,
            inserted,
        }
    }

    /// v1 `flush()`: neutralizes everything in insertion order, one audit record each
    /// (each linked to the then-current last hash). Returns how many were flushed.
    pub fn flush(&mut self, now_ms: f64) -> usize {
        let mut all: Vec<Entry> = self.entries.drain().map(|(_, e)| e).collect();
        all.sort_unstable_by_key(|e| e.key.seq);
        self.order.clear();
        let n = all.len();
        for entry in all {
            self.account_remove(&entry.evidence);
            self.audit_neutralization(&entry.evidence, now_ms);
        }
        self.note_level();
        n
    }

    /// v1 `stats` (kept up to date on every change, O(1)).
    pub fn stats(&self) -> QuarantineStats {
        let [low, medium, high, critical] = self.by_severity;
        QuarantineStats {
            count: self.entries.len(),
            bytes: self.bytes,
            by_severity: super::SeverityCounts {
                low,
                medium,
                high,
                critical,
            },
        }
    }

    /// Pieces of evidence held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Stored bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Current memory-pressure level.
    pub fn pressure(&self) -> PressureLevel {
        self.level
    }

    /// Signatures in eviction order (next victim first). O(n); for inspection and tests.
    pub fn eviction_order(&self) -> Vec<EvidenceHandle> {
        self.order.values().cloned().collect()
    }

    /// Held evidence in insertion order (v1's `Map` iteration order). O(n log n); for
    /// inspection and tests.
    pub fn insertion_order(&self) -> Vec<EvidenceHandle> {
        let mut all: Vec<(u64, EvidenceHandle)> = self
            .entries
            .values()
            .map(|e| (e.key.seq, e.evidence.handle()))
            .collect();
        all.sort_unstable_by_key(|(seq, _)| *seq);
        all.into_iter().map(|(_, h)| h).collect()
    }

    /// Takes the pending events (pressure level changes since the last drain).
    pub fn drain_events(&mut self) -> Vec<QuarantineEvent> {
        std::mem::take(&mut self.events)
    }

    /// Events dropped because more than 256 were pending undrained.
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    /// The audit chain (read-only).
    pub fn audit(&self) -> &AuditChain {
        &self.audit
    }

    /// The audit chain, for appending records that do not come from the quarantine.
    pub fn audit_mut(&mut self) -> &mut AuditChain {
        &mut self.audit
    }

    /// Erasure (GDPR): removes the evidence, if held, and overwrites its bytes with zeros
    /// before freeing them. No audit record: the caller appends one with
    /// [`append_erasure`](Self::append_erasure) once every copy is gone. Returns whether it
    /// was held.
    pub fn erase_evidence(&mut self, signature: &str) -> bool {
        use zeroize::Zeroize;
        match self.remove(signature) {
            Some(evidence) => {
                evidence.into_bytes().zeroize();
                true
            }
            None => false,
        }
    }

    /// Appends the audit record of an erasure of `signature` (id `erasure-{secure id}`,
    /// kind neutralization; the chain hash covers id, signature, timestamp and previous
    /// hash as for every v1 record, never a source or payload). Returns the record's
    /// index in the chain and its hash.
    pub fn append_erasure(
        &mut self,
        signature: &str,
        now_ms: f64,
    ) -> (usize, crate::audit::ChainHash) {
        let id = format!("{ERASURE_ID_PREFIX}{}", crate::id::generate_secure_id());
        let index = self.audit.len();
        let hash = self
            .audit
            .append(RecordKind::Neutralization, &id, signature, now_ms);
        (index, hash)
    }

    fn remove(&mut self, signature: &str) -> Option<Evidence> {
        let (_, entry) = self.entries.remove_entry(signature)?;
        self.order.remove(&entry.key);
        self.account_remove(&entry.evidence);
        self.note_level();
        Some(entry.evidence)
    }

    /// Appends a neutralization record for `evidence` without building an owned record
    /// (the eviction hot path): id written on the stack. The caller then drops the
    /// evidence or hands it to the eviction sink.
    fn audit_neutralization(&mut self, evidence: &Evidence, now_ms: f64) {
        let mut id = [0u8; crate::id::SECURE_ID_LEN];
        let id = crate::id::write_secure_id(&mut id);
        self.audit
            .append(RecordKind::Neutralization, id, evidence.signature(), now_ms);
    }

    fn account_add(&mut self, e: &Evidence) {
        self.bytes = self.bytes.saturating_add(e.size());
        if let Some(c) = self.by_severity.get_mut(usize::from(e.severity().rank())) {
            *c += 1;
        }
    }

    fn account_remove(&mut self, e: &Evidence) {
        self.bytes = self.bytes.saturating_sub(e.size());
        if let Some(c) = self.by_severity.get_mut(usize::from(e.severity().rank())) {
            *c = c.saturating_sub(1);
        }
    }

    fn note_level(&mut self) {
        let level = PressureLevel::for_usage(self.bytes, self.config.max_bytes);
        if level != self.level {
            if self.events.len() >= MAX_PENDING_EVENTS {
                self.events.remove(0);
                self.dropped_events += 1;
            }
            self.events.push(QuarantineEvent::Pressure {
                from: self.level,
                to: level,
                bytes: self.bytes,
                max_bytes: self.config.max_bytes,
            });
            self.level = level;
        }
    }
}
