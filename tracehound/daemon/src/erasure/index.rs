//! The erasure index: which sources and scent ids produced which evidence signatures,
//! learnt from intercepts (the daemon's observer) and bounded.
//!
//! Erasure requests name a source or a scent id; the quarantine and cold storage are keyed
//! by signature. This index links them while the evidence is in memory, and hands the
//! links to the key vault when evidence is sealed into cold storage (where they outlive a
//! restart). It also holds tombstones: signatures being erased, which the sealer refuses,
//! so an evacuation already in flight cannot store erased evidence under a fresh key.

use std::collections::{HashMap, HashSet, VecDeque};

use parking_lot::Mutex;

/// Links (source or scent id, to a signature) kept per remembered signature on average:
/// the global bound on links is this times the signature capacity. There is no
/// per-signature cap: a link is only ever dropped with its whole signature, and that is
/// recorded (coverage incomplete).
const LINKS_PER_SIGNATURE: usize = 4;
/// Tombstones kept after their erasure finished (oldest forgotten first). Tombstones of
/// a running erasure are pinned: never lifted, never counted against this cap.
const MAX_TOMBSTONES: usize = 4096;

#[derive(Debug, Default)]
struct Entry {
    /// Sources, each with the generation it was recorded at.
    sources: Vec<(Box<str>, u64)>,
    /// Scent ids, each with the generation it was recorded at.
    scents: Vec<(Box<str>, u64)>,
    /// Insertion sequence: the FIFO queue's entry for this signature.
    seq: u64,
}

impl Entry {
    fn links(&self) -> usize {
        self.sources.len() + self.scents.len()
    }
}

#[derive(Debug, Default)]
struct Inner {
    sigs: HashMap<Box<str>, Entry>,
    /// Signatures in insertion order, with their sequence (stale pairs are skipped).
    order: VecDeque<(u64, Box<str>)>,
    by_source: HashMap<Box<str>, Vec<Box<str>>>,
    by_scent: HashMap<Box<str>, Box<str>>,
    tombstones: HashSet<Box<str>>,
    tombstone_order: VecDeque<Box<str>>,
    /// Tombstones of the running erasure (not in `tombstone_order` until unpinned).
    pinned: HashSet<Box<str>>,
    /// Pinned signatures freshly inserted again during their erasure: new evidence, whose
    /// tombstone goes when the erasure finishes.
    reinserted: HashSet<Box<str>>,
    /// Links held (sources plus scent ids over every signature).
    links: usize,
    /// Whether any link was ever dropped for capacity (sticky).
    dropped: bool,
    next_seq: u64,
}

impl Inner {
    fn unlink_source(&mut self, signature: &str, source: &str) {
        if let Some(list) = self.by_source.get_mut(source) {
            list.retain(|s| &**s != signature);
            if list.is_empty() {
                self.by_source.remove(source);
            }
        }
    }

    fn unlink_scent(&mut self, signature: &str, scent: &str) {
        if self.by_scent.get(scent).is_some_and(|s| &**s == signature) {
            self.by_scent.remove(scent);
        }
    }

    fn unlink(&mut self, signature: &str) -> Option<Entry> {
        let entry = self.sigs.remove(signature)?;
        self.links -= entry.links();
        for (source, _) in &entry.sources {
            self.unlink_source(signature, source);
        }
        for (scent, _) in &entry.scents {
            self.unlink_scent(signature, scent);
        }
        Some(entry)
    }

    /// Removes `signature`'s links recorded before `before`; the signature itself goes
    /// when no link is left.
    fn unlink_before(&mut self, signature: &str, before: u64) {
        let Some(entry) = self.sigs.get_mut(signature) else {
            return;
        };
        let (old_sources, old_scents): (Vec<_>, Vec<_>) = (
            entry
                .sources
                .iter()
                .filter(|(_, g)| *g < before)
                .map(|(s, _)| s.clone())
                .collect(),
            entry
                .scents
                .iter()
                .filter(|(_, g)| *g < before)
                .map(|(s, _)| s.clone())
                .collect(),
        );
        entry.sources.retain(|(_, g)| *g >= before);
        entry.scents.retain(|(_, g)| *g >= before);
        let empty = entry.links() == 0;
        self.links -= old_sources.len() + old_scents.len();
        for source in &old_sources {
            self.unlink_source(signature, source);
        }
        for scent in &old_scents {
            self.unlink_scent(signature, scent);
        }
        if empty {
            self.sigs.remove(signature);
        }
    }

