//! The settings themselves, as text to paste or as JSON.

use std::io::Write;

use super::Facts;

/// Descriptors a parallel-ssh process holds per running `ssh` (stdin, stdout, stderr pipes).
const PSSH_FDS_PER_CHILD: u64 = 3;
/// Descriptors the agent needs besides its connections (log, signers, runtime).
const AGENT_SPARE_FDS: u64 = 64;
/// How long a shared connection outlives its last session.
const PERSIST: &str = "10m";
/// Above this many connections at once, the `balanced` profile's settings are the wrong ones.
const FANOUT_THRESHOLD: u32 = 100;

/// Everything `hints` prints.
#[derive(Debug, serde::Serialize)]
pub struct Hints<'a> {
    /// The facts the advice is computed from.
    pub facts: &'a Facts,
    /// The backlog the kernel grants the agent.
    pub effective_backlog: u32,
    /// `~/.ssh/config` lines.
    pub openssh_client: Vec<String>,
    /// `sshd_config` lines for servers (bastions, jump hosts) that take the whole fan-out.
    pub openssh_server: Vec<String>,
    /// A parallel-ssh command line.
    pub pssh: Vec<String>,
    /// `ansible.cfg` lines.
    pub ansible: Vec<String>,
    /// What in this agent's configuration or this machine limits the planned fan-out.
    pub warnings: Vec<String>,
}

impl<'a> Hints<'a> {
    /// Works the settings out from `facts`.
    pub fn new(facts: &'a Facts) -> Self {
        let sock = facts.socket.display().to_string();
        let p = facts.parallel;
        let shared = format!(
            "-o ControlMaster=auto -o ControlPath=~/.ssh/cm-%C -o ControlPersist={PERSIST}"
        );
        let openssh_client = vec![
            "Host *".to_string(),
            format!("    IdentityAgent {sock}"),
            "    # One connection (and one agent signature) per host; later sessions reuse it."
                .to_string(),
            "    ControlMaster auto".to_string(),
            "    # %C is a hash: the path stays under the 108-byte socket path limit.".to_string(),
            "    ControlPath ~/.ssh/cm-%C".to_string(),
            format!("    ControlPersist {PERSIST}"),
            "    ServerAliveInterval 30".to_string(),
        ];
        let openssh_server = vec![
            "# Only where one server takes the whole fan-out (a bastion / ProxyJump host):"
                .to_string(),
            "# the default 10:30:100 drops unauthenticated connections beyond 10 at once."
                .to_string(),
            format!(
                "MaxStartups {}:30:{}",
                p.max(10),
                p.max(10).saturating_mul(2)
            ),
            "# Sessions multiplexed over one shared connection (default 10).".to_string(),
            "MaxSessions 32".to_string(),
        ];
        let pssh = vec![
            format!(
                "parallel-ssh -p {p} -t 120 -h hosts.txt -O IdentityAgent={sock} -x \"{shared}\" COMMAND"
            ),
            "# -p: ssh processes at once; -x: extra ssh options (connection sharing);".to_string(),
            "# -O: one ssh_config option; -t: per-host timeout in seconds (0: none).".to_string(),
        ];
        let ansible = vec![
            "[defaults]".to_string(),
            format!("forks = {p}"),
            "".to_string(),
            "[ssh_connection]".to_string(),
            "# Modules run over the open session instead of copy + exec: fewer sessions."
                .to_string(),
            "pipelining = True".to_string(),
            format!(
                "ssh_args = -o ControlMaster=auto -o ControlPersist={PERSIST} -o IdentityAgent={sock}"
            ),
        ];
        Hints {
            facts,
            effective_backlog: facts.effective_backlog(),
            openssh_client,
            openssh_server,
            pssh,
            ansible,
            warnings: warnings(facts),
        }
    }

