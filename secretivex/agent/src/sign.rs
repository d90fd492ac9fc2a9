//! SIGN_REQUEST: find the key (unlocking a pending key file if need be), OpenSSH's
//! destination-constraint checks, the policy gate (with approval windows), `ssh-add -c`
//! confirmation, then a signer.
//!
//! Prompts of either kind run before a signer is taken, so they never hold one.

use std::sync::Arc;
use std::time::Instant;

use secretivex_audit::{Event, Outcome as AuditOutcome};
use secretivex_proto::{Response, SignRequest};

use crate::confirm;
use crate::destination;
use crate::handler::{status, ConnState, Reply};
use crate::keyops::{self, KeysCertInspector};
use crate::keystore::Identity;
use crate::metrics::FailureReason;
use crate::pending;
use crate::policy_gate;
use crate::signer::{SignError, Signed};
use crate::Agent;

pub(crate) async fn sign_request(
    agent: &Arc<Agent>,
    conn: &mut ConnState,
    req: SignRequest,
    arrived: Instant,
) -> Reply {
    let SignRequest {
        key_blob,
        data,
        flags,
    } = req;
    let id = match agent.keys.find(&key_blob) {
        Some(id) => Some(id),
        // A configured key file that unlocks on first use, unless the policy would deny
        // the key anyway (then nobody is asked for its passphrase).
        None if policy_gate::may_unlock_for(agent, conn, &key_blob, &data)
            && pending::unlock_for_sign(agent, &key_blob).await =>
        {
            agent.keys.find(&key_blob)
        }
        None => None,
    };
    let Some(id) = id else {
        agent.metrics.failed(FailureReason::UnknownKey);
        tracing::debug!(uid = conn.peer.uid, "sign request for an unknown key");
        policy_gate::record(
            agent,
            conn,
            Event::Sign,
            None,
            AuditOutcome::Failed,
            arrived,
        );
        return status(false);
    };
    let mut destination_note = None;
    if !id.destinations.is_empty() {
        match check_destination(conn, &id, &data) {
            Ok(user) => {
                destination_note = Some(format!(
                    "public key authentication request for user \"{user}\" to listed host"
                ));
            }
            Err(reason) => {
                tracing::warn!(
                    uid = conn.peer.uid,
                    fingerprint = %id.fingerprint,
                    reason,
                    "refused use of destination-constrained key"
                );
                agent.metrics.failed(FailureReason::Refused);
                let fp = Some(id.fingerprint.as_str());
                policy_gate::record(agent, conn, Event::Sign, fp, AuditOutcome::Deny, arrived);
                return status(false);
            }
        }
    }
    let Some(pass) = policy_gate::gate_sign(agent, conn, &id, &data, arrived).await else {
        return status(false);
    };
    let mut prompted = pass.prompted;
    if id.confirm {
        let program = confirm::askpass_program(agent.config.askpass.as_deref());
        let prompt =
            confirm::confirm_prompt(&id.comment, &id.fingerprint, destination_note.as_deref());
        if !Box::pin(confirm::ask_permission(&program, &prompt)).await {
            tracing::info!(uid = conn.peer.uid, fingerprint = %id.fingerprint, "user refused key use");
            agent.metrics.failed(FailureReason::Refused);
            pass.finish(false);
            return status(false);
        }
        prompted = true;
    }
    if prompted && !still_usable(agent, &key_blob, &id) {
        pass.finish(false);
        return status(false);
    }
    if id.external.is_some() {
        let reply = crate::sign_external::sign(agent, conn, &id, data, flags, pass, arrived);
        return Box::pin(reply).await;
    }
    let Some(key) = id.key.clone() else {
        pass.finish(false);
        return status(false); // sealed: the agent is being locked or unlocked
    };
    // Every algorithm, legacy `ssh-rsa` (flags 0 on an RSA key) included, is made by the
    // parsed key pair in `secretivex-keys`.
    let algorithm = key.algorithm();
    let signed = agent.signer.sign(key, data, flags).await;
    pass.finish(signed.is_ok());
    match signed {
        Ok(Signed {
            signature,
            queue_wait,
        }) => {
            agent.metrics.queue_waited(queue_wait);
            agent.metrics.signed(algorithm, arrived.elapsed());
            tracing::debug!(uid = conn.peer.uid, pid = conn.peer.pid, fingerprint = %id.fingerprint, "signed");
            Response::SignResponse(signature).into()
        }
        Err(SignError::Timeout(limit)) => {
            agent.metrics.failed(FailureReason::SignTimeout);
            // Debug only: under overload this fires for many requests a second.
            tracing::debug!(fingerprint = %id.fingerprint, limit_ms = limit.as_millis() as u64, "no signer free in time");
            status(false)
        }
        Err(e) => {
            agent.metrics.failed(FailureReason::SignError);
            tracing::warn!(fingerprint = %id.fingerprint, error = %e, "signing failed");
            status(false)
        }
    }
}

/// After a prompt (which may have taken long) the key must still be there, unchanged,
/// and the agent open.
fn still_usable(agent: &Agent, blob: &[u8], id: &Identity) -> bool {
    let same = agent
        .keys
        .find(blob)
        .is_some_and(|now| now.serial == id.serial);
    same && !agent.lock.is_locked()
}

/// OpenSSH's checks for a destination-constrained key (process_sign_request2): the data
/// must be a userauth request for this key, on a bound connection, for the most recently
/// bound session, to a permitted destination. Returns the target user.
fn check_destination(conn: &ConnState, id: &Identity, data: &[u8]) -> Result<String, &'static str> {
    let Some(last) = conn.binds.binds().last() else {
        return Err("signing on an unbound connection");
    };
    let req =
        secretivex_proto::parse_userauth_request(data).ok_or("data is not a userauth request")?;
    if req.session_id.is_empty()
        || req.service != "ssh-connection"
        || !(req.method == "publickey" || req.method == "publickey-hostbound-v00@openssh.com")
        || req.key_blob != id.blob
        || !keyops::algorithm_matches_key(&req.algorithm, &id.blob)
    {
        return Err("data is not a userauth request for this key");
    }
    destination::identity_permitted(
        &id.destinations,
        &conn.binds,
        Some(&req.user),
        &KeysCertInspector,
    )
    .map_err(|_| "destination not permitted")?;
    if req.session_id != last.session_id {
        return Err("session id is not the most recently bound one");
    }
    match &req.server_host_key {
        None if conn.binds.binds().len() > 1 => {
            Err("no host key in the request on a forwarded connection")
        }
        Some(host_key) if *host_key != last.host_key => {
            Err("host key differs from the most recently bound one")
        }
        _ => Ok(req.user),
    }
}
