//! Command-line flags of the `shardbus` binary. Flags override the environment, which overrides
//! the file, which overrides the embedded defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// shardbus: a thread-per-core message broker.
///
/// Every option has an embedded default; a TOML file (`--config`), `SHARDBUS_*` environment
/// variables (`SHARDBUS_LISTEN`, `SHARDBUS_LIMITS__MAX_PAYLOAD`: sections joined by `__`) and
/// these flags override it, in that order. `--set section.key=value` reaches any option.
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "shardbus", version)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Binary protocol listen address.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// HTTP listen address (health, metrics, WebSocket).
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Option<SocketAddr>,
    /// Number of shards (0 = one per available core).
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
    /// Log format.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormatArg>,
    /// How long an idle shard spins before parking, microseconds.
    #[arg(long, value_name = "US")]
    pub spin_before_park_us: Option<u64>,
    /// Set any option: `--set limits.max_payload=65536` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Read a password from standard input, print its argon2 hash for `[[auth.users]]`, exit.
    #[arg(long)]
    pub hash_password: bool,
}

/// `--log-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}
