//! `explain`: every rule, whether each of its conditions held, and which rule decides.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::eval::{Rule, Tri, FIELDS};
use crate::fingerprint::Fingerprint;
use crate::policy::{Policy, Ruling};
use crate::request::Request;
use crate::spec::Action;

/// Why a policy decides a request as it does.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The sign decision.
    pub decision: Ruling,
    /// Whether a list request would show the key.
    pub listed: bool,
    /// Every rule in evaluation order, then the default.
    pub rules: Vec<RuleTrace>,
}

/// One rule's evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct RuleTrace {
    /// Index in file order; `None` for the default.
    pub index: Option<usize>,
    /// The rule's name.
    pub name: Arc<str>,
    /// The rule's action.
    pub action: Action,
    /// Whether all its conditions held.
    pub result: Tri,
    /// Whether this rule decides the request.
    pub decides: bool,
    /// Whether evaluation got to it (an earlier rule did not decide).
    pub reached: bool,
    /// The conditions the rule sets (fields it leaves out hold for everything).
    pub conditions: Vec<ConditionTrace>,
}

/// One condition of a rule.
#[derive(Debug, Clone, Serialize)]
pub struct ConditionTrace {
    /// The field, e.g. `peer.exe`.
    pub field: &'static str,
    /// Whether it held.
    pub result: Tri,
    /// The request's fact, `None` when unknown.
    pub fact: Option<String>,
    /// The values or patterns the rule lists.
    pub wanted: Vec<String>,
}

impl Policy {
    /// Explains how a request is decided.
    pub fn explain(&self, request: &Request<'_>) -> Explanation {
        let decision = self.decide(request);
        let facts = facts(request);
        let mut rules = Vec::with_capacity(self.rules.len() + 1);
        let mut reached = true;
        for (index, rule) in self.rules.iter().enumerate() {
            let result = rule.evaluate(request);
            let decides = reached && decision.rule_index == Some(index);
            rules.push(trace(
                rule,
                Some(index),
                result,
                decides,
                reached,
                request,
                &facts,
            ));
            if decides {
                reached = false;
            }
        }
        let default_decides = reached && decision.rule_index.is_none();
        rules.push(trace(
            &self.default,
            None,
            Tri::Match,
            default_decides,
            reached,
            request,
            &facts,
        ));
        Explanation {
            decision,
            listed: self.may_list(request),
            rules,
        }
    }
}

/// The request's facts as text, in [`FIELDS`] order.
fn facts(request: &Request<'_>) -> [Option<String>; 8] {
    let fingerprint = |d: &[u8; 32]| Fingerprint::from_digest(d).to_string();
    [
        request.forwarded.map(|f| f.to_string()),
        request.key_digest.map(fingerprint),
        request.key_comment.map(str::to_owned),
        request.peer_uid.map(|u| u.to_string()),
        request.peer_exe.map(str::to_owned),
        request.peer_name.map(str::to_owned),
        request.dest_host_key.map(fingerprint),
        request.dest_user.map(str::to_owned),
    ]
}

fn trace(
    rule: &Rule,
    index: Option<usize>,
    result: Tri,
    decides: bool,
    reached: bool,
    request: &Request<'_>,
    facts: &[Option<String>; 8],
) -> RuleTrace {
    let fingerprints = |list: &[[u8; 32]]| {
        list.iter()
            .map(|d| Fingerprint::from_digest(d).to_string())
            .collect::<Vec<_>>()
    };
    let globs = |list: &[crate::Glob]| list.iter().map(|g| g.to_string()).collect::<Vec<_>>();
    let wanted: [Vec<String>; 8] = [
        rule.forwarded.map(|f| f.to_string()).into_iter().collect(),
        fingerprints(&rule.fingerprints),
        globs(&rule.comments),
        rule.uids.iter().map(u32::to_string).collect(),
        globs(&rule.exes),
        globs(&rule.names),
        fingerprints(&rule.host_keys),
        globs(&rule.users),
    ];
    let conditions = FIELDS
        .into_iter()
        .zip(rule.conditions(request))
        .zip(wanted)
        .zip(facts.iter())
        .filter(|(((_, _), wanted), _)| !wanted.is_empty())
        .map(|(((field, result), wanted), fact)| ConditionTrace {
            field,
            result,
            fact: fact.clone(),
            wanted,
        })
        .collect();
    RuleTrace {
        index,
        name: rule.name.clone(),
        action: rule.action,
        result,
        decides,
        reached,
        conditions,
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.decision;
        write!(f, "decision: ")?;
        match d.outcome {
            crate::Outcome::Allow => write!(f, "allow")?,
            crate::Outcome::Deny => write!(f, "deny")?,
            crate::Outcome::Confirm { window, scope } => write!(
                f,
                "confirm (window {}, scope {})",
                crate::HumanDuration::new(window),
                scope.as_str()
            )?,
        }
        writeln!(f, " by {:?}", &*d.rule)?;
        writeln!(f, "listed: {}", if self.listed { "yes" } else { "no" })?;
        for rule in &self.rules {
            let label = match rule.index {
                Some(index) => format!("rules[{index}] {:?}", &*rule.name),
                None => "default".to_owned(),
            };
            let verdict = if rule.decides {
                "DECIDES"
            } else if !rule.reached {
                "not reached"
            } else {
                "does not apply"
            };
            writeln!(
                f,
                "{label} {}: {} -> {verdict}",
                rule.action.as_str(),
                rule.result.as_str()
            )?;
            for condition in &rule.conditions {
                let fact = condition.fact.as_deref().unwrap_or("(unknown)");
                write!(
                    f,
                    "  {}: {} ({fact} vs [{}])",
                    condition.field,
                    condition.result.as_str(),
                    condition.wanted.join(", ")
                )?;
                if condition.result == Tri::Unknown {
                    let counts = if rule.action == Action::Allow {
                        "does not hold for allow"
                    } else {
                        "holds for deny/confirm"
                    };
                    write!(f, "; unknown {counts}")?;
                }
                writeln!(f)?;
            }
        }
        Ok(())
    }
}
