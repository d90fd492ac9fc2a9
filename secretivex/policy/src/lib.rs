//! SecretiveX signing policy: which peer may use which key for which destination.
//!
//! No I/O: the agent gathers the facts of a request ([`Request`]) and asks a compiled
//! [`Policy`] for a [`Ruling`]; `secretivex policy explain` asks for an [`Explanation`].
//!
//! # Evaluation order
//! Rules are tried in file order and the first rule whose conditions all hold decides;
//! when none does, `default` decides. A condition on a fact the agent could not learn
//! (the peer's executable was unreadable, there was no session-bind, the signed data was
//! not a userauth request) is *unknown*, and the rule resolves to the least permissive
//! possibility: a `deny` rule applies, an `allow` rule is skipped, and a `confirm` rule
//! applies unless a later rule or the default would deny (then that deny decides). A
//! missing fact never widens access.
//! List requests hide a key only when it would be denied whatever the unknown facts are
//! (the sign request is where access is enforced).

mod duration;
mod eval;
mod explain;
mod fingerprint;
mod glob;
mod policy;
mod request;
mod spec;

pub use duration::{DurationError, HumanDuration};
pub use fingerprint::{Fingerprint, FingerprintError};
pub use glob::{Glob, GlobError};
pub use spec::{Action, Argv, DestMatch, KeyMatch, PeerMatch, PolicySpec, RuleSpec, Scope};

pub use eval::Tri;
pub use explain::{ConditionTrace, Explanation, RuleTrace};
pub use policy::{
    Outcome, Policy, PolicyError, Ruling, DEFAULT_CONFIRM_TIMEOUT, DEFAULT_RULE_NAME,
};
pub use request::{Needs, Request};
