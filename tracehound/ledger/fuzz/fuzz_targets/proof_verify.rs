//! Fuzz proof verification with attacker-controlled sizes, indices and hashes, plus the
//! JSON bundle and signed-note parsers. Nothing may panic, and a genuine proof altered by
//! any non-zero mask must never verify.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tracehound_ledger::merkle::{
    leaf_hash, root_from_inclusion, verify_consistency, verify_inclusion, Hash, MerkleTree,
};
use tracehound_ledger::{verify_consistency_bundle, verify_inclusion_bundle, CheckpointVerifier};

/// Built once per run, so each execution only generates and checks proofs.
fn tree() -> &'static MerkleTree {
    static TREE: OnceLock<MerkleTree> = OnceLock::new();
    TREE.get_or_init(|| {
        MerkleTree::from_leaf_hashes((0..300u64).map(|i| leaf_hash(&i.to_le_bytes())))
    })
}

fn u64_at(data: &[u8], at: usize) -> u64 {
    let mut le = [0u8; 8];
    for (i, b) in le.iter_mut().enumerate() {
        *b = data.get(at + i).copied().unwrap_or(0);
    }
    u64::from_le_bytes(le)
}

fn hashes(data: &[u8]) -> Vec<Hash> {
    data.chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    // 1. Raw verification on arbitrary numbers and hashes.
    let (a, b, c, d) = (
        u64_at(data, 0),
        u64_at(data, 8),
        u64_at(data, 16),
        u64_at(data, 24),
    );
    let hs = hashes(data.get(32..).unwrap_or_default());
    let (x, y) = (
        hs.first().copied().unwrap_or_default(),
        hs.get(1).copied().unwrap_or_default(),
    );
    let path = hs.get(2..).unwrap_or_default();
    let _ = verify_inclusion(&x, a, b, path, &y);
    let _ = root_from_inclusion(&x, a % 4096, b % 4096, path);
    let _ = verify_consistency(c, d, &x, &y, path);
    let _ = verify_consistency(c % 4096, d % 4096, &x, &y, path);

    // 2. A genuine proof, altered by a mask taken from the input. The tree is built once;
    // proofs are taken at any size up to its length.
    let tree = tree();
    let size = a % tree.len() + 1;
    let index = b % size;
    let (Some(root), Some(leaf), Ok(mut proof)) = (
        tree.root(size),
        tree.leaf(index),
        tree.inclusion_proof(index, size),
    ) else {
        panic!("a tree must prove its own leaves");
    };
    assert!(verify_inclusion(&leaf, index, size, &proof, &root).is_ok());
    if let (Some(&pos), Some(&mask)) = (data.get(32), data.get(33)) {
        if mask != 0 && !proof.is_empty() {
            let slot = pos as usize % proof.len();
            if let Some(h) = proof.get_mut(slot) {
                h[pos as usize % 32] ^= mask;
            }
            assert!(verify_inclusion(&leaf, index, size, &proof, &root).is_err());
        }
    }
    let first = c % (size + 1);
    if let (Some(r1), Ok(mut cproof)) = (tree.root(first), tree.consistency_proof(first, size)) {
        assert!(verify_consistency(first, size, &r1, &root, &cproof).is_ok());
        if let (Some(&pos), Some(&mask)) = (data.get(34), data.get(35)) {
            if mask != 0 && !cproof.is_empty() {
                let slot = pos as usize % cproof.len();
                if let Some(h) = cproof.get_mut(slot) {
                    h[pos as usize % 32] ^= mask;
                }
                assert!(verify_consistency(first, size, &r1, &root, &cproof).is_err());
            }
        }
    }

    // 3. Text parsers: bundles, verifier keys, signed notes.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = verify_inclusion_bundle(text, None);
        let _ = verify_consistency_bundle(text);
        if let Ok(v) = CheckpointVerifier::from_verifier_key(text) {
            let _ = v.verify(text);
        }
        if let Ok(v) = CheckpointVerifier::new("k", [7; 32]) {
            let _ = v.verify(text);
            let _ = verify_inclusion_bundle(text, Some(&v));
        }
    }
});
