//! The unit files: templates compiled in from `secretivex/agent/dist/systemd/`, filled in,
//! marked as ours, and written atomically.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use anyhow::Context;

/// File name of the socket unit.
pub const SOCKET_NAME: &str = "secretivex-agent.socket";
/// File name of the service unit.
pub const SERVICE_NAME: &str = "secretivex-agent.service";

const SOCKET_TEMPLATE: &str = include_str!("../../../agent/dist/systemd/secretivex-agent.socket");
const SERVICE_TEMPLATE: &str = include_str!("../../../agent/dist/systemd/secretivex-agent.service");

/// First line of every unit `install` writes; `uninstall` removes only files that have it.
const MARKER: &str =
    "# Written by `secretivex service install`; `secretivex service uninstall` removes it.";

/// What `install` writes when the configuration file is missing: comments only, which is a
/// valid, empty configuration (every setting at its default).
pub const STARTER_CONFIG: &str = "\
# SecretiveX agent configuration (created by `secretivex service install`).
# Empty: every setting has its default. Check edits with
#     secretivex-agent --check-config --config THIS_FILE
# and apply them with `systemctl --user reload secretivex-agent`.
#
# profile = \"fanout\"            # balanced | fanout | pssh | low-memory
#
# [[keys]]
# path = \"~/.ssh/id_ed25519\"
#
# [policy]
# default = \"allow\"
";

/// The two units, filled in for one agent and configuration file.
pub struct UnitFiles {
    socket: String,
    service: String,
}

impl UnitFiles {
    /// Fills the templates in: the agent's and the configuration's absolute paths go into
    /// `ExecStart=`, quoted and escaped for systemd.
    pub fn render(agent: &Path, config: &Path) -> anyhow::Result<Self> {
        let agent = exec_word(agent)?;
        let config = exec_word(config)?;
        let service = SERVICE_TEMPLATE
            .replace("@AGENT@", &agent)
            .replace("@CONFIG@", &config);
        Ok(UnitFiles {
            socket: format!("{MARKER}\n{SOCKET_TEMPLATE}"),
            service: format!("{MARKER}\n{service}"),
        })
    }

    /// `(file name, contents)` of each unit.
    pub fn files(&self) -> [(&'static str, &str); 2] {
        [
            (SOCKET_NAME, self.socket.as_str()),
            (SERVICE_NAME, self.service.as_str()),
        ]
    }
}

/// `path` as one word of an `Exec*=` line: `%` and `$` would be expanded by systemd, quotes
/// and backslashes are escape syntax, and whitespace splits words.
fn exec_word(path: &Path) -> anyhow::Result<String> {
    let text = path
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("{} is not valid UTF-8", path.display()))?;
    if text.chars().any(char::is_control) {
        anyhow::bail!("{text:?} contains control characters");
    }
    let mut word = String::with_capacity(text.len() + 2);
    let mut quote = false;
    for c in text.chars() {
        match c {
            '%' => word.push_str("%%"),
            '$' => word.push_str("$$"),
            '\\' | '"' | '\'' => {
                quote = true;
                word.push('\\');
                word.push(c);
            }
            c if c.is_whitespace() || c == ';' => {
                quote = true;
                word.push(c);
            }
            c => word.push(c),
        }
    }
    Ok(if quote { format!("\"{word}\"") } else { word })
}

/// Writes `text` to `path` through a temporary file in the same directory and a rename, so
/// the user manager never reads half a unit.
pub fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("write {}", path.display()))
}

/// Creates `path` (which must not exist) readable by the owner only, with `text`.
pub fn write_new_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("write {}", path.display()))
}

/// Whether the unit file at `path` was written by `install` (starts with the marker).
pub fn is_ours(path: &Path) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    Ok(text.lines().next() == Some(MARKER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_words_are_escaped_for_systemd() {
        assert_eq!(
            exec_word(Path::new("/usr/bin/agent")).unwrap(),
            "/usr/bin/agent"
        );
        assert_eq!(
            exec_word(Path::new("/home/a b/100%/$x")).unwrap(),
            "\"/home/a b/100%%/$$x\""
        );
        assert_eq!(exec_word(Path::new("/q\"uote")).unwrap(), "\"/q\\\"uote\"");
        assert!(exec_word(Path::new("/new\nline")).is_err());
    }

    #[test]
    fn rendered_units_name_the_agent_and_config() {
        let units =
            UnitFiles::render(Path::new("/opt/sx/agent"), Path::new("/c/agent.toml")).unwrap();
        let [(sock_name, socket), (svc_name, service)] = units.files();
        assert_eq!((sock_name, svc_name), (SOCKET_NAME, SERVICE_NAME));
        assert!(socket.starts_with(MARKER) && service.starts_with(MARKER));
        assert!(service.contains("\nExecStart=/opt/sx/agent -D --config /c/agent.toml\n"));
        assert!(!service.contains('@'), "placeholder left: {service}");
        assert!(socket.contains("\nListenStream=%t/secretivex/agent.sock\n"));
    }
}
