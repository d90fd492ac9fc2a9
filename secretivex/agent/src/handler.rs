//! Request → reply, with OpenSSH's agent semantics.
//!
//! While locked, only UNLOCK works; listing answers an empty list; `session-bind` and
//! `query` are still served (OpenSSH 10.5 accepts binds while locked, so forwarded
//! sessions set up then are not mistaken for local use); REMOVE_ALL is honoured as
//! RFC 9987 recommends. Everything else fails.

use std::sync::Arc;
use std::time::Duration;

use secretivex_proto::{
    msg, AddIdentity, Constraint, ExtensionRequest, Request, Response, SessionBind, SignRequest,
};
use zeroize::Zeroizing;

use crate::confirm;
use crate::destination::{self, Bind, SessionBinds};
use crate::keyops::{self, KeysCertInspector};
use crate::keystore::{self, AddOutcome, Identity, NewIdentity};
use crate::lock::LockHash;
use crate::metrics::FailureReason;
use crate::peer::Peer;
use crate::signer::{SignError, Signed};
use crate::Agent;

/// Per-connection state.
pub(crate) struct ConnState {
    pub peer: Peer,
    pub binds: SessionBinds,
}

impl ConnState {
    pub fn new(peer: Peer) -> ConnState {
        ConnState {
            peer,
            binds: SessionBinds::default(),
        }
    }
}

/// A reply: either a frame shared by many connections or a response to encode.
pub(crate) enum Reply {
    Shared(Arc<Vec<u8>>),
    Response(Response),
}

impl From<Response> for Reply {
    fn from(r: Response) -> Reply {
        Reply::Response(r)
    }
}

fn status(ok: bool) -> Reply {
    Reply::Response(if ok {
        Response::Success
    } else {
        Response::Failure
    })
}

/// Handles one request body (type byte + contents).
///
/// Rare requests with large futures (add, lock, unlock, confirmation prompts) are boxed:
/// this future is part of every connection task, whose allocation is made per connection,
/// and a small task stays in the allocator's fast per-thread cache.
pub(crate) async fn handle(agent: &Arc<Agent>, conn: &mut ConnState, body: &[u8]) -> Reply {
    agent.keys.sweep_expired();
    let request = match Request::decode(body) {
        Ok(r) => r,
        Err(e) => {
            if is_session_bind_body(body) {
                // A malformed bind still makes the connection "remote" (fail closed).
                conn.binds.mark_attempted();
            }
            tracing::debug!(uid = conn.peer.uid, msg_type = body.first().copied(), error = %e, "undecodable request");
            return status(false);
        }
    };

    if agent.lock.is_locked() {
        return match request {
            Request::Unlock { passphrase } => Box::pin(unlock(agent, passphrase)).await,
            Request::RequestIdentities => Response::Identities(Vec::new()).into(),
            Request::Extension(ExtensionRequest::SessionBind(bind)) => session_bind(conn, bind),
            Request::Extension(ExtensionRequest::Query) => query(),
            Request::RemoveAllIdentities => remove_all(agent),
            other => {
                tracing::debug!(request = request_name(&other), "refused while locked");
                status(false)
            }
        };
    }

    match request {
        Request::RequestIdentities => list(agent, conn),
        Request::Sign(sign) => sign_request(agent, conn, sign).await,
        Request::AddIdentity(add) => Box::pin(add_identity(agent, conn, add)).await,
        Request::RemoveIdentity { key_blob } => remove(agent, conn, &key_blob),
        Request::RemoveAllIdentities => remove_all(agent),
        Request::AddSmartcardKey(_) | Request::RemoveSmartcardKey { .. } => {
            tracing::info!("smartcard keys are not supported");
            status(false)
        }
        Request::Lock { passphrase } => Box::pin(lock(agent, passphrase)).await,
        Request::Unlock { .. } => status(false), // not locked
        Request::Extension(ExtensionRequest::Query) => query(),
        Request::Extension(ExtensionRequest::SessionBind(bind)) => session_bind(conn, bind),
        Request::Extension(ExtensionRequest::Other { name, .. }) => {
            tracing::debug!(extension = %name, "unsupported extension");
            status(false)
        }
        Request::Unknown { msg_type } => {
            tracing::debug!(msg_type, "unknown message type");
            status(false)
        }
    }
}

fn request_name(r: &Request) -> &'static str {
    match r {
        Request::RequestIdentities => "request-identities",
        Request::Sign(_) => "sign",
        Request::AddIdentity(_) => "add-identity",
        Request::RemoveIdentity { .. } => "remove-identity",
        Request::RemoveAllIdentities => "remove-all",
        Request::AddSmartcardKey(_) => "add-smartcard-key",
        Request::RemoveSmartcardKey { .. } => "remove-smartcard-key",
        Request::Lock { .. } => "lock",
        Request::Unlock { .. } => "unlock",
        Request::Extension(_) => "extension",
        Request::Unknown { .. } => "unknown",
    }
}

