//! Finding, reading, validating and merging the configuration.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secretivex_policy::{Policy, PolicyError};

use crate::env::Env;
use crate::error::ConfigError;
use crate::locate::SourceText;
use crate::profile::builtin_defaults;
use crate::schema::{AgentSection, ConfigFile, Profile};

/// Where the configuration file comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileChoice {
    /// Named by `--config`: must exist.
    Flag(PathBuf),
    /// Named by `$SECRETIVEX_CONFIG`: must exist.
    Env(PathBuf),
    /// The default location: a missing file means "no file".
    Default(PathBuf),
    /// No file at all (no home directory to look in).
    None,
}

impl FileChoice {
    /// `--config`, else `$SECRETIVEX_CONFIG`, else `$XDG_CONFIG_HOME/secretivex/agent.toml`
    /// (or `~/.config/secretivex/agent.toml`).
    pub fn choose(flag: Option<&Path>, env: &Env) -> FileChoice {
        if let Some(path) = flag {
            return FileChoice::Flag(path.to_path_buf());
        }
        if let Some(path) = env.get("SECRETIVEX_CONFIG") {
            return FileChoice::Env(PathBuf::from(path));
        }
        let base = env
            .get("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| env.home().map(|h| h.join(".config")));
        match base {
            Some(dir) => FileChoice::Default(dir.join("secretivex").join("agent.toml")),
            None => FileChoice::None,
        }
    }
}

/// Everything the configuration is made of, above the file.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `--config FILE`.
    pub config_flag: Option<PathBuf>,
    /// `--profile`.
    pub profile_flag: Option<Profile>,
    /// `[agent]` fields given as command-line flags.
    pub flags: AgentSection,
    /// The environment.
    pub env: Env,
}

/// A validated, merged configuration.
#[derive(Debug)]
pub struct Loaded {
    /// The effective configuration: profile resolved, `[agent]` fully merged, `~` expanded.
    pub config: ConfigFile,
    /// The compiled policy (allow-all without a `[policy]` table).
    pub policy: Policy,
    /// The file it came from, if any.
    pub file: Option<PathBuf>,
    source: Option<SourceText>,
}

impl Loaded {
    /// An error about dotted `field` of the file, located at its line (or at the top of
    /// the file when the field is not written in it).
    pub fn error_at(&self, field: &str, message: impl std::fmt::Display) -> ConfigError {
        match (&self.file, &self.source) {
            (Some(file), Some(source)) => invalid(file, source, field, message.to_string()),
            _ => ConfigError::Other {
                field: field.to_string(),
                message: message.to_string(),
            },
        }
    }

    /// The effective configuration as TOML, in the file's own schema (it parses back).
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string_pretty(&self.config).map_err(|e| ConfigError::Other {
            field: "(print)".into(),
            message: e.to_string(),
        })
    }

    /// The merged `[agent]` table (every field with a default is set).
    pub fn agent(&self) -> &AgentSection {
        &self.config.agent
    }

    /// The profile in force.
    pub fn profile(&self) -> Profile {
        self.config.profile.unwrap_or_default()
    }

    /// Whether the agent should watch its files.
    pub fn watch(&self) -> bool {
        self.config.agent.watch.unwrap_or(false)
    }

    /// `[agent] default_lifetime`.
    pub fn default_lifetime(&self) -> Option<Duration> {
        self.config.agent.default_lifetime.map(|d| d.get())
    }
}

fn invalid(file: &Path, source: &SourceText, field: &str, message: String) -> ConfigError {
    let pos = source
        .span_of(field)
        .map(|span| source.position(span.start))
        .unwrap_or(crate::locate::Position { line: 1, column: 1 });
    ConfigError::Invalid {
        file: file.to_path_buf(),
        line: pos.line,
        column: pos.column,
        field: field.to_string(),
        message,
    }
}

/// Parses one file's text (no merging): the schema check with located errors.
pub fn parse_str(file: &Path, text: &str) -> Result<(ConfigFile, SourceText), ConfigError> {
    let source = SourceText::new(text.to_string());
    match toml::from_str::<ConfigFile>(text) {
        Ok(parsed) => Ok((parsed, source)),
        Err(e) => {
            let start = e.span().map_or(0, |s| s.start);
            let pos = source.position(start);
            let field = e
                .span()
                .and_then(|s| source.field_at(s.start))
                .unwrap_or_else(|| "(syntax)".to_string());
            Err(ConfigError::Invalid {
                file: file.to_path_buf(),
                line: pos.line,
                column: pos.column,
                field,
                message: e.message().trim_end().replace('\n', " "),
            })
        }
    }
}

