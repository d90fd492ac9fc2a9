//! Compiled rules and their three-valued evaluation.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::glob::Glob;
use crate::request::Request;
use crate::spec::{Action, Scope};

/// Whether a condition (or a whole rule) holds for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tri {
    /// It holds.
    Match,
    /// It does not hold.
    NoMatch,
    /// It depends on a fact the agent could not learn.
    Unknown,
}

impl Tri {
    /// Three-valued AND: any `NoMatch` wins, then any `Unknown`.
    pub(crate) fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::NoMatch, _) | (_, Tri::NoMatch) => Tri::NoMatch,
            (Tri::Unknown, _) | (_, Tri::Unknown) => Tri::Unknown,
            _ => Tri::Match,
        }
    }

    /// The lower-case name used in `explain` output.
    pub fn as_str(self) -> &'static str {
        match self {
            Tri::Match => "match",
            Tri::NoMatch => "no match",
            Tri::Unknown => "unknown",
        }
    }
}

/// One compiled rule.
#[derive(Debug)]
pub(crate) struct Rule {
    pub(crate) name: Arc<str>,
    pub(crate) action: Action,
    pub(crate) window: Duration,
    pub(crate) scope: Scope,
    pub(crate) forwarded: Option<bool>,
    pub(crate) fingerprints: Vec<[u8; 32]>,
    pub(crate) comments: Vec<Glob>,
    pub(crate) uids: Vec<u32>,
    pub(crate) exes: Vec<Glob>,
    pub(crate) names: Vec<Glob>,
    pub(crate) host_keys: Vec<[u8; 32]>,
    pub(crate) users: Vec<Glob>,
}

/// A condition: an empty list holds for everything, an unknown fact is `Unknown`, else
/// whether any listed value matches.
fn condition<T: ?Sized, P>(list: &[P], fact: Option<&T>, hit: impl Fn(&P, &T) -> bool) -> Tri {
    if list.is_empty() {
        return Tri::Match;
    }
    match fact {
        None => Tri::Unknown,
        Some(fact) if list.iter().any(|pattern| hit(pattern, fact)) => Tri::Match,
        Some(_) => Tri::NoMatch,
    }
}

/// The condition names, in the order they are evaluated and explained.
pub(crate) const FIELDS: [&str; 8] = [
    "forwarded",
    "key.fingerprint",
    "key.comment",
    "peer.uid",
    "peer.exe",
    "peer.name",
    "dest.host_key",
    "dest.user",
];

impl Rule {
    /// Each condition's result, in [`FIELDS`] order.
    pub(crate) fn conditions(&self, request: &Request<'_>) -> [Tri; 8] {
        let forwarded = match (self.forwarded, request.forwarded) {
            (None, _) => Tri::Match,
            (Some(_), None) => Tri::Unknown,
            (Some(want), Some(got)) if want == got => Tri::Match,
            (Some(_), Some(_)) => Tri::NoMatch,
        };
        let glob = |g: &Glob, s: &str| g.matches(s);
        [
            forwarded,
            condition(&self.fingerprints, request.key_digest, |a, b| a == b),
            condition(&self.comments, request.key_comment, glob),
            condition(&self.uids, request.peer_uid.as_ref(), |a, b| a == b),
            condition(&self.exes, request.peer_exe, glob),
            condition(&self.names, request.peer_name, glob),
            condition(&self.host_keys, request.dest_host_key, |a, b| a == b),
            condition(&self.users, request.dest_user, glob),
        ]
    }

    /// Whether all conditions hold (three-valued).
    pub(crate) fn evaluate(&self, request: &Request<'_>) -> Tri {
        self.conditions(request)
            .into_iter()
            .fold(Tri::Match, Tri::and)
    }
}