    fn evict_to(&mut self, cap: usize) {
        let link_cap = cap.saturating_mul(LINKS_PER_SIGNATURE);
        // Pinned signatures (being erased) are skipped: at most one pass over the queue.
        let mut budget = self.order.len();
        while (self.sigs.len() > cap || self.links > link_cap) && budget > 0 {
            budget -= 1;
            let Some((seq, sig)) = self.order.pop_front() else {
                return;
            };
            if self.sigs.get(&sig).is_none_or(|e| e.seq != seq) {
                continue;
            }
            if self.pinned.contains(&sig) {
                self.order.push_back((seq, sig));
                continue;
            }
            if self.unlink(&sig).is_some_and(|e| e.links() > 0) {
                self.dropped = true;
            }
        }
        // Stale queue entries (erased or re-added signatures) are dropped lazily; keep
        // the queue from growing past twice the live entries.
        if self.order.len() > cap.saturating_mul(2) {
            let sigs = &self.sigs;
            self.order
                .retain(|(seq, sig)| sigs.get(sig).is_some_and(|e| e.seq == *seq));
        }
    }
}

/// See the [module docs](self). Every method takes one short lock.
#[derive(Debug)]
pub struct ErasureIndex {
    inner: Mutex<Inner>,
    cap: usize,
}

/// What the index knows about one signature.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Links {
    /// Sources that sent this evidence.
    pub sources: Vec<String>,
    /// Scent ids of those intercepts.
    pub scent_ids: Vec<String>,
}

impl ErasureIndex {
    /// Remembers at most `capacity` signatures and `capacity` times
    /// `LINKS_PER_SIGNATURE` (4) links (oldest signatures forgotten first).
    pub fn new(capacity: usize) -> Self {
        ErasureIndex {
            inner: Mutex::new(Inner::default()),
            cap: capacity.max(1),
        }
    }

    /// Records that `source`'s scent `scent_id` produced evidence `signature`. A fresh
    /// quarantine insert (`fresh`) lifts a tombstone (it is new evidence, not the erased
    /// copy) unless an erasure of that signature is running.
    pub fn record(&self, signature: &str, source: &str, scent_id: &str, fresh: bool) {
        let mut g = self.inner.lock();
        let inner = &mut *g;
        if fresh && inner.pinned.contains(signature) {
            inner.reinserted.insert(signature.into());
        } else if fresh && inner.tombstones.remove(signature) {
            inner.tombstone_order.retain(|s| &**s != signature);
        }
        let gen = inner.next_seq;
        inner.next_seq += 1;
        if !inner.sigs.contains_key(signature) {
            inner.sigs.insert(
                signature.into(),
                Entry {
                    seq: gen,
                    ..Entry::default()
                },
            );
            inner.order.push_back((gen, signature.into()));
        }
        let Some(entry) = inner.sigs.get_mut(signature) else {
            return;
        };
        let mut added = 0;
        if !source.is_empty() && !entry.sources.iter().any(|(s, _)| &**s == source) {
            entry.sources.push((source.into(), gen));
            added += 1;
            inner
                .by_source
                .entry(source.into())
                .or_default()
                .push(signature.into());
        }
        if !scent_id.is_empty() && !entry.scents.iter().any(|(s, _)| &**s == scent_id) {
            entry.scents.push((scent_id.into(), gen));
            added += 1;
            inner.by_scent.insert(scent_id.into(), signature.into());
        }
        inner.links += added;
        inner.evict_to(self.cap);
    }

    /// The current generation: links recorded from now on are not removed by a
    /// [`forget`](Self::forget) given this value.
    pub fn generation(&self) -> u64 {
        self.inner.lock().next_seq
    }

    /// Whether every link ever recorded is still held or was forgotten by an erasure
    /// (false once capacity dropped any: a source or scent erasure may then miss
    /// evidence findable only by signature).
    pub fn coverage_complete(&self) -> bool {
        !self.inner.lock().dropped
    }

