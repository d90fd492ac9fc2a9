//! The environment layer: `SECRETIVEX_<FIELD>` for `[agent]` fields, `SECRETIVEX_PROFILE`
//! and `SECRETIVEX_CONFIG`. Taken as a map rather than read from the process, so tests
//! (and reloads) see exactly what they pass.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::ConfigError;
use crate::schema::{AgentSection, ListenAddr, Profile, Signers};
use secretivex_policy::HumanDuration;

/// The environment variables the configuration reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

/// Variables read besides `SECRETIVEX_*`.
const OTHERS: [&str; 2] = ["HOME", "XDG_CONFIG_HOME"];

impl Env {
    /// The relevant variables of this process (`SECRETIVEX_*`, `HOME`, `XDG_CONFIG_HOME`);
    /// variables that are not UTF-8 are ignored.
    pub fn from_process() -> Env {
        Env::from_pairs(std::env::vars_os().filter_map(|(k, v)| {
            let k = k.into_string().ok()?;
            let v = v.into_string().ok()?;
            (k.starts_with("SECRETIVEX_") || OTHERS.contains(&k.as_str())).then_some((k, v))
        }))
    }

    /// Exactly these variables.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Env {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// One variable; empty values count as unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// `$HOME`, for `~` expansion.
    pub fn home(&self) -> Option<PathBuf> {
        self.get("HOME").map(PathBuf::from)
    }

    /// `SECRETIVEX_PROFILE`.
    pub fn profile(&self) -> Result<Option<Profile>, ConfigError> {
        self.parse("SECRETIVEX_PROFILE", |s| s.parse())
    }

    /// The `[agent]` fields set through the environment.
    pub fn agent_section(&self) -> Result<AgentSection, ConfigError> {
        Ok(AgentSection {
            socket: self.get("SECRETIVEX_SOCKET").map(PathBuf::from),
            backlog: self.parse("SECRETIVEX_BACKLOG", |s| {
                s.parse()
                    .map_err(|_| "expected a whole number from 1".to_string())
            })?,
            max_signers: self.parse("SECRETIVEX_MAX_SIGNERS", |s| {
                let n: u32 = s
                    .parse()
                    .map_err(|_| "expected a whole number".to_string())?;
                Signers::try_from(n)
            })?,
            sign_timeout: self.parse("SECRETIVEX_SIGN_TIMEOUT", duration)?,
            max_connections: self.parse("SECRETIVEX_MAX_CONNECTIONS", |s| {
                s.parse()
                    .map_err(|_| "expected a whole number from 1".to_string())
            })?,
            idle_timeout: self.parse("SECRETIVEX_IDLE_TIMEOUT", duration)?,
            default_lifetime: self.parse("SECRETIVEX_DEFAULT_LIFETIME", duration)?,
            metrics_listen: self.parse("SECRETIVEX_METRICS_LISTEN", |s| {
                ListenAddr::try_from(s.to_string())
            })?,
            watch: self.parse("SECRETIVEX_WATCH", |s| match s {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err("expected true or false".to_string()),
            })?,
        })
    }

    fn parse<T>(
        &self,
        var: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        self.get(var)
            .map(|s| {
                parse(s).map_err(|message| ConfigError::Env {
                    var: var.to_string(),
                    message,
                })
            })
            .transpose()
    }
}

fn duration(s: &str) -> Result<HumanDuration, String> {
    HumanDuration::from_str(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_names_the_bad_variable() {
        let env = Env::from_pairs([
            ("SECRETIVEX_MAX_SIGNERS", "3"),
            ("SECRETIVEX_SIGN_TIMEOUT", "250ms"),
            ("SECRETIVEX_WATCH", "true"),
            ("SECRETIVEX_BACKLOG", ""),
        ]);
        let a = env.agent_section().unwrap();
        assert_eq!(a.max_signers.map(Signers::get), Some(3));
        assert_eq!(a.sign_timeout.map(|d| d.get().as_millis()), Some(250));
        assert_eq!(a.watch, Some(true));
        assert_eq!(a.backlog, None);

        let env = Env::from_pairs([("SECRETIVEX_MAX_SIGNERS", "0")]);
        let e = env.agent_section().unwrap_err().to_string();
        assert!(e.starts_with("environment SECRETIVEX_MAX_SIGNERS: "), "{e}");
        let env = Env::from_pairs([("SECRETIVEX_PROFILE", "turbo")]);
        assert!(env
            .profile()
            .unwrap_err()
            .to_string()
            .contains("SECRETIVEX_PROFILE"));
    }
}
