//! The Certificate Transparency reference vectors for RFC 6962: eight leaves, the tree
//! heads of every prefix, and the published inclusion and consistency proofs.

use tracehound_ledger::merkle::{
    empty_root, leaf_hash, verify_consistency, verify_inclusion, Hash, MerkleTree, ProofError,
};

const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// Tree heads of the first 0..=8 leaves.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (leaf index, tree size, proof)
const INCLUSION: [(u64, u64, &[&str]); 4] = [
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// (first size, second size, proof)
const CONSISTENCY: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        2,
        8,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

fn h(text: &str) -> Hash {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).expect("vector hash");
    out
}

fn hashes(texts: &[&str]) -> Vec<Hash> {
    texts.iter().map(|t| h(t)).collect()
}

fn tree() -> MerkleTree {
    MerkleTree::from_leaf_hashes(
        LEAVES
            .iter()
            .map(|l| leaf_hash(&hex::decode(l).expect("vector leaf"))),
    )
}

#[test]
fn tree_heads_of_every_prefix_match() {
    let t = tree();
    assert_eq!(empty_root(), h(ROOTS[0]));
    for (size, root) in ROOTS.iter().enumerate() {
        assert_eq!(t.root(size as u64), Some(h(root)), "size {size}");
        // The same heads come out of trees grown only to that size.
        let prefix = MerkleTree::from_leaf_hashes((0..size).filter_map(|i| t.leaf(i as u64)));
        assert_eq!(prefix.root(size as u64), Some(h(root)), "grown to {size}");
    }
    assert_eq!(t.root(9), None);
}

#[test]
fn inclusion_proofs_match_and_verify() {
    let t = tree();
    for (index, size, proof) in INCLUSION {
        let want = hashes(proof);
        assert_eq!(
            t.inclusion_proof(index, size).unwrap(),
            want,
            "PATH({index}, {size})"
        );
        let leaf = t.leaf(index).unwrap();
        let root = h(ROOTS[size as usize]);
        assert_eq!(verify_inclusion(&leaf, index, size, &want, &root), Ok(()));
        assert_eq!(
            verify_inclusion(&leaf, index, size, &want, &h(ROOTS[0])),
            Err(ProofError::RootMismatch)
        );
    }
}

#[test]
fn consistency_proofs_match_and_verify() {
    let t = tree();
    for (first, second, proof) in CONSISTENCY {
        let want = hashes(proof);
        assert_eq!(
            t.consistency_proof(first, second).unwrap(),
            want,
            "PROOF({first}, {second})"
        );
        let (r1, r2) = (h(ROOTS[first as usize]), h(ROOTS[second as usize]));
        assert_eq!(verify_consistency(first, second, &r1, &r2, &want), Ok(()));
        if first != second {
            assert_eq!(
                verify_consistency(first, second, &r2, &r2, &want),
                Err(ProofError::RootMismatch),
                "{first} -> {second} with a wrong first root"
            );
        }
    }
}

#[test]
fn degenerate_inputs_are_rejected_not_panicked_on() {
    let t = tree();
    let root8 = h(ROOTS[8]);
    let leaf = t.leaf(5).unwrap();
    let proof = t.inclusion_proof(5, 8).unwrap();
    assert_eq!(
        verify_inclusion(&leaf, 8, 8, &proof, &root8),
        Err(ProofError::IndexOutOfRange)
    );
    assert_eq!(
        verify_inclusion(&leaf, 0, 0, &[], &root8),
        Err(ProofError::IndexOutOfRange)
    );
    assert_eq!(
        verify_inclusion(&leaf, 5, 8, &proof[..2], &root8),
        Err(ProofError::WrongProofLength)
    );
    let mut longer = proof.clone();
    longer.push([0xab; 32]);
    assert_eq!(
        verify_inclusion(&leaf, 5, 8, &longer, &root8),
        Err(ProofError::WrongProofLength)
    );
    assert_eq!(
        verify_inclusion(&leaf, u64::MAX - 1, u64::MAX, &vec![[0; 32]; 200], &root8),
        Err(ProofError::ProofTooLong)
    );
    // At the largest sizes exactly one proof length is well formed; others are rejected
    // by length, before any comparison with the root.
    for (index, size) in [
        (u64::MAX - 1, u64::MAX),
        (0, u64::MAX),
        (1 << 40, (1 << 40) + 1),
    ] {
        let well_formed = (0..=66)
            .filter(|&n| {
                verify_inclusion(&leaf, index, size, &vec![[0; 32]; n], &root8)
                    == Err(ProofError::RootMismatch)
            })
            .count();
        assert_eq!(well_formed, 1, "index {index} of {size}");
    }
    assert_eq!(t.inclusion_proof(8, 8), Err(ProofError::IndexOutOfRange));
    assert_eq!(t.inclusion_proof(0, 9), Err(ProofError::SizeBeyondTree));

    let r6 = h(ROOTS[6]);
    let cproof = t.consistency_proof(6, 8).unwrap();
    assert_eq!(
        verify_consistency(8, 6, &root8, &r6, &cproof),
        Err(ProofError::FirstAfterSecond)
    );
    assert_eq!(
        verify_consistency(6, 8, &r6, &root8, &[]),
        Err(ProofError::WrongProofLength)
    );
    assert_eq!(
        verify_consistency(4, 8, &h(ROOTS[4]), &root8, &[]),
        Err(ProofError::WrongProofLength)
    );
    assert_eq!(
        verify_consistency(4, 4, &h(ROOTS[4]), &h(ROOTS[4]), &[]),
        Ok(())
    );
    assert_eq!(
        verify_consistency(4, 4, &h(ROOTS[4]), &h(ROOTS[5]), &[]),
        Err(ProofError::RootMismatch)
    );
    assert_eq!(
        verify_consistency(4, 4, &h(ROOTS[4]), &h(ROOTS[4]), &[[0; 32]]),
        Err(ProofError::WrongProofLength)
    );
    assert_eq!(verify_consistency(0, 8, &empty_root(), &root8, &[]), Ok(()));
    assert_eq!(
        verify_consistency(0, 8, &h(ROOTS[1]), &root8, &[]),
        Err(ProofError::RootMismatch)
    );
    assert_eq!(t.consistency_proof(5, 3), Err(ProofError::FirstAfterSecond));
    assert_eq!(t.consistency_proof(0, 9), Err(ProofError::SizeBeyondTree));
}
