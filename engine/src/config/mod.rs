//! The broker's configuration: every option with its embedded default, so the broker runs with
//! no file at all. [`load`] layers a TOML file, `SHARDBUS_*` environment variables and flags on
//! top, flags winning; [`Config::validate`] names the key of any value it refuses.

mod cli;
mod error;
mod load;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use shardbus_protocol::Limits;

pub use cli::Cli;
pub use error::ConfigError;
pub use load::{ENV_PREFIX, load};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the binary protocol listens. Every shard binds it (SO_REUSEPORT).
    pub listen: SocketAddr,
    /// Where the HTTP edge listens (health, metrics, status, push API). Every shard binds it.
    pub http_listen: SocketAddr,
    /// The HTTP edge's limits.
    pub http: HttpConfig,
    /// TLS for both listeners (off unless `tls.cert` and `tls.key` are set).
    pub tls: TlsConfig,
    /// Who may connect and what they may do.
    pub auth: crate::auth::AuthConfig,
    /// Rate limits (all off by default).
    pub rate_limits: RateLimitsConfig,
    /// Number of shards; 0 means one per available core.
    pub shards: usize,
    /// Log output: `human` or `json`.
    pub log_format: LogFormat,
    /// What is logged: a filter directive (`info`, `debug`, `shardbus_engine=debug,info`);
    /// `RUST_LOG` wins when set at start. A reload applies it.
    pub log_level: String,
    /// Per-shard runtime settings.
    pub runtime: RuntimeConfig,
    /// Limits enforced on every connection.
    pub limits: LimitsConfig,
    /// Graceful shutdown.
    pub shutdown: ShutdownConfig,
    /// Room history storage.
    pub history: HistoryConfig,
    /// The Redis server history (`history.backend = "redis"`) is kept in.
    pub redis: crate::bridge::RedisConfig,
    /// Nodes sharing topics over Redis.
    pub cluster: crate::cluster::ClusterConfig,
    /// Room options by topic pattern (`[[rooms]]`); a subject takes the first that matches.
    pub rooms: Vec<crate::rooms::RoomConfig>,
    /// What a service registration may hold, and when silence makes an instance unhealthy
    /// and then gone.
    pub registry: crate::services::RegistryConfig,
    /// Service options by name pattern (`[[services]]`: strategy, breaker); a service takes
    /// the first that matches.
    pub services: Vec<crate::services::ServiceConfig>,
    /// Who may see system events (`$sys.events.>`), and how many a shard gathers at once.
    pub events: crate::events::EventsConfig,
    /// For a built-in command, the roles besides admin that may run it (`*`: everyone).
    pub commands: crate::commands::CommandsConfig,
    /// `[routing]`: how requests choose among responders.
    pub routing: crate::routing::RoutingConfig,
}

/// Where room history is kept (PROTOCOL.md §3.11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// Where history is kept: `memory` (lost with the process) or `redis` (Redis Streams at
    /// `[redis] url`, surviving restarts, shared by every node writing a room).
    pub backend: HistoryBackend,
    /// Bytes all rooms' history may hold in memory, server-wide (split over the shards); past
    /// it the oldest rooms' history is dropped (`history_rooms_evicted`). With Redis this is
    /// the home shards' copy of the streams.
    pub max_bytes: usize,
    /// With Redis: publications a shard may have on their way to Redis at once; past it a
    /// publication to a history room is dropped and counted (`history_overflows`).
    pub max_pending: u32,
}

/// Where room history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryBackend {
    /// In the home shard's memory.
    Memory,
    /// In Redis Streams, with the home shard's copy in memory.
    Redis,
}

