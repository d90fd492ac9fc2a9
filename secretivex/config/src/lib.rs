//! SecretiveX agent configuration: the TOML schema, profiles, precedence and validation.
//!
//! [`load`] finds the file (`--config`, else `$SECRETIVEX_CONFIG`, else
//! `$XDG_CONFIG_HOME/secretivex/agent.toml`), parses it with unknown fields refused
//! everywhere, merges the layers — flag > environment > file > profile > built-in
//! default — and compiles the policy. Every error names where the bad value is:
//! `FILE:LINE:COLUMN: FIELD: message`, or the environment variable.
//!
//! | field | balanced | fanout | pssh | low-memory |
//! |---|---|---|---|---|
//! | `backlog` | 4096 | 65535 | 16384 | 128 |
//! | `max_signers` | cores | cores | cores | 1 |
//! | `sign_timeout` | none | 30s | 60s | 10s |
//! | `max_connections` | none | 50000 | 20000 | 256 |
//! | `idle_timeout` | none | 5m | 10m | 1m |

mod env;
mod error;
mod keys;
mod load;
mod locate;
mod profile;
mod schema;
#[cfg(test)]
mod tests;

pub use env::Env;
pub use error::ConfigError;
pub use load::{expand_tilde, load, parse_str, FileChoice, Loaded, Request};
pub use locate::{Position, SourceText};
pub use profile::{builtin_defaults, DEFAULT_BACKLOG};
pub use schema::{
    AgentSection, ConfigFile, KeyPath, KeySpec, ListenAddr, Pkcs11Spec, Profile, Signers, Unlock,
};
/// Durations are parsed by the policy crate's type: one parser for the whole file.
pub use secretivex_policy::{DurationError, HumanDuration};
