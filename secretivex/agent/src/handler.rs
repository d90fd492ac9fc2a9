//! Request → reply, with OpenSSH's agent semantics.
//!
//! While locked, only UNLOCK works; listing answers an empty list; `session-bind` and
//! `query` are still served (OpenSSH 10.5 accepts binds while locked, so forwarded
//! sessions set up then are not mistaken for local use); REMOVE_ALL is honoured as
//! RFC 9987 recommends. Everything else fails.

use std::sync::Arc;
use std::time::{Duration, Instant};

use secretivex_audit::{Event, Outcome as AuditOutcome};
use secretivex_proto::{
    msg, AddIdentity, Constraint, ExtensionRequest, Request, Response, SessionBind,
};
use zeroize::Zeroizing;

use crate::destination::{self, Bind, SessionBinds};
use crate::keyops::{self, KeysCertInspector};
use crate::keystore::{self, AddOutcome, Identity, NewIdentity};
use crate::lock::LockHash;
use crate::peer::Peer;
use crate::peer_process::PeerProcess;
use crate::policy_gate;
use crate::Agent;

/// The facts of a peer whose `/proc` entry was not read (or could not be).
static UNKNOWN_PROCESS: PeerProcess = PeerProcess {
    exe: None,
    name: None,
};

/// Per-connection state.
pub(crate) struct ConnState {
    pub peer: Peer,
    pub binds: SessionBinds,
    /// The peer's executable and name, read from `/proc` on first need.
    process: Option<PeerProcess>,
}

impl ConnState {
    pub fn new(peer: Peer) -> ConnState {
        ConnState {
            peer,
            binds: SessionBinds::default(),
            process: None,
        }
    }

    /// Reads the peer's executable and name, once per connection.
    pub fn load_process(&mut self) {
        if self.process.is_none() {
            self.process = Some(PeerProcess::read(self.peer.pid));
        }
    }

    /// The peer's executable and name as far as known (unknown until [`Self::load_process`]).
    pub fn process(&self) -> &PeerProcess {
        self.process.as_ref().unwrap_or(&UNKNOWN_PROCESS)
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

pub(crate) fn status(ok: bool) -> Reply {
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
    let arrived = Instant::now();
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
            Request::Unlock { passphrase } => {
                Box::pin(unlock(agent, conn, passphrase, arrived)).await
            }
            Request::RequestIdentities => Response::Identities(Vec::new()).into(),
            Request::Extension(ExtensionRequest::SessionBind(bind)) => session_bind(conn, bind),
            Request::Extension(ExtensionRequest::Query) => query(),
            Request::RemoveAllIdentities => remove_all(agent, conn, arrived),
            other => {
                tracing::debug!(request = request_name(&other), "refused while locked");
                status(false)
            }
        };
    }

    match request {
        Request::RequestIdentities => list(agent, conn),
        Request::Sign(sign) => {
            Box::pin(crate::sign::sign_request(agent, conn, sign, arrived)).await
        }
        Request::AddIdentity(add) => Box::pin(add_identity(agent, conn, add, arrived)).await,
        Request::RemoveIdentity { key_blob } => remove(agent, conn, &key_blob, arrived),
        Request::RemoveAllIdentities => remove_all(agent, conn, arrived),
        Request::AddSmartcardKey(key) => {
            Box::pin(crate::smartcard::add(agent, conn, key, arrived)).await
        }
        Request::RemoveSmartcardKey { id, pin } => {
            crate::smartcard::remove(agent, conn, &id, pin, arrived)
        }
        Request::Lock { passphrase } => Box::pin(lock(agent, conn, passphrase, arrived)).await,
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

pub(crate) fn visible(conn: &ConnState, id: &Identity) -> bool {
    destination::identity_permitted(&id.destinations, &conn.binds, None, &KeysCertInspector).is_ok()
}

fn list(agent: &Agent, conn: &mut ConnState) -> Reply {
    if let Some(frame) = policy_gate::filtered_list(agent, conn, visible) {
        return Reply::Shared(frame);
    }
    if conn.binds.is_remote() && agent.keys.has_destination_constraints() {
        let ids = agent.keys.snapshot();
        // First-use keys carry no destination constraints: they are listed as they are.
        let pending = agent.keys.pending_keys();
        let frame = keystore::encode_listing(
            ids.iter().map(|i| &**i).filter(|i| visible(conn, i)),
            pending.iter().map(|p| &**p),
        );
        return Reply::Shared(Arc::new(frame));
    }
    Reply::Shared(agent.keys.answer_frame())
}

async fn add_identity(
    agent: &Arc<Agent>,
    conn: &mut ConnState,
    add: AddIdentity,
    arrived: Instant,
) -> Reply {
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
    let added = matches!(outcome, AddOutcome::Added | AddOutcome::Replaced);
    audit(agent, conn, Event::Add, Some(&fingerprint), added, arrived);
    status(added)
}

/// Records an add, remove, lock or unlock in the audit trail (when it is on).
fn audit(
    agent: &Agent,
    conn: &mut ConnState,
    event: Event,
    fingerprint: Option<&str>,
    ok: bool,
    arrived: Instant,
) {
    let outcome = if ok {
        AuditOutcome::Allow
    } else {
        AuditOutcome::Failed
    };
    policy_gate::record(agent, conn, event, fingerprint, outcome, arrived);
}

fn remove(agent: &Agent, conn: &mut ConnState, blob: &[u8], arrived: Instant) -> Reply {
    let fingerprint = agent.keys.find(blob).map(|id| id.fingerprint.clone());
    let removed = agent.keys.remove(blob, |id| visible(conn, id));
    tracing::info!(uid = conn.peer.uid, removed, "remove identity");
    audit(
        agent,
        conn,
        Event::Remove,
        fingerprint.as_deref(),
        removed,
        arrived,
    );
    status(removed)
}

fn remove_all(agent: &Agent, conn: &mut ConnState, arrived: Instant) -> Reply {
    // Token modules go too, as in OpenSSH (their keys would otherwise come back).
    let tokens = crate::pkcs11_store::remove_all(agent);
    let n = agent.keys.remove_all();
    tracing::info!(removed = n + tokens, "removed all identities");
    audit(agent, conn, Event::Remove, None, true, arrived);
    status(true)
}

async fn lock(
    agent: &Arc<Agent>,
    conn: &mut ConnState,
    passphrase: Zeroizing<Vec<u8>>,
    arrived: Instant,
) -> Reply {
    let reply = lock_agent(agent, passphrase).await;
    let ok = matches!(reply, Reply::Response(Response::Success));
    if ok {
        // An approval given before the lock does not outlive it.
        agent.approvals.clear();
    }
    audit(agent, conn, Event::Lock, None, ok, arrived);
    reply
}

async fn lock_agent(agent: &Arc<Agent>, passphrase: Zeroizing<Vec<u8>>) -> Reply {
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

async fn unlock(
    agent: &Arc<Agent>,
    conn: &mut ConnState,
    passphrase: Zeroizing<Vec<u8>>,
    arrived: Instant,
) -> Reply {
    let reply = unlock_agent(agent, passphrase).await;
    let ok = matches!(reply, Reply::Response(Response::Success));
    audit(agent, conn, Event::Unlock, None, ok, arrived);
    reply
}

async fn unlock_agent(agent: &Arc<Agent>, passphrase: Zeroizing<Vec<u8>>) -> Reply {
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