impl Default for HistoryConfig {
    fn default() -> HistoryConfig {
        HistoryConfig {
            backend: HistoryBackend::Memory,
            max_bytes: 256 << 20,
            max_pending: 10_000,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// Per-shard runtime settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Bytes of I/O buffer memory each shard registers with io_uring. Locked memory needed:
    /// 3 × `io_memory` × shards (see [`crate::memlock`]).
    pub io_memory: usize,
    /// How long an idle shard spins before parking, in microseconds. 0 (the default) parks at
    /// once. Measured end to end (perf/RESULTS.md, ARCHITECTURE.md "Idle policy"): on a host
    /// where the clients share the cores, and on one where the shard has its core to itself,
    /// spinning cost more CPU per request at every rate and gained no latency; a spin helps
    /// only an isolated cross-core wake-up (`perf/examples/mesh_wakeup.rs`).
    pub spin_before_park_us: u64,
    /// After this many responses in a row from one other shard, a connection that only makes
    /// requests moves to that shard (0: never). Across shards each request wakes both shards
    /// twice; on one shard, once each way (perf/RESULTS.md, ARCHITECTURE.md *Moving a
    /// requester*).
    pub move_requester_after: u32,
    /// Submission entries of each of a shard's io_uring rings. The kernel sizes a ring's
    /// cancel table from it (a bucket per 32 completion entries, at most 256), and glommio
    /// cancels a timer every poll cycle, which the kernel looks for among the ring's pending
    /// polls, one per idle connection: with glommio's 128, 10,000 connections made each cancel
    /// walk ~600 of them (perf/RESULTS.md). 1024 (64 buckets) is the deepest whose rings fit
    /// the locked-memory headroom `memlock` counts; deeper rings (256 buckets at 4096) need
    /// about 0.5 KiB more locked memory per entry above 1024 per shard.
    pub ring_depth: u32,
    /// How often each shard's watch task records its heartbeat and looks for a shutdown
    /// request or a reload, microseconds (a shutdown or a reload also wakes it at once through
    /// the shard's doorbell). Nothing else wakes an idle shard this often, and every wake of a shard holding many
    /// connections is dear (glommio cancels a timer per poll cycle, and the kernel looks for
    /// it among the ring's pending polls: at 20 ms, 10,000 idle connections cost 4.7% of a
    /// core, perf/RESULTS.md), so the default is 250 ms.
    pub watch_interval_us: u64,
    /// How long a connection's writer, woken from idle, waits for more frames before it
    /// writes, microseconds: latency traded for CPU at ordinary loads, one write carrying what
    /// came meanwhile ([`crate::shard::write_tick`]; measured in perf/RESULTS.md). 0 (the
    /// default) writes as soon as the writer runs. At most 100 ms.
    pub write_delay_us: u64,
    /// A shard whose heartbeat is older than this, milliseconds, is stalled: `/healthz` and
    /// `/readyz` answer 503 and the process exits with an error so a supervisor restarts it.
    pub stall_timeout_ms: u64,
}

/// Limits enforced on every connection (PROTOCOL.md §2.5, §5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest payload, bytes.
    pub max_payload: u32,
    /// Longest topic or pattern, bytes.
    pub max_topic_len: u16,
    /// Most dot-separated tokens in a topic or pattern (at most 256).
    pub max_topic_tokens: u16,
    /// Largest headers block, bytes.
    pub max_headers_len: u32,
    /// Subscriptions one connection may hold.
    pub max_subscriptions: u32,
    /// Connections the whole server accepts.
    pub max_connections: u32,
    /// Bytes queued towards one client before it is cut as a slow consumer (64 MiB, as
    /// nats-server). Past half of it, publishers feeding the client are paused.
    pub max_pending: usize,
    /// Requests one connection may have waiting for a response.
    pub max_inflight_requests: u32,
    /// Requests one identity (a token, a user, `anonymous`) may have waiting, per shard: the
    /// per-connection cap cannot be got round by opening more connections.
    pub max_inflight_requests_per_identity: u32,
    /// Requests a shard keeps waiting in all.
    pub max_inflight_requests_per_shard: u32,
    /// The longest deadline a request may ask for, milliseconds; a longer `timeout_ms` is
    /// shortened to it.
    pub max_request_timeout_ms: u32,
    /// How long a new connection has to send HELLO, milliseconds.
    pub hello_timeout_ms: u64,
    /// Input bytes all connections still in their HELLO phase may hold together, server-wide
    /// (split evenly over the shards). Each may hold at most one HELLO's worth
    /// (`max_headers_len` + 48 bytes); past the budget a new one is refused `MAX_CONNECTIONS`.
    pub max_unauthenticated_bytes: usize,
    /// The longest the server stays silent towards a client, milliseconds; 0 disables keepalive.
    pub ping_interval_ms: u32,
    /// Rooms one connection may be a member of.
    pub max_rooms_per_connection: u32,
    /// Room ops (JOIN, PRESENCE, HISTORY) one connection may have waiting for their room's
    /// home; over it, `TOO_MANY_REQUESTS`. Each asks the home for work (a page, a replay), so
    /// a connection that never reads cannot queue it without bound.
    pub max_room_ops_in_flight: u32,
    /// Largest client info a JOIN may carry, bytes.
    pub max_member_info: u32,
    /// Most members one PRESENCE page may ask for.
    pub max_presence_page: u32,
    /// Most publications one HISTORY may ask for.
    pub max_history_page: u32,
}

/// TLS on the binary protocol's listener and the HTTP edge's (HTTPS, WSS). With a certificate
/// set, a connection whose first byte opens a TLS handshake gets TLS and any other plaintext,
/// unless `required`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The server's certificate chain, PEM.
    pub cert: Option<PathBuf>,
    /// The certificate's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates must chain to: mutual TLS.
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: also accept clients that present no certificate.
    pub client_cert_optional: bool,
    /// Refuse plaintext connections (`TLS_REQUIRED`) instead of serving them.
    pub required: bool,
}

