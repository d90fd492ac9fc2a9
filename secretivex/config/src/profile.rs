//! Profiles and built-in defaults: the two lowest layers of the precedence chain.

use std::num::{NonZeroU32, NonZeroU64};
use std::time::Duration;

use crate::schema::{AgentSection, Profile, Signers};
use secretivex_policy::HumanDuration;

/// Listen backlog when nothing else says (the agent's long-standing default).
pub const DEFAULT_BACKLOG: u32 = 4096;

/// The built-in defaults: below every profile. `max_signers` is one per core.
pub fn builtin_defaults() -> AgentSection {
    let cores = std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(Signers::MAX))
        .unwrap_or(2)
        .clamp(1, Signers::MAX);
    AgentSection {
        backlog: NonZeroU32::new(DEFAULT_BACKLOG),
        max_signers: Signers::try_from(cores).ok(),
        watch: Some(false),
        ..AgentSection::default()
    }
}

fn secs(n: u64) -> Option<HumanDuration> {
    Some(HumanDuration::new(Duration::from_secs(n)))
}

impl Profile {
    /// What the profile sets; fields it leaves open fall to the built-in defaults.
    ///
    /// * `balanced`: nothing — ssh-agent's behaviour (no limits, waits as long as it takes).
    /// * `fanout`: thousands of concurrent connections: the deepest backlog, a bounded
    ///   wait for a signer (a clear failure beats a hung `ssh`), idle connections closed.
    /// * `pssh`: bursts of parallel runs: a deep backlog, generous waits.
    /// * `low-memory`: one signer, few connections, short idle time.
    pub fn defaults(self) -> AgentSection {
        match self {
            Profile::Balanced => AgentSection::default(),
            Profile::Fanout => AgentSection {
                backlog: NonZeroU32::new(65_535),
                sign_timeout: secs(30),
                max_connections: NonZeroU64::new(50_000),
                idle_timeout: secs(300),
                ..AgentSection::default()
            },
            Profile::Pssh => AgentSection {
                backlog: NonZeroU32::new(16_384),
                sign_timeout: secs(60),
                max_connections: NonZeroU64::new(20_000),
                idle_timeout: secs(600),
                ..AgentSection::default()
            },
            Profile::LowMemory => AgentSection {
                backlog: NonZeroU32::new(128),
                max_signers: Signers::try_from(1).ok(),
                sign_timeout: secs(10),
                max_connections: NonZeroU64::new(256),
                idle_timeout: secs(60),
                ..AgentSection::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_differ_and_defaults_fill_the_rest() {
        let low = Profile::LowMemory.defaults().or(builtin_defaults());
        assert_eq!(low.max_signers.map(Signers::get), Some(1));
        assert_eq!(low.backlog.map(NonZeroU32::get), Some(128));
        assert_eq!(low.watch, Some(false));
        let fan = Profile::Fanout.defaults().or(builtin_defaults());
        assert_eq!(fan.backlog.map(NonZeroU32::get), Some(65_535));
        assert_eq!(fan.sign_timeout, secs(30));
        let bal = Profile::Balanced.defaults().or(builtin_defaults());
        assert_eq!(bal.backlog.map(NonZeroU32::get), Some(DEFAULT_BACKLOG));
        assert_eq!(bal.sign_timeout, None);
        assert_eq!(bal.max_connections, None);
        let all: std::collections::HashSet<_> = Profile::ALL
            .iter()
            .map(|p| format!("{:?}", p.defaults()))
            .collect();
        assert_eq!(all.len(), 4);
    }
}
