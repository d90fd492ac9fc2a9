//! The end of a sign request whose key lives in an external store (a PKCS#11 token):
//! every check of [`crate::sign`] has passed; the store signs, and the outcome is
//! counted per store.

use std::time::Instant;

use secretivex_proto::Response;

use crate::handler::{status, ConnState, Reply};
use crate::keystore::{ExternalSignError, Identity};
use crate::metrics::FailureReason;
use crate::policy_gate::SignPass;
use crate::Agent;

pub(crate) async fn sign(
    agent: &Agent,
    conn: &ConnState,
    id: &Identity,
    data: Vec<u8>,
    flags: u32,
    pass: SignPass,
    arrived: Instant,
) -> Reply {
    let Some(key) = id.external.clone() else {
        pass.finish(false);
        return status(false);
    };
    let started = Instant::now();
    let signed = key.sign(data, flags).await;
    pass.finish(signed.is_ok());
    let store = key.store();
    match signed {
        Ok(signature) => {
            agent
                .metrics
                .store_signed(store, key.key_type(), started.elapsed(), arrived.elapsed());
            tracing::debug!(uid = conn.peer.uid, store, fingerprint = %id.fingerprint, "signed");
            Response::SignResponse(signature).into()
        }
        Err(e) => {
            let (reason, label) = match &e {
                ExternalSignError::Timeout(_) => (FailureReason::SignTimeout, "timeout"),
                ExternalSignError::Unavailable(_) => (FailureReason::SignError, "unavailable"),
                ExternalSignError::Failed(_) => (FailureReason::SignError, "failed"),
            };
            agent.metrics.failed(reason);
            agent.metrics.store_failed(store, label);
            // Timeouts are debug only: under overload they fire many times a second.
            if matches!(e, ExternalSignError::Timeout(_)) {
                tracing::debug!(store, fingerprint = %id.fingerprint, error = %e, "token signature failed");
            } else {
                tracing::warn!(store, fingerprint = %id.fingerprint, error = %e, "token signature failed");
            }
            status(false)
        }
    }
}