/// Rate limits: token buckets, each holding one second's worth; 0 turns a limit off.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitsConfig {
    /// Messages (PUB, REQ) one connection may send a second.
    pub conn_msgs_per_sec: u64,
    /// Payload bytes one connection may send a second.
    pub conn_bytes_per_sec: u64,
    /// Messages one identity (token name, `anonymous`) may send a second, per shard.
    pub identity_msgs_per_sec: u64,
    /// Messages a whole shard accepts a second.
    pub shard_msgs_per_sec: u64,
    /// Connections a shard accepts a second (reconnect storms).
    pub accept_per_sec: u64,
    /// Per topic pattern, per shard: messages a second to subjects it matches.
    pub topics: Vec<TopicRateLimit>,
    /// What a message over a limit gets.
    pub policy: RateLimitPolicy,
}

/// A limit on one topic pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicRateLimit {
    /// The pattern.
    pub pattern: String,
    /// Messages a second.
    pub msgs_per_sec: u64,
}

/// What happens to a message over a rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateLimitPolicy {
    /// ERR `RATE_LIMITED` with the time until it would fit; the connection stays.
    #[default]
    Reject,
    /// ERR `RATE_LIMITED`, then close.
    Disconnect,
}

/// The HTTP edge's limits (the body limit is `limits.max_payload`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// How long a client may take to send a request's headers, milliseconds (slowloris).
    pub header_timeout_ms: u64,
    /// How long a client may take to send a request's body once its head arrived,
    /// milliseconds; past it the answer is 408 and the connection closes.
    pub body_timeout_ms: u64,
    /// Largest request head (request line and headers), bytes.
    pub max_header_bytes: usize,
    /// The longest `timeout_ms` a push-API request may ask for, milliseconds.
    pub max_request_timeout_ms: u32,
    /// Serve `/ws-echo`, a WebSocket that echoes every message through the same stack as
    /// `/ws`: for conformance suites (Autobahn), off by default.
    pub websocket_echo: bool,
    /// A directory whose files are served at `static_path`, read once at start (empty: none).
    pub static_dir: String,
    /// Where `static_dir`'s files are served: `index.html` at `<static_path>/`.
    pub static_path: String,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
            max_header_bytes: 16 << 10,
            max_request_timeout_ms: 60_000,
            websocket_echo: false,
            static_dir: String::new(),
            static_path: "/app".to_owned(),
        }
    }
}

