//! Policy enforcement on the request path: the sign gate (decide, approve, audit) and
//! the per-peer filtering of identity lists.
//!
//! The fast path costs two atomic loads: with a policy that allows everything and no
//! audit trail, nothing is gathered or computed.

use std::ffi::OsString;
use std::sync::Arc;
use std::time::Instant;

use secretivex_audit::{Event, Outcome as AuditOutcome};
use secretivex_policy::{HumanDuration, Outcome, Policy, Ruling, Scope};

use crate::approval::{Approval, Prompt, ScopeKey};
use crate::audit_event::Draft;
use crate::confirm;
use crate::handler::ConnState;
use crate::keystore::{self, Identity};
use crate::metrics::FailureReason;
use crate::pending::PendingKey;
use crate::policy_facts::{self, sha256, Destination, SignDestination};
use crate::Agent;

/// A sign request the policy let through; record its end with [`SignPass::finish`].
#[must_use]
pub(crate) struct SignPass {
    /// A prompt ran (or was waited on): the caller re-checks that the key is still there.
    pub prompted: bool,
    outcome: AuditOutcome,
    draft: Option<Draft>,
}

impl SignPass {
    /// Records the request's end: signed, or failed after the policy allowed it.
    pub(crate) fn finish(self, signed: bool) {
        if let Some(draft) = self.draft {
            draft.finish(if signed {
                self.outcome
            } else {
                AuditOutcome::Failed
            });
        }
    }
}

/// Decides a sign request for `id` with `data`, running the approval flow for `confirm`.
/// `None`: refused (logged, counted and audited here).
pub(crate) async fn gate_sign(
    agent: &Agent,
    conn: &mut ConnState,
    id: &Identity,
    data: &[u8],
    arrived: Instant,
) -> Option<SignPass> {
    // Guards (no reference-count traffic) for the common case of nothing to enforce.
    if agent.policy.load().allows_everything() && agent.audit.load().is_none() {
        return Some(SignPass {
            prompted: false,
            outcome: AuditOutcome::Allow,
            draft: None,
        });
    }
    // Owned from here: a confirmation may wait a long time, across a reload.
    let policy = agent.policy.load_full();
    let audit = agent.audit.load_full();
    let needs = policy.needs();
    if needs.peer_exe || needs.peer_name || policy.may_confirm() || audit.is_some() {
        conn.load_process();
    }
    let key_digest = sha256(&id.blob);
    let sign_dest = SignDestination::of(&conn.binds, data);
    let ruling = {
        let request = policy_facts::request(
            &key_digest,
            Some(&id.comment),
            &conn.peer,
            conn.process(),
            &sign_dest.dest,
            sign_dest.user.as_deref(),
        );
        policy.decide(&request)
    };
    let draft = audit.map(|audit| {
        Draft::new(
            audit,
            Event::Sign,
            &conn.peer,
            Some(conn.process()),
            arrived,
        )
        .key(&id.fingerprint)
        .destination(&sign_dest.dest, sign_dest.user.as_deref())
        .data_hash(sha256(data))
        .rule(&ruling.rule)
    });
    let (outcome, prompted) = match ruling.outcome {
        Outcome::Allow => (AuditOutcome::Allow, false),
        Outcome::Deny => (AuditOutcome::Deny, false),
        Outcome::Confirm { window, scope } => {
            let approval = approve(
                agent,
                conn,
                id,
                &policy,
                &ruling,
                key_digest,
                &sign_dest,
                (window, scope),
            )
            .await;
            let outcome = match approval {
                Approval::Window | Approval::Prompted => AuditOutcome::ConfirmAllow,
                Approval::Refused => AuditOutcome::ConfirmDeny,
                Approval::TimedOut => AuditOutcome::ConfirmTimeout,
            };
            (outcome, approval == Approval::Prompted)
        }
    };
    if matches!(outcome, AuditOutcome::Allow | AuditOutcome::ConfirmAllow) {
        return Some(SignPass {
            prompted,
            outcome,
            draft,
        });
    }
    tracing::info!(
        uid = conn.peer.uid,
        pid = conn.peer.pid,
        exe = conn.process().exe.as_deref().unwrap_or("(unknown)"),
        fingerprint = %id.fingerprint,
        rule = %ruling.rule,
        ?outcome,
        "policy refused signature"
    );
    agent.metrics.failed(FailureReason::Refused);
    if let Some(draft) = draft {
        draft.finish(outcome);
    }
    None
}

#[allow(clippy::too_many_arguments)] // the facts of one decision, kept apart on purpose
async fn approve(
    agent: &Agent,
    conn: &ConnState,
    id: &Identity,
    policy: &Policy,
    ruling: &Ruling,
    key_digest: [u8; 32],
    sign_dest: &SignDestination,
    (window, scope): (std::time::Duration, Scope),
) -> Approval {
    let process = conn.process();
    let key = ScopeKey {
        rule: ruling.rule.clone(),
        key: key_digest,
        exe: process.exe.clone(),
        dest: match scope {
            Scope::KeyExe => None,
            Scope::KeyExeDest => sign_dest.dest.host_key,
        },
    };
    let prompt = || {
        let (program, args) = match policy.confirm_command() {
            Some(argv) => (
                OsString::from(argv.program()),
                argv.args().iter().map(OsString::from).collect(),
            ),
            None => (
                confirm::askpass_program(agent.config.askpass.as_deref()).into_os_string(),
                Vec::new(),
            ),
        };
        Prompt {
            program,
            args,
            text: prompt_text(conn, id, ruling, sign_dest, window, scope),
            timeout: policy.confirm_timeout(),
        }
    };
    agent.approvals.approve(key, window, prompt).await
}

