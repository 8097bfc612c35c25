//! Log output: `tracing` to stderr, human-readable or JSON lines, filtered by `RUST_LOG` when
//! it is set and by the `log_level` option otherwise (a filter directive such as `info` or
//! `shardbus_engine=debug,info`), which a configuration reload can change (`set_level`).
//! glommio logs through the `log` crate; the subscriber's `log` bridge (tracing-subscriber's
//! `tracing-log` feature, on by default) turns those into events too, so its warnings (e.g.
//! failed buffer registration) are not lost.

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Replaces the installed subscriber's filter.
type SetFilter = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;

static SET_FILTER: OnceLock<SetFilter> = OnceLock::new();

/// Installs the global subscriber with `level` unless `RUST_LOG` is set. A second call does
/// nothing.
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => {
            let builder = builder.with_filter_reloading();
            let handle = builder.reload_handle();
            if builder.try_init().is_ok() {
                let _ = SET_FILTER.set(Box::new(move |f| {
                    handle.reload(f).map_err(|e| e.to_string())
                }));
            }
        }
        LogFormat::Json => {
            let builder = builder.json().with_filter_reloading();
            let handle = builder.reload_handle();
            if builder.try_init().is_ok() {
                let _ = SET_FILTER.set(Box::new(move |f| {
                    handle.reload(f).map_err(|e| e.to_string())
                }));
            }
        }
    }
}

/// Whether `level` is a filter directive `init` and `set_level` accept.
pub fn is_valid_level(level: &str) -> bool {
    EnvFilter::try_new(level).is_ok()
}

/// Filters the log with `level` from now on (a reload); nothing when no subscriber of ours is
/// installed (in-process servers).
///
/// # Errors
/// `level` is not a filter directive, or the subscriber refused it.
pub fn set_level(level: &str) -> Result<(), String> {
    let filter = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
    match SET_FILTER.get() {
        Some(set) => set(filter),
        None => Ok(()),
    }
}