/// Graceful shutdown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// After DRAIN, how long clients get before the server closes their connections, ms.
    pub grace_ms: u64,
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: loopback(7400),
            http_listen: loopback(7480),
            http: HttpConfig::default(),
            tls: TlsConfig::default(),
            auth: crate::auth::AuthConfig::default(),
            rate_limits: RateLimitsConfig::default(),
            shards: 0,
            log_format: LogFormat::Human,
            log_level: "info".to_owned(),
            runtime: RuntimeConfig::default(),
            limits: LimitsConfig::default(),
            shutdown: ShutdownConfig::default(),
            history: HistoryConfig::default(),
            redis: crate::bridge::RedisConfig::default(),
            cluster: crate::cluster::ClusterConfig::default(),
            rooms: Vec::new(),
            registry: crate::services::RegistryConfig::default(),
            services: Vec::new(),
            events: crate::events::EventsConfig::default(),
            commands: crate::commands::CommandsConfig::default(),
            routing: crate::routing::RoutingConfig::default(),
        }
    }
}

impl Default for RuntimeConfig {
    fn default() -> RuntimeConfig {
        RuntimeConfig {
            io_memory: 1 << 20,
            spin_before_park_us: 0,
            move_requester_after: 16,
            ring_depth: 1024,
            watch_interval_us: 250_000,
            write_delay_us: 0,
            stall_timeout_ms: 10_000,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        let wire = Limits::default();
        LimitsConfig {
            max_payload: wire.max_payload,
            max_topic_len: wire.max_topic_len,
            max_topic_tokens: wire.max_topic_tokens,
            max_headers_len: wire.max_headers_len,
            max_subscriptions: 10_000,
            max_connections: 100_000,
            max_pending: 64 << 20,
            max_inflight_requests: 1_000,
            max_inflight_requests_per_identity: 20_000,
            max_inflight_requests_per_shard: 200_000,
            max_request_timeout_ms: 300_000,
            hello_timeout_ms: 5_000,
            max_unauthenticated_bytes: 32 << 20,
            ping_interval_ms: 30_000,
            max_rooms_per_connection: 64,
            max_room_ops_in_flight: 16,
            max_member_info: 1024,
            max_presence_page: 1_000,
            max_history_page: 1_000,
        }
    }
}

impl Default for ShutdownConfig {
    fn default() -> ShutdownConfig {
        ShutdownConfig { grace_ms: 5_000 }
    }
}

/// The largest payload a server may be configured for (the frame length is a u32).
pub const MAX_PAYLOAD_CEILING: u32 = 256 << 20;

/// The most shards a server may run (WELCOME carries the shard as a u16; more is not useful).
pub const MAX_SHARDS: usize = 1024;

impl Config {
    /// The wire limits this configuration implies for decoding client frames.
    pub fn wire_limits(&self) -> Limits {
        let l = &self.limits;
        Limits {
            max_frame: Limits::frame_for(l.max_payload, l.max_topic_len, l.max_headers_len),
            max_payload: l.max_payload,
            max_topic_len: l.max_topic_len,
            max_headers_len: l.max_headers_len,
            max_topic_tokens: l.max_topic_tokens,
        }
    }

    /// Shards to run: the configured number, or `available_cores` when it is 0.
    pub fn shard_count(&self, available_cores: usize) -> usize {
        if self.shards == 0 {
            available_cores.max(1)
        } else {
            self.shards
        }
    }

