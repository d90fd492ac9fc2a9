//! Tracehound's durable audit log: append-only segments, an RFC 6962 Merkle tree, proofs and signed checkpoints
