//! Property tests: proofs verify for random sizes and indices, fail for any altered byte,
//! agree with a naive RFC 6962 reference, and verification never panics on garbage.

use proptest::prelude::*;
use tracehound_ledger::merkle::{
    empty_root, leaf_hash, node_hash, verify_consistency, verify_inclusion, Hash, MerkleTree,
};

fn leaves(n: u64, seed: u64) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(&(i ^ seed).to_le_bytes()))
        .collect()
}

/// RFC 6962 §2.1 MTH, straight from the definition.
fn naive_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
        }
    }
}

fn flip(h: &Hash, byte: usize, bit: u8) -> Hash {
    let mut out = *h;
    out[byte % 32] ^= 1 << (bit % 8);
    out
}

/// A tree size, an index below it, and a tree at least as large.
fn size_index_extra() -> impl Strategy<Value = (u64, u64, u64)> {
    (1u64..600).prop_flat_map(|n| (Just(n), 0..n, 0u64..70))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn roots_match_the_naive_definition(n in 0u64..300, seed: u64) {
        let l = leaves(n, seed);
        let tree = MerkleTree::from_leaf_hashes(l.iter().copied());
        for m in [0, n / 3, n / 2, n.saturating_sub(1), n] {
            prop_assert_eq!(tree.root(m), Some(naive_root(&l[..m as usize])));
        }
    }

    #[test]
    fn inclusion_verifies_and_any_altered_byte_fails(
        (size, index, extra) in size_index_extra(),
        seed: u64,
        which: usize,
        byte: usize,
        bit: u8,
    ) {
        let l = leaves(size + extra, seed);
        let tree = MerkleTree::from_leaf_hashes(l.iter().copied());
        let root = tree.root(size).unwrap();
        let proof = tree.inclusion_proof(index, size).unwrap();
        let leaf = l[index as usize];
        prop_assert!(verify_inclusion(&leaf, index, size, &proof, &root).is_ok());
        // A proof from a tree grown only to `size` is the same proof.
        let small = MerkleTree::from_leaf_hashes(l[..size as usize].iter().copied());
        prop_assert_eq!(&small.inclusion_proof(index, size).unwrap(), &proof);

        // Alter one bit of the leaf, the root, or one proof hash.
        let slots = proof.len() + 2;
        let target = which % slots;
        let (mut leaf2, mut root2, mut proof2) = (leaf, root, proof.clone());
        match target {
            0 => leaf2 = flip(&leaf, byte, bit),
            1 => root2 = flip(&root, byte, bit),
            i => proof2[i - 2] = flip(&proof[i - 2], byte, bit),
        }
        prop_assert!(verify_inclusion(&leaf2, index, size, &proof2, &root2).is_err());
        // Another index with the same proof fails too (the path's directions change).
        if size > 1 {
            let other = (index + 1 + (which as u64 % (size - 1))) % size;
            prop_assert!(verify_inclusion(&leaf, other, size, &proof, &root).is_err());
        }
        // Proofs one hash short or long are rejected.
        if !proof.is_empty() {
            prop_assert!(verify_inclusion(&leaf, index, size, &proof[1..], &root).is_err());
        }
        let mut longer = proof.clone();
        longer.push(root);
        prop_assert!(verify_inclusion(&leaf, index, size, &longer, &root).is_err());
    }

    #[test]
    fn consistency_verifies_and_any_altered_byte_fails(
        (second, first_seed, extra) in size_index_extra(),
        seed: u64,
        which: usize,
        byte: usize,
        bit: u8,
    ) {
        let first = first_seed; // 0 ≤ first < second
        let l = leaves(second + extra, seed);
        let tree = MerkleTree::from_leaf_hashes(l.iter().copied());
        let (r1, r2) = (tree.root(first).unwrap(), tree.root(second).unwrap());
        let proof = tree.consistency_proof(first, second).unwrap();
        prop_assert!(verify_consistency(first, second, &r1, &r2, &proof).is_ok());
        prop_assert!(verify_consistency(second, second, &r2, &r2, &[]).is_ok());

        let slots = proof.len() + 2;
        let target = which % slots;
        let (mut a, mut b, mut p) = (r1, r2, proof.clone());
        match target {
            0 => a = flip(&r1, byte, bit),
            // Any tree extends the empty one: the second root is only bound when first > 0.
            1 if first == 0 => a = flip(&r1, byte, bit),
            1 => b = flip(&r2, byte, bit),
            i => p[i - 2] = flip(&proof[i - 2], byte, bit),
        }
        prop_assert!(verify_consistency(first, second, &a, &b, &p).is_err());
        if !proof.is_empty() {
            prop_assert!(verify_consistency(first, second, &r1, &r2, &proof[..proof.len() - 1]).is_err());
        }
        let mut longer = proof.clone();
        longer.push(r2);
        prop_assert!(verify_consistency(first, second, &r1, &r2, &longer).is_err());
    }

    #[test]
    fn verification_of_garbage_never_panics(
        index: u64,
        size: u64,
        first: u64,
        second: u64,
        path in proptest::collection::vec(any::<[u8; 32]>(), 0..80),
        a: [u8; 32],
        b: [u8; 32],
    ) {
        let _ = verify_inclusion(&a, index, size, &path, &b);
        let _ = verify_inclusion(&a, index % 1000, size % 1000, &path, &b);
        let _ = verify_consistency(first, second, &a, &b, &path);
        let _ = verify_consistency(first % 1000, second % 1000, &a, &b, &path);
        // Random data essentially never verifies; the point is that nothing panicked and
        // the result is a typed answer.
        prop_assert!(verify_inclusion(&a, index, size, &path, &b).is_err() || a == b || !path.is_empty());
    }
}
