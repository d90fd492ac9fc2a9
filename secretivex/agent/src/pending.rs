//! Encrypted key files configured to unlock on first use. (Skeleton: filled in by the
//! configuration work of issue 6.)

use crate::Agent;

/// Called by the sign path when no loaded key has `blob`: unlocks a pending key file with
/// that public key (through askpass) and loads it. Returns whether the key is now loaded.
#[allow(dead_code)] // called by the sign path once it is wired (issue 6)
pub(crate) async fn unlock_for_sign(agent: &Agent, blob: &[u8]) -> bool {
    let _ = (agent, blob);
    false
}
