//! Proof verification (RFC 9162 §2.1.3.2 and §2.1.4.2, the algorithms that replace
//! RFC 6962's informal description). Every input is untrusted: sizes are checked, proofs
//! of the wrong length are rejected, nothing indexes or overflows, nothing panics.

use super::{empty_root, node_hash, Hash, MAX_PROOF_HASHES};

/// Why a proof could not be produced or did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not smaller than the tree size.
    #[error("leaf index is not inside the tree")]
    IndexOutOfRange,
    /// The requested tree size is larger than the log.
    #[error("tree size is larger than the log")]
    SizeBeyondTree,
    /// A consistency proof was asked between a larger and a smaller tree.
    #[error("first tree size is larger than the second")]
    FirstAfterSecond,
    /// The proof has more hashes than any tree of that size needs.
    #[error("proof has too many hashes")]
    ProofTooLong,
    /// The proof has the wrong number of hashes for these sizes.
    #[error("proof has the wrong number of hashes for the tree size")]
    WrongProofLength,
    /// The proof was well formed but does not lead to the expected root.
    #[error("proof does not lead to the expected root hash")]
    RootMismatch,
}

/// Recomputes the root from a leaf hash and its inclusion proof. The result is only
/// meaningful if compared with a trusted root; use [`verify_inclusion`] for that.
pub fn root_from_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange);
    }
    if proof.len() > MAX_PROOF_HASHES {
        return Err(ProofError::ProofTooLong);
    }
    let mut fnode = index;
    // size ≥ 1 because index < size.
    let mut snode = size - 1;
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::WrongProofLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongProofLength);
    }
    Ok(r)
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves whose head is `root`.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if root_from_inclusion(leaf, index, size, proof)? == *root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Checks that the tree of `first` leaves with head `first_root` is a prefix of the tree
/// of `second` leaves with head `second_root`. Equal sizes need an empty proof and equal
/// roots; a first size of 0 needs an empty proof and the empty root.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::FirstAfterSecond);
    }
    if first == second || first == 0 {
        if !proof.is_empty() {
            return Err(ProofError::WrongProofLength);
        }
        let expected_first = if first == 0 {
            empty_root()
        } else {
            *second_root
        };
        return if *first_root == expected_first {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if proof.len() > MAX_PROOF_HASHES {
        return Err(ProofError::ProofTooLong);
    }
    // A power-of-two first tree is a complete subtree of the second: its root is the
    // proof's implicit first element.
    let (seed, rest) = if first.is_power_of_two() {
        (*first_root, proof)
    } else {
        match proof.split_first() {
            Some((seed, rest)) => (*seed, rest),
            None => return Err(ProofError::WrongProofLength),
        }
    };
    let mut fnode = first - 1;
    let mut snode = second - 1;
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let mut fr = seed;
    let mut sr = seed;
    for c in rest {
        if snode == 0 {
            return Err(ProofError::WrongProofLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongProofLength);
    }
    if fr == *first_root && sr == *second_root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}
