//! Tracehound cold storage. (Skeleton: filled in by the cold-storage work of issue 7.)