/// OpenSSH's confirm wording, then who asks, for where, and what an approval covers.
fn prompt_text(
    conn: &ConnState,
    id: &Identity,
    ruling: &Ruling,
    sign_dest: &SignDestination,
    window: std::time::Duration,
    scope: Scope,
) -> String {
    let process = conn.process();
    // The executable path and the user name come from the peer: control characters are
    // escaped so they cannot forge lines of the prompt.
    let mut extra = format!(
        "Requested by {} (pid {}, uid {})",
        process
            .exe
            .as_deref()
            .unwrap_or("an unknown program")
            .escape_debug(),
        conn.peer
            .pid
            .map_or_else(|| "?".to_owned(), |p| p.to_string()),
        conn.peer.uid
    );
    if let Some(host_key) = &sign_dest.dest.host_key {
        let host = secretivex_policy::Fingerprint::from_digest(host_key);
        match &sign_dest.user {
            Some(user) => extra.push_str(&format!(
                "\nfor user \"{}\" at host key {host}",
                user.escape_debug()
            )),
            None => extra.push_str(&format!("\nfor host key {host}")),
        }
    }
    if sign_dest.dest.forwarded == Some(true) {
        extra.push_str("\nthrough a forwarded agent");
    }
    if window.is_zero() || process.exe.is_none() {
        extra.push_str(&format!("\nRule \"{}\": this request only.", ruling.rule));
    } else {
        extra.push_str(&format!(
            "\nRule \"{}\": approving allows {} for {}.",
            ruling.rule,
            match scope {
                Scope::KeyExe => "this key and program",
                Scope::KeyExeDest => "this key, program and destination",
            },
            HumanDuration::new(window)
        ));
    }
    confirm::confirm_prompt(&id.comment, &id.fingerprint, Some(&extra))
}

/// Whether a sign request for a key that is not loaded (`blob`) is worth unlocking a
/// pending key file for: not when the policy denies the key whatever its comment.
pub(crate) fn may_unlock_for(
    agent: &Agent,
    conn: &mut ConnState,
    blob: &[u8],
    data: &[u8],
) -> bool {
    let policy = agent.policy.load();
    if !policy.can_deny() {
        return true;
    }
    let needs = policy.needs();
    if needs.peer_exe || needs.peer_name {
        conn.load_process();
    }
    let digest = sha256(blob);
    let sign_dest = SignDestination::of(&conn.binds, data);
    let request = policy_facts::request(
        &digest,
        None,
        &conn.peer,
        conn.process(),
        &sign_dest.dest,
        sign_dest.user.as_deref(),
    );
    policy.may_list(&request)
}

/// Records a decision that involves no policy rule (add, remove, lock, unlock, a sign
/// request for an unknown key) when the audit trail is on.
pub(crate) fn record(
    agent: &Agent,
    conn: &mut ConnState,
    event: Event,
    fingerprint: Option<&str>,
    outcome: AuditOutcome,
    arrived: Instant,
) {
    let Some(audit) = agent.audit.load_full() else {
        return;
    };
    conn.load_process();
    let mut draft = Draft::new(audit, event, &conn.peer, Some(conn.process()), arrived)
        .destination(&Destination::of(&conn.binds), None);
    if let Some(fingerprint) = fingerprint {
        draft = draft.key(fingerprint);
    }
    draft.finish(outcome);
}

/// The identities answer for this peer when the policy may hide keys from it; `None`
/// when it cannot (the caller then uses the shared pre-encoded answer).
pub(crate) fn filtered_list(
    agent: &Agent,
    conn: &mut ConnState,
    visible: impl Fn(&ConnState, &Identity) -> bool,
) -> Option<Arc<Vec<u8>>> {
    let policy = agent.policy.load();
    if !policy.can_deny() {
        return None;
    }
    let arrived = Instant::now();
    let needs = policy.needs();
    if needs.peer_exe || needs.peer_name {
        conn.load_process();
    }
    let dest = Destination::of(&conn.binds);
    let ids = agent.keys.snapshot();
    // First-use keys are listed too (from their public part), under the same rules.
    let pending = agent.keys.pending_keys();
    let mut hidden = 0usize;
    let mut may_list = |blob: &[u8], comment: &str| {
        let digest = sha256(blob);
        let request = policy_facts::request(
            &digest,
            Some(comment),
            &conn.peer,
            conn.process(),
            &dest,
            None,
        );
        let show = policy.may_list(&request);
        hidden += usize::from(!show);
        show
    };
    let shown: Vec<&Identity> = ids
        .iter()
        .map(|id| &**id)
        .filter(|id| visible(conn, id) && may_list(&id.blob, &id.comment))
        .collect();
    let shown_pending: Vec<&PendingKey> = pending
        .iter()
        .map(|p| &**p)
        .filter(|p| may_list(&p.blob, &p.comment))
        .collect();
    let frame = keystore::encode_listing(shown.into_iter(), shown_pending.into_iter());
    if hidden > 0 {
        tracing::debug!(
            uid = conn.peer.uid,
            hidden,
            "policy hid keys from a listing"
        );
        record(agent, conn, Event::List, None, AuditOutcome::Deny, arrived);
    }
    Some(Arc::new(frame))
}

#[cfg(test)]
#[path = "policy_gate_tests.rs"]
mod tests;
