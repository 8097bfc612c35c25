//! Layering: embedded defaults, then the TOML file, then `SHARDBUS_*` environment variables,
//! then flags. Each layer is a TOML table merged key by key over the one before, and the result
//! is deserialised once, so an unknown key or a wrong type is reported with its full path
//! whichever layer it came from.

use std::path::Path;

use toml::{Table, Value};

use super::Config;
use super::cli::Cli;
use super::error::ConfigError;

/// Environment variables with this prefix set options; `__` separates sections
/// (`SHARDBUS_LIMITS__MAX_PAYLOAD` sets `limits.max_payload`).
pub const ENV_PREFIX: &str = "SHARDBUS_";

/// Builds the effective configuration from the flags in `cli` and the environment `env`
/// (pass `std::env::vars()`), then validates it.
///
/// # Errors
/// Any [`ConfigError`], naming the file, variable, flag or key at fault.
pub fn load(
    cli: &Cli,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let mut table = Table::new();
    if let Some(path) = &cli.config {
        merge(&mut table, read_file(path)?);
    }
    let mut env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(name, _)| name.starts_with(ENV_PREFIX))
        .collect();
    env.sort(); // a stable order, so a conflicting pair fails the same way every time
    for (name, value) in env {
        let key = name
            .trim_start_matches(ENV_PREFIX)
            .to_ascii_lowercase()
            .replace("__", ".");
        set_path(&mut table, &key, parse_scalar(&value), &name)?;
    }
    apply_flags(&mut table, cli)?;
    let config: Config =
        serde_path_to_error::deserialize(Value::Table(table)).map_err(|e| ConfigError::Key {
            key: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
    config.validate()?;
    Ok(config)
}

fn read_file(path: &Path) -> Result<Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    text.parse::<Table>().map_err(|e| ConfigError::Syntax {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

fn apply_flags(table: &mut Table, cli: &Cli) -> Result<(), ConfigError> {
    let named = [
        ("listen", cli.listen.map(|a| Value::String(a.to_string()))),
        (
            "http_listen",
            cli.http_listen.map(|a| Value::String(a.to_string())),
        ),
        (
            "shards",
            cli.shards
                .and_then(|n| i64::try_from(n).ok())
                .map(Value::Integer),
        ),
        (
            "log_format",
            // clap's value names are the config's (`human`, `json`).
            cli.log_format
                .and_then(|f| clap::ValueEnum::to_possible_value(&f))
                .map(|v| Value::String(v.get_name().to_owned())),
        ),
        (
            "runtime.spin_before_park_us",
            cli.spin_before_park_us
                .and_then(|n| i64::try_from(n).ok())
                .map(Value::Integer),
        ),
    ];
    for (key, value) in named {
        if let Some(value) = value {
            set_path(table, key, value, &format!("--{}", key.replace('_', "-")))?;
        }
    }
    for assignment in &cli.set {
        let source = format!("--set {assignment}");
        let Some((key, value)) = assignment.split_once('=') else {
            return Err(ConfigError::Override {
                source_name: source,
                message: "expected KEY=VALUE".into(),
            });
        };
        set_path(table, key.trim(), parse_scalar(value.trim()), &source)?;
    }
    Ok(())
}

/// Reads an override's text as a TOML value (`123`, `true`, `"quoted"`), falling back to a
/// plain string (`127.0.0.1:7400`, `json`).
fn parse_scalar(text: &str) -> Value {
    format!("v = {text}")
        .parse::<Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(text.to_owned()))
}

fn set_path(table: &mut Table, key: &str, value: Value, source: &str) -> Result<(), ConfigError> {
    let mut parts = key.split('.').peekable();
    let mut current = table;
    while let Some(part) = parts.next() {
        if part.is_empty() {
            return Err(ConfigError::Override {
                source_name: source.to_owned(),
                message: format!("`{key}` has an empty key segment"),
            });
        }
        if parts.peek().is_none() {
            current.insert(part.to_owned(), value);
            return Ok(());
        }
        let entry = current
            .entry(part.to_owned())
            .or_insert_with(|| Value::Table(Table::new()));
        current = match entry {
            Value::Table(t) => t,
            _ => {
                return Err(ConfigError::Override {
                    source_name: source.to_owned(),
                    message: format!("`{part}` is a value, not a section"),
                });
            }
        };
    }
    Ok(())
}

fn merge(base: &mut Table, layer: Table) {
    for (key, value) in layer {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(base_section)), Value::Table(section)) => {
                merge(base_section, section)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}