/// Reads the chosen file: `Ok(None)` for a missing default file.
fn read_file(choice: &FileChoice) -> Result<Option<(PathBuf, String)>, ConfigError> {
    let (path, required) = match choice {
        FileChoice::Flag(p) | FileChoice::Env(p) => (p, true),
        FileChoice::Default(p) => (p, false),
        FileChoice::None => return Ok(None),
    };
    if !required {
        // The default file is optional. When even its existence cannot be told (a home
        // directory the process may not enter, e.g. another user's $HOME), there is no
        // file this process could have been meant to use. A file that exists but cannot
        // be read is still an error.
        match std::fs::symlink_metadata(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(_) if path.parent().is_some_and(|d| std::fs::metadata(d).is_err()) => {
                return Ok(None)
            }
            Err(_) => {}
        }
    }
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some((path.clone(), text))),
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(cause) => Err(ConfigError::Read {
            file: path.clone(),
            cause,
        }),
    }
}

/// Expands a leading `~/` (or a lone `~`) with `home`.
pub fn expand_tilde(path: &Path, home: Option<&Path>) -> PathBuf {
    let Some(home) = home else {
        return path.to_path_buf();
    };
    match path.strip_prefix("~") {
        Ok(rest) => home.join(rest),
        Err(_) => path.to_path_buf(),
    }
}

/// Finds, reads, validates and merges the configuration: flag > environment > file >
/// profile > built-in default. The policy is compiled here, so a configuration that
/// loads is one the agent can run.
///
/// # Errors
/// The first problem, located (`FILE:LINE:COLUMN: FIELD: message`, or the environment
/// variable that is wrong).
pub fn load(req: &Request) -> Result<Loaded, ConfigError> {
    let choice = FileChoice::choose(req.config_flag.as_deref(), &req.env);
    let (file, source, parsed) = match read_file(&choice)? {
        Some((path, text)) => {
            let (parsed, source) = parse_str(&path, &text)?;
            (Some(path), Some(source), parsed)
        }
        None => (None, None, ConfigFile::default()),
    };
    merge(req, file, source, parsed)
}

/// Merges an already parsed file with the layers of `req` and validates the result.
fn merge(
    req: &Request,
    file: Option<PathBuf>,
    source: Option<SourceText>,
    parsed: ConfigFile,
) -> Result<Loaded, ConfigError> {
    let profile = match req.profile_flag {
        Some(p) => p,
        None => req.env.profile()?.or(parsed.profile).unwrap_or_default(),
    };
    let home = req.env.home();
    let mut agent = req
        .flags
        .clone()
        .or(req.env.agent_section()?)
        .or(parsed.agent)
        .or(profile.defaults())
        .or(builtin_defaults());
    agent.socket = agent.socket.map(|s| expand_tilde(&s, home.as_deref()));
    let mut audit = parsed.audit;
    if let Some(spec) = audit.as_mut() {
        spec.path = expand_tilde(&spec.path, home.as_deref());
    }
    let config = ConfigFile {
        profile: Some(profile),
        agent,
        keys: parsed.keys,
        policy: parsed.policy,
        audit,
        pkcs11: parsed
            .pkcs11
            .into_iter()
            .map(|mut p| {
                p.module = expand_tilde(&p.module, home.as_deref());
                p.pin_file = p.pin_file.map(|f| expand_tilde(&f, home.as_deref()));
                p
            })
            .collect(),
    };
    let mut loaded = Loaded {
        config,
        policy: Policy::allow_all(),
        file,
        source,
    };
    if let Some(spec) = &loaded.config.policy {
        // Variants added later by the policy crate still get located at `[policy]`.
        #[allow(unreachable_patterns)]
        let compiled = Policy::compile(spec).map_err(|e| match e {
            PolicyError::Invalid { field, message } => {
                loaded.error_at(&format!("policy.{field}"), message)
            }
            other => loaded.error_at("policy", other),
        });
        loaded.policy = compiled?;
    }
    Ok(loaded)
}