    /// Signatures `source` produced.
    pub fn signatures_of_source(&self, source: &str) -> Vec<String> {
        let g = self.inner.lock();
        g.by_source
            .get(source)
            .map(|l| l.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default()
    }

    /// The signature scent `scent_id` produced.
    pub fn signature_of_scent(&self, scent_id: &str) -> Option<String> {
        self.inner
            .lock()
            .by_scent
            .get(scent_id)
            .map(|s| s.to_string())
    }

    /// Whether the index knows `signature`.
    pub fn knows(&self, signature: &str) -> bool {
        self.inner.lock().sigs.contains_key(signature)
    }

    /// The sources and scent ids recorded for `signature`.
    pub fn links(&self, signature: &str) -> Links {
        let g = self.inner.lock();
        g.sigs
            .get(signature)
            .map(|e| Links {
                sources: e.sources.iter().map(|(s, _)| s.to_string()).collect(),
                scent_ids: e.scents.iter().map(|(s, _)| s.to_string()).collect(),
            })
            .unwrap_or_default()
    }

    /// Marks signatures as being erased (the sealer and the evacuator's write filter
    /// refuse them) and pins them until [`unpin`](Self::unpin).
    pub fn tombstone(&self, signatures: &[String]) {
        let mut g = self.inner.lock();
        for sig in signatures {
            let sig: Box<str> = sig.as_str().into();
            if g.pinned.insert(sig.clone()) {
                g.tombstone_order.retain(|s| *s != sig);
            }
            g.tombstones.insert(sig);
        }
    }

    /// The erasure of these signatures finished: their tombstones stay (so a late write
    /// of the erased copy is still refused) until a fresh insert or the cap lifts them —
    /// except for a signature freshly inserted during the erasure: that copy is new
    /// evidence and must reach cold storage.
    pub fn unpin(&self, signatures: &[String]) {
        let mut g = self.inner.lock();
        for sig in signatures {
            if let Some(sig) = g.pinned.take(sig.as_str()) {
                if g.reinserted.remove(&sig) {
                    g.tombstones.remove(&sig);
                } else {
                    g.tombstone_order.push_back(sig);
                }
            }
        }
        while g.tombstone_order.len() > MAX_TOMBSTONES {
            if let Some(old) = g.tombstone_order.pop_front() {
                g.tombstones.remove(&old);
            }
        }
    }

    /// Whether `signature` is being (or was recently) erased.
    pub fn is_tombstoned(&self, signature: &str) -> bool {
        self.inner.lock().tombstones.contains(signature)
    }

    /// Forgets the links recorded before generation `before` (see
    /// [`generation`](Self::generation)) of the signatures, and of `source` if given;
    /// links recorded since (new evidence during the erasure) stay.
    pub fn forget(&self, signatures: &[String], source: Option<&str>, before: u64) {
        let mut g = self.inner.lock();
        for sig in signatures {
            g.unlink_before(sig, before);
        }
        if let Some(source) = source {
            for sig in g.by_source.get(source).cloned().unwrap_or_default() {
                let Some(e) = g.sigs.get_mut(&sig) else {
                    continue;
                };
                let n = e.sources.len();
                e.sources
                    .retain(|(s, gen)| &**s != source || *gen >= before);
                let gone = n - e.sources.len();
                let empty = e.links() == 0;
                g.links -= gone;
                if gone > 0 {
                    g.unlink_source(&sig, source);
                }
                if empty {
                    g.sigs.remove(&sig);
                }
            }
        }
    }

    /// Signatures remembered.
    pub fn len(&self) -> usize {
        self.inner.lock().sigs.len()
    }

    /// True if nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_found_both_ways_and_forgotten() {
        let ix = ErasureIndex::new(10);
        ix.record("s:1", "10.0.0.1", "a", true);
        ix.record("s:2", "10.0.0.1", "b", true);
        ix.record("s:2", "10.0.0.2", "c", false);
        let mut of = ix.signatures_of_source("10.0.0.1");
        of.sort();
        assert_eq!(of, ["s:1", "s:2"]);
        assert_eq!(ix.signature_of_scent("c").as_deref(), Some("s:2"));
        assert_eq!(ix.links("s:2").sources, ["10.0.0.1", "10.0.0.2"]);
        ix.forget(&["s:1".into()], Some("10.0.0.1"), ix.generation());
        assert!(ix.signatures_of_source("10.0.0.1").is_empty());
        assert_eq!(ix.links("s:2").sources, ["10.0.0.2"]);
        assert!(!ix.knows("s:1") && ix.signature_of_scent("a").is_none());
    }

