//! Per-shard counters. Each shard writes only its own `ShardMetrics` (a relaxed load and store:
//! no read-modify-write, no contention), and anyone may read every shard's at any time: the
//! status op and the HTTP edge's `/metrics`. Nothing here takes a lock.

use std::sync::atomic::{AtomicU64, Ordering};

use shardbus_protocol::{CODE_TABLE, ErrorCode};

use crate::latency::LatencyHistogram;

macro_rules! metrics {
    ($( $(#[doc = $doc:literal])* $variant:ident = $name:literal, $kind:ident; )*) => {
        /// What a shard counts. Gauges go up and down; counters only up.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Metric {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl Metric {
            /// Every metric, in report order.
            pub const ALL: &'static [Metric] = &[$( Metric::$variant, )*];

            /// The name reported by the status op and, prefixed, by Prometheus.
            pub fn name(self) -> &'static str {
                match self { $( Metric::$variant => $name, )* }
            }

            /// What the metric counts (its doc comment), for Prometheus' HELP line.
            pub fn help(self) -> &'static str {
                match self { $( Metric::$variant => concat!($($doc),*), )* }
            }

            /// Whether the value is a level (it goes down too) rather than a running total.
            pub fn is_gauge(self) -> bool {
                match self { $( Metric::$variant => metrics!(@gauge $kind), )* }
            }
        }
    };
    (@gauge gauge) => { true };
    (@gauge counter) => { false };
}

metrics! {
    /// Open client connections.
    Connections = "connections", gauge;
    /// Connections accepted since start.
    ConnectionsTotal = "connections_total", counter;
    /// Connections refused at the connection limit.
    ConnectionsRefused = "connections_refused", counter;
    /// Connections that moved here from another shard (a requester to its responder's shard).
    ConnectionsMovedIn = "connections_moved_in", counter;
    /// Live subscriptions.
    Subscriptions = "subscriptions", gauge;
    /// PUB and REQ frames received.
    MsgsIn = "msgs_in", counter;
    /// Payload bytes received in PUB and REQ.
    BytesIn = "bytes_in", counter;
    /// MSG and RESP frames delivered to clients.
    MsgsOut = "msgs_out", counter;
    /// Payload bytes delivered in MSG and RESP.
    BytesOut = "bytes_out", counter;
    /// Records sent to other shards over the mesh.
    ForwardsOut = "mesh_forwards_out", counter;
    /// Records received from other shards.
    ForwardsIn = "mesh_forwards_in", counter;
    /// Forwarded messages that found no subscriber here any more (it left while the message
    /// was on its way): at-most-once delivery, counted rather than silent.
    ForwardsUnmatched = "mesh_forwards_unmatched", counter;
    /// Times a session stopped reading because a mesh link was full (backpressure).
    MeshStalls = "mesh_backpressure_stalls", counter;
    /// Times a reader paused because its deliveries filled an outbox past half of
    /// `max_pending` (producer stall, as nats-server does).
    PublisherStalls = "publisher_stalls", counter;
    /// Connections cut because their outbound buffer reached `max_pending`.
    SlowConsumers = "slow_consumers", counter;
    /// Requests waiting for a response on this shard.
    RequestsPending = "requests_pending", gauge;
    /// Requests answered with TIMEOUT.
    RequestsTimedOut = "requests_timed_out", counter;
    /// Requests answered with NO_RESPONDERS.
    RequestsNoResponders = "requests_no_responders", counter;
    /// Requests ended because their requester went away before an answer.
    RequestsAbandoned = "requests_abandoned", counter;
    /// RESPs refused: the reply token was delivered to another connection, or the identity may
    /// not answer requests on the subject.
    ResponsesRefused = "responses_refused", counter;
    /// Responses that arrived after their request ended (timeout, requester gone): dropped.
    LateResponses = "late_responses", counter;
    /// Connections closed for leaving two PINGs unanswered.
    StaleConnections = "stale_connections", counter;
    /// Connections that failed or timed out in the TLS handshake.
    TlsFailures = "tls_handshake_failures", counter;
    /// HELLOs with a password refused because the shard or the peer's address had its most
    /// password checks in flight.
    PasswordChecksRefused = "password_checks_refused", counter;
    /// Configuration reloads this shard applied.
    ReloadsApplied = "reloads_applied", counter;
    /// Times the shard's watch task ran (its heartbeat, every `runtime.watch_interval_us`).
    WatchTicks = "watch_ticks", counter;
    /// Times the shard's keepalive task ran (every `limits.ping_interval_ms`).
    KeepaliveTicks = "keepalive_ticks", counter;
    /// Rooms this shard is home to that have members.
    Rooms = "rooms", gauge;
    /// Members of the rooms this shard is home to.
    RoomMembers = "room_members", gauge;
    /// Joins accepted by this shard as a room's home.
    RoomJoins = "room_joins", counter;
    /// Members gone from this shard's rooms (LEAVE, unsubscribe, or their connection closed).
    RoomLeaves = "room_leaves", counter;
    /// Joins that asked to recover and got every missed publication.
    RoomRecoveries = "room_recoveries", counter;
    /// Joins that asked to recover and could not (other epoch, or past the window).
    RoomRecoveriesMissed = "room_recoveries_missed", counter;
    /// Publications stamped into a room's history.
    HistoryAppends = "history_appends", counter;
    /// Bytes of room history held.
    HistoryBytes = "history_bytes", gauge;
    /// Rooms whose history was dropped for `history.max_bytes`.
    HistoryRoomsEvicted = "history_rooms_evicted", counter;
    /// Publications Redis kept and gave a position (`history.backend = "redis"`).
    HistoryRedisAppends = "history_redis_appends", counter;
    /// Room streams read from Redis into a home shard's copy.
    HistoryRedisLoads = "history_redis_loads", counter;
    /// Publications kept in memory instead, because Redis could not keep them (each outage
    /// starts the rooms it touches on a new epoch).
    HistoryFallbacks = "history_fallbacks", counter;
    /// Publications to history rooms dropped because `history.max_pending` were already on
    /// their way to Redis.
    HistoryOverflows = "history_overflows", counter;
    /// Requests this shard has on their way to Redis.
    HistoryPending = "history_pending", gauge;
    /// Room copies read again from Redis because a publication of another node did not come
    /// in time to keep the room's order (a cluster's gap).
    HistoryGapReloads = "history_gap_reloads", counter;
    /// Records (publications, requests, responses, asks) from other nodes this shard took.
    ClusterIn = "cluster_in", counter;
    /// Batches from other nodes that were not well formed (dropped).
    ClusterMalformed = "cluster_malformed", counter;
    /// Service instances whose connection is on this shard.
    ServiceInstances = "service_instances", gauge;
    /// REGISTERs received.
    ServiceRegistrations = "service_registrations", counter;
    /// Service ops refused (REGISTER, HEARTBEAT, DEREGISTER), each with its code.
    ServiceRefusals = "service_refusals", counter;
    /// HEARTBEATs received.
    ServiceHeartbeats = "service_heartbeats", counter;
    /// Instances marked unhealthy for missing their heartbeats.
    ServiceUnhealthy = "service_unhealthy", counter;
    /// Instances gone: deregistered, their connection closed, or silent past `remove_after`.
    ServiceRemovals = "service_removals", counter;
    /// Requests balanced to a service instance.
    ServiceRequests = "service_requests", counter;
    /// Service requests sent again because their instance vanished before they reached it.
    ServiceRetries = "service_retries", counter;
    /// Times a circuit breaker took an instance out of rotation.
    ServiceBreakerTrips = "service_breaker_trips", counter;
    /// System events published (one publication carries a poll cycle's events of a kind).
    EventsPublished = "events_published", counter;
    /// System events dropped: more of a kind in one cycle than `events.max_batch`.
    EventsDropped = "events_dropped", counter;
    /// Built-in commands answered (over the binary protocol or the HTTP API).
    CommandsRun = "commands_run", counter;
    /// Built-in commands refused: unknown, not allowed for the role, bad parameters, or the
    /// command's own refusal.
    CommandsRefused = "commands_refused", counter;
}