/// True when `body` is an EXTENSION message naming `session-bind@openssh.com`.
fn is_session_bind_body(body: &[u8]) -> bool {
    const NAME: &[u8] = b"session-bind@openssh.com";
    let Some((&msg::EXTENSION, rest)) = body.split_first() else {
        return false;
    };
    let Some(len) = rest.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()) else {
        return false;
    };
    u32::from_be_bytes(len) as usize == NAME.len() && rest.get(4..4 + NAME.len()) == Some(NAME)
}

fn visible(conn: &ConnState, id: &Identity) -> bool {
    destination::identity_permitted(&id.destinations, &conn.binds, None, &KeysCertInspector).is_ok()
}

fn list(agent: &Agent, conn: &ConnState) -> Reply {
    if conn.binds.is_remote() && agent.keys.has_destination_constraints() {
        let ids = agent.keys.snapshot();
        let frame =
            keystore::encode_identities(ids.iter().map(|i| &**i).filter(|i| visible(conn, i)));
        return Reply::Shared(Arc::new(frame));
    }
    Reply::Shared(agent.keys.answer_frame())
}

async fn sign_request(agent: &Arc<Agent>, conn: &ConnState, req: SignRequest) -> Reply {
    let SignRequest {
        key_blob,
        data,
        flags,
    } = req;
    let arrived = std::time::Instant::now();
    let Some(id) = agent.keys.find(&key_blob) else {
        agent.metrics.failed(FailureReason::UnknownKey);
        tracing::debug!(uid = conn.peer.uid, "sign request for an unknown key");
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
                return status(false);
            }
        }
    }
    if id.confirm {
        let program = confirm::askpass_program(agent.config.askpass.as_deref());
        let prompt =
            confirm::confirm_prompt(&id.comment, &id.fingerprint, destination_note.as_deref());
        if !Box::pin(confirm::ask_permission(&program, &prompt)).await {
            tracing::info!(uid = conn.peer.uid, fingerprint = %id.fingerprint, "user refused key use");
            agent.metrics.failed(FailureReason::Refused);
            return status(false);
        }
        // The prompt may have taken long: the key must still be there, and the agent open.
        let still_there = agent
            .keys
            .find(&key_blob)
            .is_some_and(|now| now.serial == id.serial);
        if !still_there || agent.lock.is_locked() {
            return status(false);
        }
    }
    let Some(key) = id.key.clone() else {
        return status(false); // sealed: the agent is being locked or unlocked
    };
    // Every algorithm, legacy `ssh-rsa` (flags 0 on an RSA key) included, is made by the
    // parsed key pair in `secretivex-keys`.
    let algorithm = key.algorithm();
    let signed = agent.signer.sign(key, data, flags).await;
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

async fn add_identity(agent: &Arc<Agent>, conn: &ConnState, add: AddIdentity) -> Reply {
    let AddIdentity {
        key,
        comment,
        constraints,
    } = add;
    let mut lifetime: Option<Duration> = None;
    let mut confirm = false;
    let mut destinations = None;
    for c in constraints {
        match c {
            Constraint::Lifetime(secs) if lifetime.is_none() => {
                lifetime = Some(Duration::from_secs(u64::from(secs)));
            }
            Constraint::Confirm if !confirm => confirm = true,
            Constraint::RestrictDestination(d) if destinations.is_none() => {
                destinations = Some(d);
            }
            _ => {
                tracing::warn!("refused key with a repeated constraint");
                return status(false);
            }
        }
    }
    let destinations = destinations.unwrap_or_default();
    if let Err(e) = destination::validate_constraints(&destinations) {
        tracing::warn!(error = %e, "refused key with invalid destination constraints");
        return status(false);
    }
    // Key parsing (RSA validation in particular) is CPU work: keep it off async threads.
    let parsed = agent
        .signer
        .run(move || {
            let private = keyops::sealable_body(&key);
            keyops::key_from_wire(&key).map(|k| (k, private))
        })
        .await;
    let (key, private) = match parsed {
        Ok(Ok((k, private))) => (Arc::new(k), private),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "refused key that does not parse");
            return status(false);
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not parse key");
            return status(false);
        }
    };
    let blob = key.public_blob().to_vec();
    let fingerprint = key.fingerprint().to_string();
    let new = NewIdentity {
        key,
        private,
        blob,
        comment,
        fingerprint: fingerprint.clone(),
        lifetime: lifetime.or(agent.config.default_lifetime),
        confirm,
        destinations,
    };
    let constrained = !new.destinations.is_empty();
    let outcome = agent.keys.add(new, |existing| visible(conn, existing));
    tracing::info!(
        uid = conn.peer.uid,
        %fingerprint,
        ?outcome,
        lifetime_s = lifetime.or(agent.config.default_lifetime).map(|d| d.as_secs()),
        confirm,
        destination_constrained = constrained,
        "add identity"
    );
    status(matches!(outcome, AddOutcome::Added | AddOutcome::Replaced))
}

