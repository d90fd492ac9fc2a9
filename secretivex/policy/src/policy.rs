//! The compiled policy: validation, sign decisions and list filtering.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::eval::{Rule, Tri};
use crate::request::{Needs, Request};
use crate::spec::{check_name, Action, Argv, PolicySpec, Scope};

/// How long a prompt may stay unanswered when `confirm_timeout` is absent.
pub const DEFAULT_CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// The name under which the `default` action decides (in `explain` and audit lines).
pub const DEFAULT_RULE_NAME: &str = "default";

/// A validated policy, ready to evaluate.
#[derive(Debug)]
pub struct Policy {
    pub(crate) rules: Vec<Rule>,
    pub(crate) default: Rule,
    confirm_command: Option<Argv>,
    confirm_timeout: Duration,
    needs: Needs,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy::allow_all()
    }
}

/// What to do with a sign request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Outcome {
    /// Sign.
    Allow,
    /// Refuse.
    Deny,
    /// Sign if an approval of this scope is open or the prompt approves.
    Confirm {
        /// How long the approval lasts (zero: this request and those already waiting on
        /// the same prompt).
        #[serde(serialize_with = "serialize_duration")]
        window: Duration,
        /// What the approval covers.
        scope: Scope,
    },
}

fn serialize_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&crate::HumanDuration::new(*d))
}

/// A sign decision and the rule that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ruling {
    /// What to do.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Index of the deciding rule in file order, `None` for the default.
    pub rule_index: Option<usize>,
    /// Name of the deciding rule (`rules[N]` when unnamed, `default` for the default).
    pub rule: Arc<str>,
}

impl Policy {
    /// Validates and compiles a policy.
    ///
    /// # Errors
    /// When a rule is invalid; the error names the field.
    pub fn compile(spec: &PolicySpec) -> Result<Policy, PolicyError> {
        if spec.default != Action::Confirm {
            if spec.window.is_some() {
                return Err(invalid("window", "only default = \"confirm\" has a window"));
            }
            if spec.scope.is_some() {
                return Err(invalid("scope", "only default = \"confirm\" has a scope"));
            }
        }
        let mut seen = HashSet::new();
        let mut rules = Vec::with_capacity(spec.rules.len());
        for (index, rule) in spec.rules.iter().enumerate() {
            let field = |name: &str| format!("rules[{index}].{name}");
            if rule.action != Action::Confirm && (rule.window.is_some() || rule.scope.is_some()) {
                return Err(invalid(
                    &field("window"),
                    "only a confirm rule has a window",
                ));
            }
            let name = match &rule.name {
                Some(name) => {
                    check_name(name).map_err(|message| invalid(&field("name"), &message))?;
                    if name == DEFAULT_RULE_NAME {
                        return Err(invalid(&field("name"), "\"default\" names the default"));
                    }
                    name.clone()
                }
                None => format!("rules[{index}]"),
            };
            if !seen.insert(name.clone()) {
                return Err(invalid(
                    &field("name"),
                    &format!("duplicate rule name {name:?}"),
                ));
            }
            rules.push(Rule {
                name: name.into(),
                action: rule.action,
                window: rule.window.map_or(Duration::ZERO, |w| w.get()),
                scope: rule.scope.unwrap_or_default(),
                forwarded: rule.forwarded,
                fingerprints: rule.key.fingerprint.iter().map(|f| *f.digest()).collect(),
                comments: rule.key.comment.clone(),
                uids: rule.peer.uid.clone(),
                exes: rule.peer.exe.clone(),
                names: rule.peer.name.clone(),
                host_keys: rule.dest.host_key.iter().map(|f| *f.digest()).collect(),
                users: rule.dest.user.clone(),
            });
        }
        let default = Rule::always(
            spec.default,
            spec.window.map_or(Duration::ZERO, |w| w.get()),
            spec.scope.unwrap_or_default(),
        );
        let needs = Needs {
            key_comment: rules.iter().any(|r| !r.comments.is_empty()),
            peer_exe: rules.iter().any(|r| !r.exes.is_empty()),
            peer_name: rules.iter().any(|r| !r.names.is_empty()),
            dest_host_key: rules.iter().any(|r| !r.host_keys.is_empty()),
            dest_user: rules.iter().any(|r| !r.users.is_empty()),
        };
        Ok(Policy {
            rules,
            default,
            confirm_command: spec.confirm_command.clone(),
            confirm_timeout: spec
                .confirm_timeout
                .map_or(DEFAULT_CONFIRM_TIMEOUT, |t| t.get()),
            needs,
        })
    }

