//! Building the audit trail's [`Decision`] values. The agent only builds them; the
//! `secretivex-audit` writer formats, chains and writes them off the request path.
//! Never the signed data: its SHA-256 at most, computed only when the trail is on.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use secretivex_audit::{AuditHandle, Decision, Event, Outcome};
use secretivex_policy::Fingerprint;

use crate::peer::Peer;
use crate::peer_process::PeerProcess;
use crate::policy_facts::Destination;

/// A decision being made, to be recorded with its outcome.
#[derive(Debug)]
pub(crate) struct Draft {
    audit: Arc<AuditHandle>,
    decision: Decision,
    arrived: Instant,
}

impl Draft {
    /// Starts a record of `event` by `peer`; `arrived` is when the request came in.
    pub(crate) fn new(
        audit: Arc<AuditHandle>,
        event: Event,
        peer: &Peer,
        process: Option<&PeerProcess>,
        arrived: Instant,
    ) -> Draft {
        // The wall-clock time of arrival, from the monotonic time already taken.
        let time = SystemTime::now()
            .checked_sub(arrived.elapsed())
            .unwrap_or_else(SystemTime::now);
        Draft {
            audit,
            decision: Decision {
                time,
                event,
                peer_uid: peer.uid,
                peer_pid: peer.pid,
                peer_exe: process.and_then(|p| p.exe.clone()),
                key_fingerprint: None,
                dest_host_key: None,
                dest_user: None,
                forwarded: false,
                outcome: Outcome::Failed,
                rule: None,
                latency: std::time::Duration::ZERO,
                data_sha256: None,
            },
            arrived,
        }
    }

    /// The key's fingerprint (`SHA256:…`).
    pub(crate) fn key(mut self, fingerprint: &str) -> Draft {
        self.decision.key_fingerprint = Some(fingerprint.to_owned());
        self
    }

    /// The destination: host key fingerprint, user, forwarded flag.
    pub(crate) fn destination(mut self, dest: &Destination, user: Option<&str>) -> Draft {
        self.decision.dest_host_key = dest
            .host_key
            .as_ref()
            .map(|d| Fingerprint::from_digest(d).to_string());
        self.decision.dest_user = user.map(str::to_owned);
        self.decision.forwarded = dest.forwarded == Some(true);
        self
    }

    /// The SHA-256 of the signed data.
    pub(crate) fn data_hash(mut self, digest: [u8; 32]) -> Draft {
        self.decision.data_sha256 = Some(digest);
        self
    }

    /// The deciding policy rule.
    pub(crate) fn rule(mut self, rule: &str) -> Draft {
        self.decision.rule = Some(rule.to_owned());
        self
    }

    /// Records the decision with its outcome (queued; never blocks).
    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.decision.outcome = outcome;
        self.decision.latency = self.arrived.elapsed();
        self.audit.record(self.decision);
    }
}
