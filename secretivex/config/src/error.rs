//! Configuration errors. Each names where the bad value came from: a file with line,
//! column and field, an environment variable, or a command-line flag.

use std::path::PathBuf;

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value in the file is wrong: syntax, type, unknown field, or a value the policy,
    /// a key source or the audit log refuses.
    #[error("{}:{line}:{column}: {field}: {message}", file.display())]
    Invalid {
        /// The configuration file.
        file: PathBuf,
        /// Line, from 1.
        line: usize,
        /// Column, from 1.
        column: usize,
        /// Dotted field path, e.g. `agent.max_signers` or `policy.rules[0].key`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The file cannot be read (missing, a directory, permissions, not UTF-8).
    // The cause is part of the message rather than an error source, so that printing
    // the chain (`{:#}`) does not say it twice.
    #[error("{}: cannot read the configuration: {cause}", file.display())]
    Read {
        /// The configuration file.
        file: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// An environment variable has a value that cannot be used.
    #[error("environment {var}: {message}")]
    Env {
        /// The variable, e.g. `SECRETIVEX_MAX_SIGNERS`.
        var: String,
        /// What is wrong.
        message: String,
    },
    /// A value from the command line or the built-in defaults cannot be used.
    #[error("{field}: {message}")]
    Other {
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    /// The field the error is about, when it names one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { field, .. } | ConfigError::Other { field, .. } => Some(field),
            _ => None,
        }
    }
}
