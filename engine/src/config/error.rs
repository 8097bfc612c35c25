//! `ConfigError`: why a configuration was refused, always naming the key or source at fault.

use std::path::PathBuf;

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// An environment variable or `--set` could not be applied.
    #[error("{source_name}: {message}")]
    Override {
        /// The variable name or `--set` argument.
        source_name: String,
        /// What is wrong.
        message: String,
    },
    /// A key is unknown or its value has the wrong type.
    #[error("config key `{key}`: {message}")]
    Key {
        /// The dotted key path.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A value parses but is not allowed.
    #[error("config key `{key}`: {reason}")]
    Invalid {
        /// The dotted key path.
        key: String,
        /// The rule it breaks.
        reason: String,
    },
    /// The configuration could not be printed.
    #[error("cannot print config: {0}")]
    Print(String),
}