    /// Checks values that parse but make no sense.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first key refused and why.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        let frame = u64::from(l.max_payload)
            + u64::from(l.max_headers_len)
            + u64::from(l.max_topic_len)
            + 48;
        let tls = &self.tls;
        let shards = self.shards.max(1) as u64;
        let checks: [(&str, bool, &str); 37] = [
            (
                "shards",
                self.shards <= MAX_SHARDS,
                "at most 1024 (0 = one per core)",
            ),
            (
                "log_level",
                crate::logging::is_valid_level(&self.log_level),
                "a tracing filter directive, such as info or shardbus_engine=debug,info",
            ),
            (
                "runtime.io_memory",
                self.runtime.io_memory >= 64 << 10,
                "at least 65536 bytes",
            ),
            (
                "runtime.spin_before_park_us",
                self.runtime.spin_before_park_us <= 1_000_000,
                "at most 1 s",
            ),
            (
                "runtime.move_requester_after",
                self.runtime.move_requester_after <= 1_000_000,
                "at most 1000000",
            ),
            (
                "runtime.ring_depth",
                (16..=32_768).contains(&self.runtime.ring_depth),
                "between 16 and 32768",
            ),
            (
                "runtime.write_delay_us",
                self.runtime.write_delay_us <= 100_000,
                "at most 100000 (100 ms)",
            ),
            (
                "runtime.watch_interval_us",
                (50..=1_000_000).contains(&self.runtime.watch_interval_us),
                "between 50 and 1000000 (1 s)",
            ),
            (
                "runtime.stall_timeout_ms",
                self.runtime.stall_timeout_ms >= 1_000
                    && self.runtime.stall_timeout_ms.saturating_mul(1_000)
                        >= self.runtime.watch_interval_us.saturating_mul(10),
                "at least 1000, and at least ten watch intervals",
            ),
            (
                "limits.max_payload",
                (1..=MAX_PAYLOAD_CEILING).contains(&l.max_payload),
                "between 1 and 268435456",
            ),
            ("limits.max_topic_len", l.max_topic_len >= 1, "at least 1"),
            (
                "limits.max_topic_tokens",
                (1..=shardbus_protocol::MAX_TOPIC_TOKENS_CEILING).contains(&l.max_topic_tokens),
                "between 1 and 256",
            ),
            (
                "limits.max_subscriptions",
                l.max_subscriptions >= 1,
                "at least 1",
            ),
            (
                "limits.max_connections",
                l.max_connections >= 1,
                "at least 1",
            ),
            (
                "limits.max_pending",
                l.max_pending as u64 >= frame,
                "at least one maximal frame (max_payload + max_headers_len + max_topic_len + 48)",
            ),
            (
                "limits.max_inflight_requests",
                l.max_inflight_requests >= 1,
                "at least 1",
            ),
            (
                "limits.max_inflight_requests_per_identity",
                l.max_inflight_requests_per_identity >= 1,
                "at least 1",
            ),
            (
                "limits.max_inflight_requests_per_shard",
                l.max_inflight_requests_per_shard >= 1,
                "at least 1",
            ),
            (
                "limits.max_request_timeout_ms",
                l.max_request_timeout_ms >= 1,
                "at least 1",
            ),
            (
                "limits.hello_timeout_ms",
                l.hello_timeout_ms >= 1,
                "at least 1",
            ),
            (
                "limits.max_unauthenticated_bytes",
                l.max_unauthenticated_bytes as u64 / shards >= u64::from(l.max_headers_len) + 48,
                "at least one HELLO (max_headers_len + 48 bytes) per shard",
            ),
            (
                "limits.max_rooms_per_connection",
                l.max_rooms_per_connection >= 1,
                "at least 1",
            ),
            (
                "limits.max_room_ops_in_flight",
                l.max_room_ops_in_flight >= 1,
                "at least 1",
            ),
            (
                "limits.max_presence_page",
                l.max_presence_page >= 1,
                "at least 1",
            ),
            (
                "routing.request_local_share",
                self.routing.request_local_share <= 100,
                "a percentage, 0 to 100",
            ),
            (
                "limits.max_history_page",
                l.max_history_page >= 1,
                "at least 1",
            ),
            (
                "history.max_bytes",
                self.history.max_bytes as u64 / shards >= 64 << 10,
                "at least 65536 bytes per shard",
            ),
            (
                "http.header_timeout_ms",
                self.http.header_timeout_ms >= 1,
                "at least 1",
            ),
            (
                "http.static_path",
                static_path_is_free(&self.http.static_path),
                "a path such as /app, not / nor one of the server's own (/api, /js, /ws, /dashboard, /demo, /healthz, /readyz, /metrics)",
            ),
            (
                "http.body_timeout_ms",
                self.http.body_timeout_ms >= 1,
                "at least 1",
            ),
            (
                "http.max_header_bytes",
                self.http.max_header_bytes >= 8192,
                "at least 8192 (hyper's minimum)",
            ),
            (
                "auth.max_password_checks",
                self.auth.max_password_checks >= 1,
                "at least 1",
            ),
            (
                "auth.max_password_checks_per_address",
                (1..=self.auth.max_password_checks)
                    .contains(&self.auth.max_password_checks_per_address),
                "between 1 and auth.max_password_checks",
            ),
            (
                "tls.key",
                tls.cert.is_some() == tls.key.is_some(),
                "tls.cert and tls.key go together",
            ),
            (
                "tls.required",
                !tls.required || tls.cert.is_some(),
                "needs tls.cert and tls.key",
            ),
            (
                "tls.client_ca",
                tls.client_ca.is_none() || tls.cert.is_some(),
                "needs tls.cert and tls.key",
            ),
            (
                "http_listen",
                self.http_listen != self.listen || self.listen.port() == 0,
                "must differ from listen (port 0 excepted: each picks a free port)",
            ),
        ];
        if let Some((key, _, rule)) = checks.into_iter().find(|(_, ok, _)| !ok) {
            return Err(ConfigError::Invalid {
                key: key.to_owned(),
                reason: rule.to_owned(),
            });
        }
        self.validate_rooms()?;
        self.validate_redis()?;
        self.validate_services()
    }