fn remove(agent: &Agent, conn: &ConnState, blob: &[u8]) -> Reply {
    let removed = agent.keys.remove(blob, |id| visible(conn, id));
    tracing::info!(uid = conn.peer.uid, removed, "remove identity");
    status(removed)
}

fn remove_all(agent: &Agent) -> Reply {
    let n = agent.keys.remove_all();
    tracing::info!(removed = n, "removed all identities");
    status(true)
}

async fn lock(agent: &Arc<Agent>, passphrase: Zeroizing<Vec<u8>>) -> Reply {
    if passphrase.is_empty() || agent.lock.is_locked() {
        return status(false);
    }
    // PBKDF2 takes tens of milliseconds: derive on a blocking thread.
    let derived = tokio::task::spawn_blocking(move || LockHash::new(&passphrase)).await;
    let Ok(Ok((hash, sealing))) = derived else {
        return status(false);
    };
    if agent.lock.lock_with(hash).is_err() {
        return status(false);
    }
    // Locked first, sealed second: a key whose add was already under way when the lock
    // came is sealed too; adds after this point are refused by the store.
    let sealed = agent.keys.seal_all(&sealing);
    tracing::info!(
        sealed,
        "agent locked; keys sealed under the lock passphrase"
    );
    status(true)
}

async fn unlock(agent: &Arc<Agent>, passphrase: Zeroizing<Vec<u8>>) -> Reply {
    let a = agent.clone();
    let result = tokio::task::spawn_blocking(move || {
        let sealing = a.lock.check_passphrase(&passphrase)?;
        let restored = a.keys.unseal_all(&sealing, keyops::key_from_sealable_body);
        a.lock.finish_unlock();
        Ok::<usize, crate::lock::LockError>(restored)
    })
    .await;
    match result {
        Ok(Ok(restored)) => {
            tracing::info!(restored, "agent unlocked");
            status(true)
        }
        Ok(Err(e)) => {
            let delay = agent.lock.failure_delay();
            tracing::warn!(error = %e, delay_ms = delay.as_millis() as u64, "unlock failed");
            // Only this connection waits; every other client is served meanwhile.
            tokio::time::sleep(delay).await;
            status(false)
        }
        Err(_) => status(false),
    }
}

fn query() -> Reply {
    let mut contents = Vec::new();
    for name in crate::SUPPORTED_EXTENSIONS {
        contents.extend_from_slice(&(name.len() as u32).to_be_bytes());
        contents.extend_from_slice(name.as_bytes());
    }
    Response::ExtensionResponse {
        name: "query".to_string(),
        contents,
    }
    .into()
}

fn session_bind(conn: &mut ConnState, bind: SessionBind) -> Reply {
    conn.binds.mark_attempted();
    let SessionBind {
        host_key,
        session_id,
        signature,
        is_forwarding,
    } = bind;
    if session_id.is_empty() || session_id.len() > destination::MAX_SESSION_ID_LEN {
        tracing::warn!(uid = conn.peer.uid, "session bind with a bad session id");
        return Response::ExtensionFailure.into();
    }
    if !keyops::verify_session_bind(&host_key, &session_id, &signature) {
        tracing::warn!(
            uid = conn.peer.uid,
            "session bind signature does not verify"
        );
        return Response::ExtensionFailure.into();
    }
    match conn.binds.record(Bind {
        host_key,
        session_id,
        forwarded: is_forwarding,
    }) {
        Ok(new) => {
            tracing::debug!(
                uid = conn.peer.uid,
                new,
                forwarded = is_forwarding,
                "session bound"
            );
            Response::Success.into()
        }
        Err(e) => {
            tracing::warn!(uid = conn.peer.uid, error = %e, "session bind refused");
            Response::ExtensionFailure.into()
        }
    }
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod handler_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_session_bind_bodies() {
        let mut body = vec![msg::EXTENSION];
        body.extend_from_slice(&24u32.to_be_bytes());
        body.extend_from_slice(b"session-bind@openssh.com");
        body.extend_from_slice(&[0, 0]);
        assert!(is_session_bind_body(&body));
        body[0] = msg::SIGN_REQUEST;
        assert!(!is_session_bind_body(&body));
        assert!(!is_session_bind_body(&[msg::EXTENSION, 0, 0]));
        assert!(!is_session_bind_body(&[]));
    }

    #[test]
    fn query_lists_supported_extensions() {
        let Reply::Response(Response::ExtensionResponse { name, contents }) = query() else {
            panic!("query must answer an extension response");
        };
        assert_eq!(name, "query");
        let mut names = Vec::new();
        let mut rest = &contents[..];
        while !rest.is_empty() {
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            names.push(std::str::from_utf8(&rest[4..4 + len]).unwrap().to_string());
            rest = &rest[4 + len..];
        }
        assert_eq!(names, vec!["query", "session-bind@openssh.com"]);
    }
}