    /// The policy of an agent without a `[policy]` table: everything allowed, as ssh-agent.
    pub fn allow_all() -> Policy {
        Policy {
            rules: Vec::new(),
            default: Rule::always(Action::Allow, Duration::ZERO, Scope::default()),
            confirm_command: None,
            confirm_timeout: DEFAULT_CONFIRM_TIMEOUT,
            needs: Needs::default(),
        }
    }

    /// Decides a sign request: the first rule that matches, else the default. A rule
    /// whose conditions depend on an unknown fact resolves to the least permissive
    /// possibility: `deny` applies, `allow` is skipped, and `confirm` applies unless a
    /// later rule or the default would deny (then that deny decides).
    pub fn decide(&self, request: &Request<'_>) -> Ruling {
        // The first confirm rule that may apply; it decides unless a later deny does.
        let mut maybe_confirm: Option<usize> = None;
        let settle = |index: Option<usize>, rule: &Rule, maybe: Option<usize>| -> Ruling {
            match (
                rule.action,
                maybe.and_then(|i| self.rules.get(i).map(|r| (i, r))),
            ) {
                (Action::Deny, _) | (_, None) => rule.ruling(index),
                (_, Some((i, pending))) => pending.ruling(Some(i)),
            }
        };
        for (index, rule) in self.rules.iter().enumerate() {
            match (rule.evaluate(request), rule.action) {
                (Tri::NoMatch, _) | (Tri::Unknown, Action::Allow) => {}
                (Tri::Unknown, Action::Confirm) => {
                    maybe_confirm.get_or_insert(index);
                }
                (Tri::Match, _) | (Tri::Unknown, Action::Deny) => {
                    return settle(Some(index), rule, maybe_confirm);
                }
            }
        }
        settle(None, &self.default, maybe_confirm)
    }

    /// Whether a list request shows the key: `false` only when every value the unknown
    /// facts could take leads to `deny` (the sign request enforces the rest).
    pub fn may_list(&self, request: &Request<'_>) -> bool {
        for rule in &self.rules {
            match rule.evaluate(request) {
                Tri::NoMatch => {}
                Tri::Match => return rule.action != Action::Deny,
                Tri::Unknown if rule.action != Action::Deny => return true,
                // The rule may deny; where it does not apply, later rules decide.
                Tri::Unknown => {}
            }
        }
        self.default.action != Action::Deny
    }

    /// Whether every request is allowed (no rule or default denies or confirms), so the
    /// agent can skip gathering facts.
    pub fn allows_everything(&self) -> bool {
        self.default.action == Action::Allow && self.rules.iter().all(|r| r.action == Action::Allow)
    }

    /// Whether some request could be denied, so list requests must be filtered.
    pub fn can_deny(&self) -> bool {
        self.default.action == Action::Deny || self.rules.iter().any(|r| r.action == Action::Deny)
    }

    /// Whether some request could need a confirmation (the agent then learns the peer's
    /// executable, which every approval scope names).
    pub fn may_confirm(&self) -> bool {
        self.default.action == Action::Confirm
            || self.rules.iter().any(|r| r.action == Action::Confirm)
    }

    /// The facts some rule looks at.
    pub fn needs(&self) -> Needs {
        self.needs
    }

    /// The prompt command, when configured (else the agent's default askpass).
    pub fn confirm_command(&self) -> Option<&Argv> {
        self.confirm_command.as_ref()
    }

    /// How long a prompt may stay unanswered.
    pub fn confirm_timeout(&self) -> Duration {
        self.confirm_timeout
    }

    /// The number of rules.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }
}

impl Rule {
    /// A rule without conditions (the default).
    fn always(action: Action, window: Duration, scope: Scope) -> Rule {
        Rule {
            name: DEFAULT_RULE_NAME.into(),
            action,
            window,
            scope,
            forwarded: None,
            fingerprints: Vec::new(),
            comments: Vec::new(),
            uids: Vec::new(),
            exes: Vec::new(),
            names: Vec::new(),
            host_keys: Vec::new(),
            users: Vec::new(),
        }
    }

    pub(crate) fn ruling(&self, index: Option<usize>) -> Ruling {
        let outcome = match self.action {
            Action::Allow => Outcome::Allow,
            Action::Deny => Outcome::Deny,
            Action::Confirm => Outcome::Confirm {
                window: self.window,
                scope: self.scope,
            },
        };
        Ruling {
            outcome,
            rule_index: index,
            rule: self.name.clone(),
        }
    }
}

fn invalid(field: &str, message: &str) -> PolicyError {
    PolicyError::Invalid {
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

/// A policy that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A field has a value that cannot be used.
    #[error("{field}: {message}")]
    Invalid {
        /// Dotted path of the field, e.g. `rules[2].key.fingerprint`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}
