//! Log output: `tracing` to stderr, human-readable or JSON lines, filtered by `RUST_LOG`
//! (default `info`). glommio logs through the `log` crate; the subscriber's `log` bridge
//! (tracing-subscriber's `tracing-log` feature, on by default) turns those into events too,
//! so its warnings (e.g. failed buffer registration) are not lost.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. A second call does nothing.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
