//! `[cluster]`: whether this broker is one node of several sharing topics over Redis, its name,
//! and how fast a silent node is given up.

use serde::{Deserialize, Serialize};

/// Nodes sharing interest and traffic over Redis (ARCHITECTURE.md, *Nodes over Redis*).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// The Redis the nodes meet in (`redis://` or `rediss://`; `[redis]`'s `ca_file`,
    /// `timeout_ms` and `key_prefix` apply); empty: not clustered.
    pub redis_url: String,
    /// This node's name, unique among the nodes (letters, digits, `-`, `_`; at most 64); empty:
    /// made from the host name and the process id.
    pub node_id: String,
    /// How often the node tells the others it is alive.
    pub heartbeat_ms: u64,
    /// A node silent this long is taken for gone: its interest is dropped everywhere.
    pub node_timeout_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> ClusterConfig {
        ClusterConfig {
            redis_url: String::new(),
            node_id: String::new(),
            heartbeat_ms: 1_000,
            node_timeout_ms: 3_000,
        }
    }
}

impl ClusterConfig {
    /// Whether the broker is a node of a cluster.
    pub fn enabled(&self) -> bool {
        !self.redis_url.is_empty()
    }

    /// The first key whose value is refused, and why.
    pub(crate) fn problem(&self) -> Option<(&'static str, &'static str)> {
        let url_ok = self.redis_url.is_empty()
            || self.redis_url.starts_with("redis://")
            || self.redis_url.starts_with("rediss://");
        let id_ok = self.node_id.len() <= 64
            && self
                .node_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !url_ok {
            Some(("redis_url", "a redis:// or rediss:// URL"))
        } else if !id_ok {
            Some(("node_id", "at most 64 letters, digits, - and _"))
        } else if self.heartbeat_ms == 0 {
            Some(("heartbeat_ms", "at least 1"))
        } else if self.node_timeout_ms < 2 * self.heartbeat_ms {
            Some(("node_timeout_ms", "at least twice heartbeat_ms"))
        } else {
            None
        }
    }

    /// The configured name, or one made from the host name and process id.
    pub(crate) fn node_name(&self) -> String {
        if !self.node_id.is_empty() {
            return self.node_id.clone();
        }
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        let host: String = host
            .trim()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(40)
            .collect();
        format!(
            "{}-{}",
            if host.is_empty() { "node" } else { &host },
            std::process::id()
        )
    }
}
