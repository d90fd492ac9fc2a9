//! The tree's node store: every complete, aligned subtree hash, level by level.
//!
//! `levels[k][i]` is the hash of leaves `i·2^k .. (i+1)·2^k`. Appending a leaf adds it to
//! level 0 and carries upwards while a level has an even count, so an append costs one
//! node hash amortised. Any subtree of the RFC 6962 decomposition is then either one
//! stored hash or, on the right edge of a tree whose size is not a power of two, at most
//! `log2(n)` hashes away; proofs and roots for any size are O(log n) (O(log² n) hashes in
//! the worst case for ragged sizes). Memory is about 64 bytes per leaf.
//!
//! The store lives in memory and is rebuilt on open from the leaf hashes in the segment
//! frames; it is not persisted.

use super::verify::ProofError;
use super::{empty_root, node_hash, split_point, Hash};

/// An append-only RFC 6962 Merkle tree that keeps its complete subtree hashes.
#[derive(Debug, Clone, Default)]
pub struct MerkleTree {
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// An empty tree.
    pub fn new() -> MerkleTree {
        MerkleTree::default()
    }

    /// A tree over the given leaf hashes, in order.
    pub fn from_leaf_hashes(leaves: impl IntoIterator<Item = Hash>) -> MerkleTree {
        let mut tree = MerkleTree::new();
        for leaf in leaves {
            tree.push(leaf);
        }
        tree
    }

    /// Number of leaves.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// True if the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a leaf hash and returns its index.
    pub fn push(&mut self, leaf: Hash) -> u64 {
        let index = self.len();
        let mut carry = leaf;
        let mut level = 0;
        loop {
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            let Some(nodes) = self.levels.get_mut(level) else {
                break;
            };
            nodes.push(carry);
            let n = nodes.len();
            if !n.is_multiple_of(2) {
                break;
            }
            // n ≥ 2 and even: the last two nodes form a complete subtree one level up.
            match (nodes.get(n - 2), nodes.get(n - 1)) {
                (Some(l), Some(r)) => carry = node_hash(l, r),
                _ => break,
            }
            level += 1;
        }
        index
    }

    /// Leaf hash `index`, if present.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        let i = usize::try_from(index).ok()?;
        self.levels.first()?.get(i).copied()
    }

    /// Bytes held by the node store (hashes only), for stats.
    pub fn memory_bytes(&self) -> usize {
        self.levels.iter().map(|l| l.capacity() * 32).sum()
    }

    /// `MTH(D[start .. start + len])`, or `None` if the range is empty or past the end.
    pub fn subtree_hash(&self, start: u64, len: u64) -> Option<Hash> {
        if len == 0 || start.checked_add(len)? > self.len() {
            return None;
        }
        if len.is_power_of_two() && start.is_multiple_of(len) {
            let level = len.trailing_zeros() as usize;
            let i = usize::try_from(start >> level).ok()?;
            return self.levels.get(level)?.get(i).copied();
        }
        // len ≥ 2 here: a length of one is a power of two and always aligned.
        let k = split_point(len);
        Some(node_hash(
            &self.subtree_hash(start, k)?,
            &self.subtree_hash(start + k, len - k)?,
        ))
    }

    /// The tree head (root hash) of the first `size` leaves; `None` if `size` exceeds the
    /// tree. Size 0 gives the empty root.
    pub fn root(&self, size: u64) -> Option<Hash> {
        if size == 0 {
            return (size <= self.len()).then(empty_root);
        }
        self.subtree_hash(0, size)
    }

    /// The inclusion proof of leaf `index` in the tree of the first `size` leaves
    /// (RFC 6962 §2.1.1 `PATH`), nearest sibling first.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        if size > self.len() {
            return Err(ProofError::SizeBeyondTree);
        }
        if index >= size {
            return Err(ProofError::IndexOutOfRange);
        }
        let mut out = Vec::new();
        self.path(index, 0, size, &mut out)
            .ok_or(ProofError::SizeBeyondTree)?;
        Ok(out)
    }

    /// The consistency proof between the trees of the first `first` and `second` leaves
    /// (RFC 6962 §2.1.2 `PROOF`). Empty when `first` is 0 or equal to `second`.
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, ProofError> {
        if second > self.len() {
            return Err(ProofError::SizeBeyondTree);
        }
        if first > second {
            return Err(ProofError::FirstAfterSecond);
        }
        let mut out = Vec::new();
        if first == 0 || first == second {
            return Ok(out);
        }
        self.subproof(first, 0, second, true, &mut out)
            .ok_or(ProofError::SizeBeyondTree)?;
        Ok(out)
    }

    /// `PATH(m, D[start .. start + n])`, appended to `out`.
    fn path(&self, m: u64, start: u64, n: u64, out: &mut Vec<Hash>) -> Option<()> {
        if n <= 1 {
            return Some(());
        }
        let k = split_point(n);
        if m < k {
            self.path(m, start, k, out)?;
            out.push(self.subtree_hash(start + k, n - k)?);
        } else {
            self.path(m - k, start + k, n - k, out)?;
            out.push(self.subtree_hash(start, k)?);
        }
        Some(())
    }

    /// `SUBPROOF(m, D[start .. start + n], b)`, appended to `out`.
    fn subproof(&self, m: u64, start: u64, n: u64, whole: bool, out: &mut Vec<Hash>) -> Option<()> {
        if m == n {
            if !whole {
                out.push(self.subtree_hash(start, n)?);
            }
            return Some(());
        }
        let k = split_point(n);
        if m <= k {
            self.subproof(m, start, k, whole, out)?;
            out.push(self.subtree_hash(start + k, n - k)?);
        } else {
            self.subproof(m - k, start + k, n - k, false, out)?;
            out.push(self.subtree_hash(start, k)?);
        }
        Some(())
    }
}