    /// Writes the settings as commented text, one block per tool.
    pub fn write_text(&self, out: &mut impl Write) -> std::io::Result<()> {
        let f = self.facts;
        writeln!(out, "# SecretiveX agent at {}", f.socket.display())?;
        match &f.config_file {
            Some(file) => writeln!(
                out,
                "# configuration: {} (profile {})",
                file.display(),
                f.profile
            )?,
            None => writeln!(out, "# configuration: none (profile {})", f.profile)?,
        }
        writeln!(
            out,
            "# backlog {} (kernel somaxconn {}: effective {}), max_connections {}, max_signers {}, sign_timeout {}, idle_timeout {}",
            f.backlog,
            opt(f.somaxconn),
            self.effective_backlog,
            f.max_connections.map_or("unlimited".to_string(), |n| n.to_string()),
            opt(f.max_signers),
            f.sign_timeout.as_deref().unwrap_or("none"),
            f.idle_timeout.as_deref().unwrap_or("none"),
        )?;
        writeln!(
            out,
            "# file descriptors: soft {}, hard {}; planned connections at once: {}",
            f.nofile_soft
                .map_or("unlimited".to_string(), |n| n.to_string()),
            f.nofile_hard
                .map_or("unlimited".to_string(), |n| n.to_string()),
            f.parallel
        )?;
        let blocks: [(&str, &[String]); 4] = [
            ("OpenSSH client (~/.ssh/config)", &self.openssh_client),
            ("OpenSSH server (sshd_config)", &self.openssh_server),
            ("pssh", &self.pssh),
            ("Ansible (ansible.cfg)", &self.ansible),
        ];
        for (title, lines) in blocks {
            writeln!(out, "\n## {title}")?;
            for line in lines {
                writeln!(out, "{line}")?;
            }
        }
        if !self.warnings.is_empty() {
            writeln!(
                out,
                "\n## Limits to raise for {} connections at once",
                f.parallel
            )?;
            for w in &self.warnings {
                writeln!(out, "- {w}")?;
            }
        }
        Ok(())
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or("unknown".to_string(), |v| v.to_string())
}

/// What stands between this agent and `facts.parallel` connections at once.
fn warnings(f: &Facts) -> Vec<String> {
    let p = u64::from(f.parallel);
    let mut w = Vec::new();
    if let Some(cap) = f.somaxconn {
        if f.backlog > cap {
            w.push(format!(
                "the kernel caps the agent's backlog {} at net.core.somaxconn = {cap}: \
                 sysctl -w net.core.somaxconn={}",
                f.backlog, f.backlog
            ));
        }
    }
    if u64::from(f.effective_backlog()) < p {
        w.push(format!(
            "the agent's effective backlog ({}) is below {p}: connections beyond it wait in \
             connect() or are refused; set [agent] backlog (profile fanout: 65535)",
            f.effective_backlog()
        ));
    }
    if let Some(max) = f.max_connections {
        if max < p {
            w.push(format!(
                "[agent] max_connections = {max} closes connections beyond it; raise it above {p}"
            ));
        }
    }
    if let Some(hard) = f.nofile_hard {
        if hard < p + AGENT_SPARE_FDS {
            w.push(format!(
                "the hard descriptor limit ({hard}) leaves the agent too few for {p} \
                 connections; raise it (LimitNOFILE= in the user manager, or limits.conf)"
            ));
        }
    }
    if let Some(soft) = f.nofile_soft {
        let need = p * PSSH_FDS_PER_CHILD + AGENT_SPARE_FDS;
        if soft < need {
            w.push(format!(
                "pssh keeps {PSSH_FDS_PER_CHILD} descriptors per running ssh: run `ulimit -n {need}` \
                 (soft limit now {soft}) before pssh -p {p}"
            ));
        }
    }
    if f.profile == "balanced" && f.parallel > FANOUT_THRESHOLD {
        w.push(format!(
            "profile \"{}\" sets no limits for bursts; profile = \"fanout\" (or \"pssh\") \
             sets a deep backlog, a signer wait bound and an idle timeout",
            f.profile
        ));
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn facts(parallel: u32) -> Facts {
        Facts {
            socket: PathBuf::from("/run/user/1000/secretivex/agent.sock"),
            config_file: None,
            profile: "balanced".into(),
            backlog: 4096,
            somaxconn: Some(4096),
            max_connections: None,
            max_signers: Some(2),
            sign_timeout: None,
            idle_timeout: None,
            nofile_soft: Some(1024),
            nofile_hard: Some(524_288),
            parallel,
        }
    }

    #[test]
    fn settings_name_the_socket_and_the_parallelism() {
        let f = facts(500);
        let h = Hints::new(&f);
        assert!(h
            .openssh_client
            .contains(&"    IdentityAgent /run/user/1000/secretivex/agent.sock".to_string()));
        assert!(h
            .openssh_server
            .contains(&"MaxStartups 500:30:1000".to_string()));
        assert!(
            h.pssh[0].starts_with("parallel-ssh -p 500 "),
            "{:?}",
            h.pssh
        );
        assert!(h.ansible.contains(&"forks = 500".to_string()));
        assert!(h.ansible.contains(&"pipelining = True".to_string()));
    }

    #[test]
    fn warnings_follow_the_limits() {
        // 500 clients with a 1024 soft limit: pssh needs 1564; balanced profile above 100.
        let w = warnings(&facts(500));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("ulimit -n 1564"), "{w:?}");
        assert!(w[1].contains("fanout"), "{w:?}");
        // Small fan-out: nothing to raise.
        assert!(warnings(&facts(50)).is_empty());
        // Backlog above the kernel cap, connection limit below the fan-out.
        let mut f = facts(5000);
        f.backlog = 65_535;
        f.max_connections = Some(256);
        f.nofile_soft = None;
        f.profile = "fanout".into();
        let w = warnings(&f);
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].contains("somaxconn=65535"), "{w:?}");
        assert!(
            w[1].contains("effective backlog (4096) is below 5000"),
            "{w:?}"
        );
        assert!(w[2].contains("max_connections = 256"), "{w:?}");
    }
}
