//! RFC 6962 Merkle tree over the ledger's entries (§2.1): hashing, a compact store of
//! complete subtree hashes, proof generation and verification.
//!
//! Leaves are hashed as `SHA-256(0x00 || entry)` and interior nodes as
//! `SHA-256(0x01 || left || right)`; the domain separation stops an interior node from
//! being passed off as a leaf (second-preimage forgeries).

mod store;
mod verify;

pub use store::MerkleTree;
pub use verify::{root_from_inclusion, verify_consistency, verify_inclusion, ProofError};

use sha2::{Digest, Sha256};

/// A SHA-256 digest in the tree (leaf hash, node hash or root).
pub type Hash = [u8; 32];

/// Longest proof any tree addressable with `u64` sizes can need. Inclusion proofs have at
/// most 64 hashes; consistency proofs at most 64 + 1. Longer inputs are rejected before
/// any hashing, so an attacker cannot make a verifier work for nothing.
pub const MAX_PROOF_HASHES: usize = 66;

/// The root of the empty tree: `SHA-256("")` (RFC 6962 §2.1).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// `SHA-256(0x00 || entry)`: the hash of one leaf.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(entry);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two strictly smaller than `n` (RFC 6962's `k`); `n` must be ≥ 2.
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    // For n ≥ 2, (n - 1) ≥ 1, so the shift is in range.
    1u64 << (63 - (n - 1).leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_point_is_the_largest_smaller_power_of_two() {
        for (n, k) in [
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 4),
            (8, 4),
            (9, 8),
            (u64::MAX, 1 << 63),
        ] {
            assert_eq!(split_point(n), k, "n = {n}");
        }
    }
}