/// One shard's counters, written by that shard only.
#[derive(Debug)]
pub struct ShardMetrics {
    values: Box<[AtomicU64]>,
    errors: Box<[AtomicU64]>,
    /// From a request's arrival to its response going out to the requester (answered
    /// requests only; timeouts are `requests_timed_out`).
    pub request_latency: LatencyHistogram,
}

impl Default for ShardMetrics {
    fn default() -> ShardMetrics {
        ShardMetrics {
            values: Metric::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            errors: CODE_TABLE.iter().map(|_| AtomicU64::new(0)).collect(),
            request_latency: LatencyHistogram::default(),
        }
    }
}

impl ShardMetrics {
    /// Sets a gauge to `n`. Only the owning shard calls this.
    pub fn set(&self, metric: Metric, n: u64) {
        if let Some(cell) = self.values.get(metric as usize) {
            cell.store(n, Ordering::Relaxed);
        }
    }

    /// Adds `n`. Only the owning shard calls this.
    #[inline]
    pub fn add(&self, metric: Metric, n: u64) {
        if let Some(cell) = self.values.get(metric as usize) {
            cell.store(
                cell.load(Ordering::Relaxed).wrapping_add(n),
                Ordering::Relaxed,
            );
        }
    }

    /// Subtracts `n` from a gauge. Only the owning shard calls this.
    #[inline]
    pub fn sub(&self, metric: Metric, n: u64) {
        if let Some(cell) = self.values.get(metric as usize) {
            cell.store(
                cell.load(Ordering::Relaxed).saturating_sub(n),
                Ordering::Relaxed,
            );
        }
    }

    /// The current value.
    pub fn get(&self, metric: Metric) -> u64 {
        self.values
            .get(metric as usize)
            .map_or(0, |cell| cell.load(Ordering::Relaxed))
    }

    /// Counts one ERR sent with `code`.
    pub fn error(&self, code: ErrorCode) {
        if let Some(cell) = self.errors.get(usize::from(code.0).wrapping_sub(1)) {
            cell.store(
                cell.load(Ordering::Relaxed).wrapping_add(1),
                Ordering::Relaxed,
            );
        }
    }

    /// ERRs sent, by code, for the codes sent at least once.
    pub fn errors(&self) -> impl Iterator<Item = (ErrorCode, u64)> + '_ {
        CODE_TABLE
            .iter()
            .zip(self.errors.iter())
            .map(|(info, cell)| (info.code, cell.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
    }
}
