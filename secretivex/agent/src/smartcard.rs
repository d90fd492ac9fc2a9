//! ADD_SMARTCARD_KEY(_CONSTRAINED) and REMOVE_SMARTCARD_KEY (`ssh-add -s` / `-e`): the
//! request side of [`crate::pkcs11_store`], with OpenSSH's rules: the module path must
//! be in the allow-list after `realpath`, and a forwarded connection may not add one
//! unless `allow_remote` is set. Refusals are logged with their reason (the protocol
//! can only answer FAILURE) and audited like any add or remove.

use std::sync::Arc;
use std::time::{Duration, Instant};

use secretivex_audit::{Event, Outcome};
use secretivex_proto::{Constraint, SmartcardKey};
use zeroize::Zeroizing;

use crate::handler::{status, ConnState, Reply};
use crate::pkcs11_store::{self, ModuleConstraints};
use crate::{destination, policy_gate, Agent};

/// `ssh-add -s MODULE`.
pub(crate) async fn add(
    agent: &Arc<Agent>,
    conn: &mut ConnState,
    key: SmartcardKey,
    arrived: Instant,
) -> Reply {
    let SmartcardKey {
        id,
        pin,
        constraints,
    } = key;
    let Some(constraints) = module_constraints(agent, constraints) else {
        tracing::warn!(module = %id, "refused PKCS#11 module with invalid or repeated constraints");
        policy_gate::record(agent, conn, Event::Add, None, Outcome::Failed, arrived);
        return status(false);
    };
    let forwarded = conn.binds.is_remote();
    let origin = pkcs11_store::Origin::Client { forwarded };
    let result = pkcs11_store::add_module(agent, &id, pin, constraints, origin).await;
    let ok = match result {
        Ok(n) => {
            tracing::info!(uid = conn.peer.uid, module = %id, keys = n, "PKCS#11 module added");
            true
        }
        Err(e) => {
            tracing::warn!(uid = conn.peer.uid, module = %id, error = %e, "PKCS#11 module refused");
            false
        }
    };
    let outcome = if ok { Outcome::Allow } else { Outcome::Failed };
    policy_gate::record(agent, conn, Event::Add, None, outcome, arrived);
    status(ok)
}

/// `ssh-add -e MODULE`. The PIN OpenSSH sends along is ignored, as OpenSSH does.
pub(crate) fn remove(
    agent: &Agent,
    conn: &mut ConnState,
    id: &str,
    _pin: Zeroizing<Vec<u8>>,
    arrived: Instant,
) -> Reply {
    let ok = match pkcs11_store::remove_module(agent, id) {
        Ok(n) => {
            tracing::info!(uid = conn.peer.uid, module = %id, keys = n, "PKCS#11 module removed");
            true
        }
        Err(e) => {
            tracing::info!(uid = conn.peer.uid, module = %id, error = %e, "PKCS#11 module not removed");
            false
        }
    };
    let outcome = if ok { Outcome::Allow } else { Outcome::Failed };
    policy_gate::record(agent, conn, Event::Remove, None, outcome, arrived);
    status(ok)
}

/// Each constraint kind at most once, valid destinations; lifetime defaults to `-t`.
fn module_constraints(agent: &Agent, list: Vec<Constraint>) -> Option<ModuleConstraints> {
    let (mut lifetime, mut confirm, mut destinations) = (None, false, None);
    for c in list {
        match c {
            Constraint::Lifetime(s) if lifetime.is_none() => {
                lifetime = Some(Duration::from_secs(u64::from(s)));
            }
            Constraint::Confirm if !confirm => confirm = true,
            Constraint::RestrictDestination(d) if destinations.is_none() => destinations = Some(d),
            _ => return None,
        }
    }
    let destinations = destinations.unwrap_or_default();
    destination::validate_constraints(&destinations).ok()?;
    Some(ModuleConstraints {
        lifetime: lifetime.or(agent.config.default_lifetime),
        confirm,
        destinations,
    })
}
