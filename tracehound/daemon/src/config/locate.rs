//! Turning TOML errors into file/line/field, and the default socket path.

use std::path::{Path, PathBuf};

use super::ConfigError;

/// 1-based line of byte `offset` in `text`.
fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()
        .get(..end)
        .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
        + 1
}

/// The `[table]` header in force at `line` (1-based) and the key on that line, if any.
fn field_at_line(text: &str, line: usize) -> Option<String> {
    let mut table = String::new();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if i + 1 == line {
            let key = l.split_once('=').map(|(k, _)| k.trim().trim_matches('"'));
            return match key {
                Some(k) if !k.is_empty() && table.is_empty() => Some(k.to_owned()),
                Some(k) if !k.is_empty() => Some(format!("{table}.{k}")),
                _ if l.starts_with('[') => Some(l.trim_matches(['[', ']']).trim().to_owned()),
                _ => None,
            };
        }
        if l.starts_with('[') && !l.starts_with("[[") {
            table = l.trim_matches(['[', ']']).trim().to_owned();
        }
    }
    None
}

/// The name inside the first pair of backticks of `message` (toml's "unknown field `x`"
/// and "missing field `x`").
fn backticked(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once('`')?;
    let (name, _) = rest.split_once('`')?;
    Some(name)
}

/// A toml deserialisation error as [`ConfigError::Invalid`].
pub(super) fn toml_error(e: &toml::de::Error, text: &str, file: &Path) -> ConfigError {
    let message = e.message().trim().to_owned();
    let line = e.span().map_or(0, |s| line_at(text, s.start));
    let at_line = if line > 0 {
        field_at_line(text, line)
    } else {
        None
    };
    let field = match (at_line, backticked(&message)) {
        // An unknown key: the span is the key, and the line says which table it is in.
        (Some(f), _) => f,
        (None, Some(name)) => name.to_owned(),
        (None, None) => "(document)".to_owned(),
    };
    ConfigError::Invalid {
        file: file.to_owned(),
        line,
        field,
        message,
    }
}

/// The line of `field` (`table.key`) in `text`, or 0 when it is not written there (a
/// default value failed validation).
pub(super) fn line_of_field(text: &str, field: &str) -> usize {
    let (table, key) = field.rsplit_once('.').unwrap_or(("", field));
    let mut current = String::new();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.starts_with('[') {
            current = l.trim_matches(['[', ']']).trim().to_owned();
            if current == field {
                return i + 1;
            }
            continue;
        }
        if let Some((k, _)) = l.split_once('=') {
            if current == table && k.trim().trim_matches('"') == key {
                return i + 1;
            }
        }
    }
    0
}

/// The socket used when neither the config nor the command line names one:
/// `$XDG_RUNTIME_DIR/tracehound/tracehoundd.sock` when set, `/run/tracehound/tracehoundd.sock`
/// for root, else `/tmp/tracehound-UID/tracehoundd.sock`.
pub fn default_socket_path() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir)
            .join("tracehound")
            .join("tracehoundd.sock");
    }
    let uid = rustix::process::getuid();
    if uid.is_root() {
        PathBuf::from("/run/tracehound/tracehoundd.sock")
    } else {
        PathBuf::from(format!("/tmp/tracehound-{}", uid.as_raw())).join("tracehoundd.sock")
    }
}
