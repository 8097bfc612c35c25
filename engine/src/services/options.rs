//! What the configuration says about services: `[registry]` (what a registration may hold,
//! when silence makes an instance unhealthy and then gone) and `[[services]]` (per service
//! name pattern: the balancing strategy and the circuit breaker). A service takes the first
//! entry whose pattern matches its name; none matching means the defaults.

use serde::{Deserialize, Serialize};
use shardbus_protocol::topic;

/// How a request picks one instance of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Each instance in turn.
    #[default]
    RoundRobin,
    /// The instance with the fewest requests in flight from this shard (ties in turn).
    LeastPending,
    /// In turn, in proportion to each instance's weight (smooth weighted round robin).
    Weighted,
    /// The same instance for the same value of `hash_header` (rendezvous hashing, so an
    /// instance coming or going moves only its own share of keys).
    ConsistentHash,
}

impl Strategy {
    /// The name the configuration and the listings use.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round_robin",
            Strategy::LeastPending => "least_pending",
            Strategy::Weighted => "weighted",
            Strategy::ConsistentHash => "consistent_hash",
        }
    }
}

/// `[registry]`: bounds and liveness for every service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// The shortest heartbeat interval a registration may ask for, milliseconds.
    pub min_heartbeat_ms: u32,
    /// The longest, milliseconds.
    pub max_heartbeat_ms: u32,
    /// Heartbeat intervals of silence before an instance is marked unhealthy (no requests).
    pub unhealthy_after: u32,
    /// Heartbeat intervals of silence before an instance is removed with its endpoints.
    pub remove_after: u32,
    /// Instances one connection may register.
    pub max_services_per_connection: u32,
    /// Endpoints one registration may list.
    pub max_endpoints: u32,
    /// Metadata entries one registration may carry.
    pub max_metadata: u32,
    /// REGISTER and DEREGISTER a connection may send per second (registration churn costs
    /// every shard a replica update), beyond which `RATE_LIMITED`.
    pub max_registrations_per_second: u32,
    /// HEARTBEATs an instance may send per heartbeat interval, beyond which `RATE_LIMITED`.
    pub max_heartbeats_per_interval: u32,
}

impl Default for RegistryConfig {
    fn default() -> RegistryConfig {
        RegistryConfig {
            min_heartbeat_ms: 100,
            max_heartbeat_ms: 3_600_000,
            unhealthy_after: 2,
            remove_after: 5,
            max_services_per_connection: 16,
            max_endpoints: 32,
            max_metadata: 32,
            max_registrations_per_second: 20,
            max_heartbeats_per_interval: 4,
        }
    }
}

impl RegistryConfig {
    /// What is wrong, as (key under `registry`, rule).
    pub fn problem(&self) -> Option<(&'static str, &'static str)> {
        let checks = [
            (
                "min_heartbeat_ms",
                self.min_heartbeat_ms >= 10,
                "at least 10",
            ),
            (
                "max_heartbeat_ms",
                self.max_heartbeat_ms >= self.min_heartbeat_ms,
                "at least min_heartbeat_ms",
            ),
            ("unhealthy_after", self.unhealthy_after >= 1, "at least 1"),
            (
                "remove_after",
                self.remove_after >= self.unhealthy_after,
                "at least unhealthy_after",
            ),
            (
                "max_services_per_connection",
                (1..=1_024).contains(&self.max_services_per_connection),
                "1..=1024",
            ),
            (
                "max_endpoints",
                (1..=1_024).contains(&self.max_endpoints),
                "1..=1024",
            ),
            ("max_metadata", self.max_metadata <= 1_024, "at most 1024"),
            (
                "max_registrations_per_second",
                self.max_registrations_per_second >= 1,
                "at least 1",
            ),
            (
                "max_heartbeats_per_interval",
                self.max_heartbeats_per_interval >= 1,
                "at least 1",
            ),
        ];
        checks
            .into_iter()
            .find(|(_, ok, _)| !ok)
            .map(|(key, _, rule)| (key, rule))
    }
}

/// One `[[services]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// The service names these options apply to (a topic pattern: `billing.*`, `>`).
    pub name: String,
    /// How requests pick an instance.
    pub strategy: Strategy,
    /// The request header whose value `consistent_hash` hashes (requests without it are
    /// spread in turn).
    pub hash_header: String,
    /// Timeouts in a row that take an instance out of rotation (0: no breaker).
    pub breaker_failures: u32,
    /// How long a tripped instance stays out, milliseconds.
    pub breaker_cooldown_ms: u64,
    /// Requests in flight over all instances at once (0: no limit); more wait in the queue.
    pub max_concurrent: u32,
    /// Requests that may wait for a free slot, first in first out (0: none wait).
    pub queue_limit: u32,
    /// The longest a request waits in the queue before `SERVICE_BUSY`, milliseconds.
    pub queue_timeout_ms: u64,
    /// Requests a second the service takes, over all requesters (0: no limit).
    pub rate_per_sec: u32,
}

impl Default for ServiceConfig {
    fn default() -> ServiceConfig {
        ServiceConfig {
            name: ">".into(),
            strategy: Strategy::RoundRobin,
            hash_header: "sb-key".into(),
            breaker_failures: 5,
            breaker_cooldown_ms: 10_000,
            max_concurrent: 0,
            queue_limit: 0,
            queue_timeout_ms: 1_000,
            rate_per_sec: 0,
        }
    }
}

impl ServiceConfig {
    /// What is wrong with this entry, as (key under the entry, rule).
    pub fn problem(&self, max_topic_len: usize) -> Option<(&'static str, &'static str)> {
        if topic::validate_pattern(self.name.as_bytes(), max_topic_len).is_err() {
            return Some(("name", "a valid topic pattern (PROTOCOL.md §4)"));
        }
        if self.strategy == Strategy::ConsistentHash && self.hash_header.is_empty() {
            return Some(("hash_header", "a header name for consistent_hash"));
        }
        if self.breaker_failures > 0 && self.breaker_cooldown_ms == 0 {
            return Some((
                "breaker_cooldown_ms",
                "above 0 when breaker_failures is set",
            ));
        }
        if self.queue_limit > 0 && self.max_concurrent == 0 {
            return Some(("queue_limit", "needs max_concurrent above 0"));
        }
        if self.queue_limit > 0 && self.queue_timeout_ms == 0 {
            return Some(("queue_timeout_ms", "above 0 when queue_limit is set"));
        }
        None
    }

    /// Whether its requests pass the service's gate at its home shard (flow control).
    pub fn gated(&self) -> bool {
        self.max_concurrent > 0 || self.rate_per_sec > 0
    }

    /// The options of service `name`: the first entry that matches, or the defaults.
    pub(crate) fn for_name(entries: &[ServiceConfig], name: &str) -> ServiceConfig {
        entries
            .iter()
            .find(|entry| topic::matches(&entry.name, name))
            .cloned()
            .unwrap_or_default()
    }
}