    #[test]
    fn memory_stays_bounded_and_oldest_go_first() {
        let ix = ErasureIndex::new(100);
        for i in 0..10_000 {
            ix.record(
                &format!("s:{i}"),
                &format!("src{}", i % 7),
                &format!("id{i}"),
                true,
            );
        }
        assert_eq!(ix.len(), 100);
        assert!(ix.knows("s:9999") && !ix.knows("s:0"));
        let g = ix.inner.lock();
        let linked: usize = g.by_source.values().map(Vec::len).sum();
        assert_eq!((linked, g.by_scent.len()), (100, 100));
        assert!(g.order.len() <= 200);
    }

    #[test]
    fn a_running_erasure_pins_its_tombstones() {
        let ix = ErasureIndex::new(10);
        ix.tombstone(&["s:1".into()]);
        ix.record("s:1", "x", "y", true);
        assert!(
            ix.is_tombstoned("s:1"),
            "fresh evidence does not lift a pinned tombstone"
        );
        // Other erasures' tombstones past the cap do not push a pinned one out.
        for i in 0..MAX_TOMBSTONES + 10 {
            let sig = vec![format!("o:{i}")];
            ix.tombstone(&sig);
            ix.unpin(&sig);
        }
        assert!(ix.is_tombstoned("s:1"));
        assert!(!ix.is_tombstoned("o:0"), "unpinned tombstones are capped");
        ix.unpin(&["s:1".into()]);
        assert!(
            !ix.is_tombstoned("s:1"),
            "re-inserted during the erasure: lifted when it finishes"
        );
        ix.tombstone(&["s:2".into()]);
        ix.unpin(&["s:2".into()]);
        assert!(ix.is_tombstoned("s:2"), "not re-inserted: stays");
    }

    #[test]
    fn forget_keeps_links_recorded_during_the_erasure() {
        let ix = ErasureIndex::new(10);
        ix.record("s:1", "a", "id1", true);
        let gen = ix.generation();
        ix.record("s:1", "b", "id2", true);
        ix.record("s:2", "a", "id3", true);
        ix.forget(&["s:1".into()], Some("a"), gen);
        assert_eq!(ix.links("s:1").sources, ["b"]);
        assert_eq!(ix.signature_of_scent("id2").as_deref(), Some("s:1"));
        assert!(ix.signature_of_scent("id1").is_none());
        assert_eq!(
            ix.signatures_of_source("a"),
            ["s:2"],
            "a's later link stays"
        );
    }

    #[test]
    fn no_per_signature_cap_and_drops_are_reported() {
        let ix = ErasureIndex::new(10);
        for i in 0..30 {
            ix.record("s:1", &format!("src{i}"), "", true);
        }
        assert_eq!(
            ix.links("s:1").sources.len(),
            30,
            "no silent per-signature cap"
        );
        assert!(ix.coverage_complete());
        // Over the global link bound (10 * 4): the oldest signature goes, and that is
        // reported.
        for i in 0..11 {
            ix.record("s:2", &format!("z{i}"), "", true);
        }
        assert!(!ix.knows("s:1") && ix.knows("s:2"));
        assert!(!ix.coverage_complete());
        // A pinned signature is never dropped for capacity.
        let ix = ErasureIndex::new(2);
        ix.record("p:1", "a", "1", true);
        ix.tombstone(&["p:1".into()]);
        for i in 0..10 {
            ix.record(&format!("q:{i}"), "b", &format!("x{i}"), true);
        }
        assert!(ix.knows("p:1"));
    }

    #[test]
    fn tombstones_block_until_fresh_evidence_arrives() {
        let ix = ErasureIndex::new(10);
        ix.tombstone(&["s:1".into()]);
        ix.unpin(&["s:1".into()]);
        assert!(ix.is_tombstoned("s:1"));
        ix.record("s:1", "x", "y", false);
        assert!(ix.is_tombstoned("s:1"), "a duplicate is not new evidence");
        ix.record("s:1", "x", "y", true);
        assert!(!ix.is_tombstoned("s:1"));
    }
}
