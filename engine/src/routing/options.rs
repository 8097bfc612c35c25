//! `[routing]`: how the router chooses among responders (PROTOCOL.md §3.7).

use serde::{Deserialize, Serialize};

/// `[routing]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// Percent of requests (0–100) that go to a responder on the requester's own shard when
    /// there is one; the rest rotate over every responder on every shard. A request kept on
    /// its shard skips two cross-shard hops (measured with 8 requesters and 4 responders: 24%
    /// more requests per second, p99 halved, less CPU; perf/RESULTS.md), as NATS prefers a
    /// queue member on its own server; but the responders of a shard with many requesters get
    /// more than their share. 0 spreads requests evenly over all responders whatever their
    /// shard. Default 100.
    pub request_local_share: u8,
}

impl Default for RoutingConfig {
    fn default() -> RoutingConfig {
        RoutingConfig {
            request_local_share: 100,
        }
    }
}
