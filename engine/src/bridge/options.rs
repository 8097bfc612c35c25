//! `[redis]`: where the Redis bridge connects and how long it waits.

use serde::{Deserialize, Serialize};

/// The Redis server the bridge talks to (`history.backend = "redis"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS; empty: no Redis.
    pub url: String,
    /// A PEM file of the certificates a `rediss://` server's chain must lead to, instead of
    /// the system's roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// How long a connection attempt, and then any one round trip, may take before Redis is
    /// taken to be unreachable.
    pub timeout_ms: u64,
    /// Prepended to every key the broker writes, so that several brokers (or other users) can
    /// share one Redis.
    pub key_prefix: String,
}

impl Default for RedisConfig {
    fn default() -> RedisConfig {
        RedisConfig {
            url: String::new(),
            ca_file: None,
            timeout_ms: 2_000,
            key_prefix: "sb:".to_owned(),
        }
    }
}

impl RedisConfig {
    /// The first key whose value is refused, and why.
    pub(crate) fn problem(&self) -> Option<(&'static str, &'static str)> {
        let scheme_ok = self.url.is_empty()
            || self.url.starts_with("redis://")
            || self.url.starts_with("rediss://");
        if !scheme_ok {
            return Some(("url", "a redis:// or rediss:// URL"));
        }
        if self.timeout_ms == 0 {
            return Some(("timeout_ms", "at least 1"));
        }
        if self.ca_file.is_some() && !self.url.starts_with("rediss://") {
            return Some(("ca_file", "needs a rediss:// url"));
        }
        None
    }
}
