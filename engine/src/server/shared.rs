//! `Shared`: the little the shards share, all of it lock-free: every shard's counters (each
//! written by its own shard only), the server-wide connection count, the shutdown flag, and
//! what WELCOME says about the server.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shardbus_protocol::HeadersBuilder;

use crate::metrics::ShardMetrics;
use crate::routing::ShardId;

/// State visible to every shard and to the thread that started them.
#[derive(Debug)]
pub struct Shared {
    metrics: Vec<Arc<ShardMetrics>>,
    connections: AtomicU64,
    max_connections: u64,
    shutdown: AtomicBool,
    /// Shards that have bound every listener.
    ready_shards: AtomicU64,
    shards: usize,
    started: Instant,
    server_id: String,
    welcome_headers: Vec<u8>,
}

impl Shared {
    pub(crate) fn new(shards: usize, max_connections: u32) -> Shared {
        let started = Instant::now();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let server_id = format!("{:x}-{:x}", nanos & 0xffff_ffff_ffff, std::process::id());
        let mut headers = HeadersBuilder::new();
        // Fixed ASCII keys and values: inserting cannot fail.
        let _ = headers.insert("server_id", &server_id);
        let _ = headers.insert("server_name", "shardbus");
        let _ = headers.insert("server_version", env!("CARGO_PKG_VERSION"));
        Shared {
            metrics: (0..shards).map(|_| Arc::default()).collect(),
            connections: AtomicU64::new(0),
            max_connections: u64::from(max_connections),
            shutdown: AtomicBool::new(false),
            ready_shards: AtomicU64::new(0),
            shards,
            started,
            server_id,
            welcome_headers: headers.as_bytes().to_vec(),
        }
    }

    pub(crate) fn metrics_of(&self, shard: ShardId) -> Arc<ShardMetrics> {
        self.metrics
            .get(usize::from(shard))
            .cloned()
            .unwrap_or_default()
    }

    /// Every shard's counters, in shard order.
    pub fn metrics(&self) -> impl Iterator<Item = &ShardMetrics> {
        self.metrics.iter().map(|m| &**m)
    }

    /// Counts a new connection unless the server is at `max_connections`.
    pub(crate) fn try_add_connection(&self) -> bool {
        self.connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_connections).then_some(n + 1)
            })
            .is_ok()
    }

    pub(crate) fn remove_connection(&self) {
        self.connections.fetch_sub(1, Ordering::AcqRel);
    }

    /// Records that one more shard has bound every listener and serves.
    pub(crate) fn shard_ready(&self) {
        self.ready_shards.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether every shard serves and the server is not shutting down.
    pub fn is_ready(&self) -> bool {
        self.ready_shards.load(Ordering::Acquire) == self.shards as u64 && !self.shutting_down()
    }

    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards
    }

    /// Asks every shard to drain and stop.
    pub fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::Release);
    }

    /// Whether shutdown was asked for.
    pub fn shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// This run's server id.
    pub fn server_id(&self) -> &str {
        &self.server_id
    }

    /// Time since start.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub(crate) fn welcome_headers(&self) -> &[u8] {
        &self.welcome_headers
    }
}