    fn validate_services(&self) -> Result<(), ConfigError> {
        if let Some((key, rule)) = self.registry.problem() {
            return Err(ConfigError::Invalid {
                key: format!("registry.{key}"),
                reason: rule.to_owned(),
            });
        }
        let roles = |role: &str| {
            self.auth.roles.contains_key(role) || crate::auth::BUILTIN_ROLES.contains(&role)
        };
        if let Some((key, rule)) = self.commands.problem(&roles) {
            return Err(ConfigError::Invalid {
                key: format!("commands.{key}"),
                reason: rule,
            });
        }
        let max_topic_len = usize::from(self.limits.max_topic_len);
        for (i, service) in self.services.iter().enumerate() {
            if let Some((key, rule)) = service.problem(max_topic_len) {
                return Err(ConfigError::Invalid {
                    key: format!("services[{i}].{key}"),
                    reason: rule.to_owned(),
                });
            }
        }
        Ok(())
    }

    fn validate_redis(&self) -> Result<(), ConfigError> {
        if let Some((key, rule)) = self.redis.problem() {
            return Err(ConfigError::Invalid {
                key: format!("redis.{key}"),
                reason: rule.to_owned(),
            });
        }
        if let Some((key, rule)) = self.cluster.problem() {
            return Err(ConfigError::Invalid {
                key: format!("cluster.{key}"),
                reason: rule.to_owned(),
            });
        }
        let history = &self.history;
        let refusal = if history.backend == HistoryBackend::Redis && self.redis.url.is_empty() {
            Some(("history.backend", "redis needs redis.url"))
        } else if history.max_pending == 0 {
            Some(("history.max_pending", "at least 1"))
        } else {
            None
        };
        match refusal {
            Some((key, reason)) => Err(ConfigError::Invalid {
                key: key.to_owned(),
                reason: reason.to_owned(),
            }),
            None => Ok(()),
        }
    }

    fn validate_rooms(&self) -> Result<(), ConfigError> {
        let max_topic_len = usize::from(self.limits.max_topic_len);
        for (i, room) in self.rooms.iter().enumerate() {
            if let Some((key, rule)) = room.problem(max_topic_len) {
                return Err(ConfigError::Invalid {
                    key: format!("rooms[{i}].{key}"),
                    reason: rule.to_owned(),
                });
            }
        }
        Ok(())
    }

    /// The configuration as TOML, as `--print-config` shows it.
    ///
    /// # Errors
    /// [`ConfigError::Print`] if serialisation fails (it does not for these types).
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string(self).map_err(|e| ConfigError::Print(e.to_string()))
    }
}

/// Whether `path` can hold static files without hiding one of the server's own routes.
fn static_path_is_free(path: &str) -> bool {
    const OWN: [&str; 8] = [
        "/api",
        "/js",
        "/ws",
        "/dashboard",
        "/demo",
        "/healthz",
        "/readyz",
        "/metrics",
    ];
    let path = path.trim_end_matches('/');
    path.starts_with('/')
        && path.len() > 1
        && !path.contains("//")
        && !OWN.iter().any(|own| {
            path == *own
                || path.starts_with(&format!("{own}/"))
                || own.starts_with(&format!("{path}/"))
        })
}
