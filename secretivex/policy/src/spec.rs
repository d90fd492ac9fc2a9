//! The `[policy]` table as written in the configuration file.
//!
//! Every value that can be wrong is a validated type that fails inside `Deserialize`, and
//! every table refuses unknown fields, so `toml` reports the line and the field of the
//! first mistake.

use serde::{Deserialize, Serialize};

use crate::duration::HumanDuration;
use crate::fingerprint::Fingerprint;
use crate::glob::Glob;

/// Longest rule name accepted, in bytes.
const MAX_NAME_LEN: usize = 128;

/// The `[policy]` table of the agent's configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// The action when no rule matches (`allow` when absent, as ssh-agent).
    #[serde(default)]
    pub default: Action,
    /// The approval window of `default = "confirm"` (each request prompts when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<HumanDuration>,
    /// The approval scope of `default = "confirm"` (`key+exe+dest` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// The prompt program and its arguments; the prompt text is appended as the last
    /// argument (SSH_ASKPASS convention). Absent: `$SSH_ASKPASS`, then
    /// `/usr/lib/openssh/ssh-askpass`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_command: Option<Argv>,
    /// How long a prompt may stay unanswered before it counts as a refusal (30 s when
    /// absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_timeout: Option<HumanDuration>,
    /// The rules, evaluated in file order; the first that matches decides.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleSpec>,
}

/// What a rule (or the default) does with a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Serve the request.
    #[default]
    Allow,
    /// Refuse the request; list requests do not show the key.
    Deny,
    /// Ask the prompt command, unless an approval window of the same scope is open.
    Confirm,
}

impl Action {
    /// The lower-case name used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
            Action::Confirm => "confirm",
        }
    }
}

/// What one approval of a `confirm` rule covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// The key and the peer's executable, for any destination.
    #[serde(rename = "key+exe")]
    KeyExe,
    /// The key, the peer's executable and the destination host key.
    #[default]
    #[serde(rename = "key+exe+dest")]
    KeyExeDest,
}

impl Scope {
    /// The spelling used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::KeyExe => "key+exe",
            Scope::KeyExeDest => "key+exe+dest",
        }
    }
}

/// A command line: a non-empty list whose first element (the program) is not empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct Argv(Vec<String>);

impl Argv {
    /// The program and its arguments.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// The program.
    pub fn program(&self) -> &str {
        self.0.first().map_or("", String::as_str)
    }

    /// The arguments after the program.
    pub fn args(&self) -> &[String] {
        self.0.get(1..).unwrap_or_default()
    }
}

impl TryFrom<Vec<String>> for Argv {
    type Error = String;

    fn try_from(argv: Vec<String>) -> Result<Argv, String> {
        match argv.first() {
            None => Err("empty command (give the program and its arguments)".to_owned()),
            Some(program) if program.is_empty() => Err("empty program name".to_owned()),
            Some(_) if argv.iter().any(|arg| arg.contains('\0')) => {
                Err("a command argument holds a NUL byte".to_owned())
            }
            Some(_) => Ok(Argv(argv)),
        }
    }
}

impl From<Argv> for Vec<String> {
    fn from(argv: Argv) -> Vec<String> {
        argv.0
    }
}

/// One `[[policy.rules]]` entry. Conditions of different fields must all hold; the values
/// listed for one field are alternatives (any may match); an absent or empty field holds
/// for every request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawRule")]
pub struct RuleSpec {
    /// Shown in `explain` output and audit lines (`rules[N]` when absent, N from 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What the rule does when it matches.
    pub action: Action,
    /// Only forwarded use (`true`), only local use (`false`), or both (absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwarded: Option<bool>,
    /// `confirm` only: how long one approval lasts (absent: each request prompts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<HumanDuration>,
    /// `confirm` only: what one approval covers (absent: `key+exe+dest`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Conditions on the key.
    #[serde(skip_serializing_if = "KeyMatch::is_empty")]
    pub key: KeyMatch,
    /// Conditions on the requesting process.
    #[serde(skip_serializing_if = "PeerMatch::is_empty")]
    pub peer: PeerMatch,
    /// Conditions on the destination.
    #[serde(skip_serializing_if = "DestMatch::is_empty")]
    pub dest: DestMatch,
}

/// The rule as written, before the checks that involve several fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    name: Option<String>,
    action: Action,
    #[serde(default)]
    forwarded: Option<bool>,
    #[serde(default)]
    window: Option<HumanDuration>,
    #[serde(default)]
    scope: Option<Scope>,
    #[serde(default)]
    key: KeyMatch,
    #[serde(default)]
    peer: PeerMatch,
    #[serde(default)]
    dest: DestMatch,
}

impl TryFrom<RawRule> for RuleSpec {
    type Error = String;

    fn try_from(raw: RawRule) -> Result<RuleSpec, String> {
        if let Some(name) = &raw.name {
            check_name(name)?;
        }
        if raw.action != Action::Confirm {
            if raw.window.is_some() {
                return Err("window: only a confirm rule has an approval window".to_owned());
            }
            if raw.scope.is_some() {
                return Err("scope: only a confirm rule has an approval scope".to_owned());
            }
        }
        Ok(RuleSpec {
            name: raw.name,
            action: raw.action,
            forwarded: raw.forwarded,
            window: raw.window,
            scope: raw.scope,
            key: raw.key,
            peer: raw.peer,
            dest: raw.dest,
        })
    }
}

/// Checks a rule name: non-empty, short, printable.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("name: empty rule name".to_owned());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("name: longer than {MAX_NAME_LEN} bytes"));
    }
    if name.chars().any(char::is_control) {
        return Err("name: holds a control character".to_owned());
    }
    Ok(())
}

/// Conditions on the key of a request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyMatch {
    /// The key's `SHA256:` fingerprint is one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fingerprint: Vec<Fingerprint>,
    /// The key's comment matches one of these patterns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comment: Vec<Glob>,
}

impl KeyMatch {
    /// Whether no condition is set.
    pub fn is_empty(&self) -> bool {
        self.fingerprint.is_empty() && self.comment.is_empty()
    }
}

/// Conditions on the requesting process (from the socket's peer credentials and
/// `/proc/PID`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerMatch {
    /// The peer's uid is one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uid: Vec<u32>,
    /// The peer's executable path (`/proc/PID/exe`) matches one of these patterns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exe: Vec<Glob>,
    /// The peer's process name (`/proc/PID/comm`) matches one of these patterns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub name: Vec<Glob>,
}

impl PeerMatch {
    /// Whether no condition is set.
    pub fn is_empty(&self) -> bool {
        self.uid.is_empty() && self.exe.is_empty() && self.name.is_empty()
    }
}

/// Conditions on where the signature is going (session-bind and the userauth request).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestMatch {
    /// The destination host key's fingerprint is one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_key: Vec<Fingerprint>,
    /// The user name being authenticated matches one of these patterns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user: Vec<Glob>,
}

impl DestMatch {
    /// Whether no condition is set.
    pub fn is_empty(&self) -> bool {
        self.host_key.is_empty() && self.user.is_empty()
    }
}
