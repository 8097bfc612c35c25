//! `Shared`: the little the shards share, all of it lock-free: every shard's counters (each
//! written by its own shard only), the server-wide connection count, the shutdown flag, each
//! shard's heartbeat and whether its thread still runs, and what WELCOME says about the server.

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
    /// Per shard: milliseconds since `started` at its watch task's last tick, plus one (0: none
    /// yet). A shard that stops ticking no longer runs its timers.
    heartbeats: Vec<AtomicU64>,
    /// Per shard: its thread has ended (normally or by a panic).
    stopped: Vec<AtomicBool>,
    /// A heartbeat older than this makes the shard, and so the server, unhealthy.
    stall_timeout: Duration,
    /// The latest reloaded configuration. A lock, taken only when a reload is published and
    /// when each shard's watch task sees a new generation: never on a message's path.
    reload: std::sync::Mutex<Option<Arc<Reload>>>,
    reload_generation: AtomicU64,
    reload_failures: AtomicU64,
    /// Why the last reload was refused (taken by shard 0 for the `config_refused` event).
    last_refusal: std::sync::Mutex<Option<String>>,
    /// What `POST /api/v1/reload` runs: set by the binary, which knows the configuration's
    /// layers; unset in-process (the tests' servers).
    reloader: std::sync::OnceLock<Arc<super::Reloader>>,
    /// The Redis bridge, when `[redis] url` is set.
    bridge: std::sync::OnceLock<Arc<crate::bridge::Bridge>>,
    /// The cluster threads, when `[cluster] redis_url` is set.
    cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
    /// Each shard's doorbell, rung by [`Shared::nudge_shards`] so a shutdown or a reload
    /// reaches a parked shard at once instead of at its next watch tick.
    doorbells: std::sync::OnceLock<Vec<crate::mesh::doorbell::Bell>>,
    /// How many times the shards were nudged.
    nudges: AtomicU64,
    shards: usize,
    started: Instant,
    server_id: String,
    welcome_headers: Vec<u8>,
}

impl Shared {
    pub(crate) fn new(shards: usize, max_connections: u32, stall_timeout: Duration) -> Shared {
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
            heartbeats: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            stopped: (0..shards).map(|_| AtomicBool::new(false)).collect(),
            stall_timeout,
            reload: std::sync::Mutex::new(None),
            reload_generation: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
            last_refusal: std::sync::Mutex::new(None),
            reloader: std::sync::OnceLock::new(),
            bridge: std::sync::OnceLock::new(),
            cluster: std::sync::OnceLock::new(),
            doorbells: std::sync::OnceLock::new(),
            nudges: AtomicU64::new(0),
            shards,
            started,
            server_id,
            welcome_headers: headers.as_bytes().to_vec(),
        }
    }

    /// Hands the shards the Redis bridge (before they start).
    pub(crate) fn set_bridge(&self, bridge: Arc<crate::bridge::Bridge>) {
        let _ = self.bridge.set(bridge);
    }

    /// The Redis bridge, when `[redis] url` is set.
    pub(crate) fn bridge(&self) -> Option<&Arc<crate::bridge::Bridge>> {
        self.bridge.get()
    }

    /// Why the server serves less than it should: Redis unreachable, so room history is kept
    /// in memory only, or the other nodes of its cluster are out of reach.
    pub(crate) fn degraded(&self) -> Option<String> {
        if let Some((why, lasted)) = self.bridge.get().and_then(|b| b.status.outage()) {
            return Some(format!(
                "redis unreachable for {} ms ({why}): room history is kept in memory only",
                lasted.as_millis()
            ));
        }
        let cluster = self.cluster.get()?;
        (!cluster.is_connected())
            .then(|| "the cluster's redis is unreachable: the other nodes are out of reach".into())
    }

    /// Hands the shards the cluster threads (before they start).
    pub(crate) fn set_cluster(&self, cluster: Arc<crate::cluster::Cluster>) {
        let _ = self.cluster.set(cluster);
    }

    /// The cluster threads, when `[cluster] redis_url` is set.
    pub(crate) fn cluster(&self) -> Option<&Arc<crate::cluster::Cluster>> {
        self.cluster.get()
    }

    /// Stops the Redis bridge's and the cluster's threads (after the shards have stopped).
    pub(crate) fn stop_bridge(&self) {
        if let Some(bridge) = self.bridge.get() {
            bridge.stop();
        }
        if let Some(cluster) = self.cluster.get() {
            cluster.stop();
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
        self.ready_shards.load(Ordering::Acquire) == self.shards as u64
            && !self.shutting_down()
            && self.failed_shard().is_none()
    }

    /// Hands a reloaded configuration to every shard, and nudges them: each applies it as soon
    /// as its watch task runs.
    pub fn publish_reload(&self, reload: Reload) {
        if let Ok(mut slot) = self.reload.lock() {
            *slot = Some(Arc::new(reload));
            self.reload_generation.fetch_add(1, Ordering::AcqRel);
        }
        self.nudge_shards();
    }

    /// Installs the shards' doorbells (once, when the mesh is built).
    pub(crate) fn set_doorbells(&self, bells: Vec<crate::mesh::doorbell::Bell>) {
        let _ = self.doorbells.set(bells);
    }

    /// Wakes every shard's watch task now (a shutdown or a reload was published).
    fn nudge_shards(&self) {
        self.nudges.fetch_add(1, Ordering::AcqRel);
        for bell in self.doorbells.get().into_iter().flatten() {
            bell.ring_always();
        }
    }

    /// How many times the shards were nudged: a shard's doorbell waiter compares it to know a
    /// wake was a nudge.
    pub(crate) fn nudges(&self) -> u64 {
        self.nudges.load(Ordering::Acquire)
    }

    /// Counts a reload attempt that failed (a refused configuration), keeping why.
    pub(crate) fn count_reload(&self, refused: Option<&str>) {
        if let Some(why) = refused {
            if let Ok(mut slot) = self.last_refusal.lock() {
                *slot = Some(why.to_owned());
            }
            self.reload_failures.fetch_add(1, Ordering::Release);
        }
    }

    /// Why the last reload was refused, once per refusal: `None` unless `seen` (the caller's
    /// count of refusals) is behind.
    pub(crate) fn refusal_after(&self, seen: &mut u64) -> Option<String> {
        let now = self.reload_failures.load(Ordering::Acquire);
        if now == *seen {
            return None;
        }
        *seen = now;
        self.last_refusal.lock().ok()?.clone()
    }

    /// Reloads refused since start.
    pub fn reload_failures(&self) -> u64 {
        self.reload_failures.load(Ordering::Relaxed)
    }

    /// Installs what `POST /api/v1/reload` runs.
    pub fn set_reloader(&self, reloader: Arc<super::Reloader>) {
        let _ = self.reloader.set(reloader);
    }

    /// The installed reloader, if any.
    pub(crate) fn reloader(&self) -> Option<Arc<super::Reloader>> {
        self.reloader.get().cloned()
    }

    /// How many reloads were published.
    pub fn reload_generation(&self) -> u64 {
        self.reload_generation.load(Ordering::Acquire)
    }

    /// The latest reload when one was published since `seen`, which it advances.
    pub(crate) fn reload_after(&self, seen: &mut u64) -> Option<Arc<Reload>> {
        let now = self.reload_generation();
        if now == *seen {
            return None;
        }
        *seen = now;
        self.reload.lock().ok().and_then(|slot| slot.clone())
    }

    /// Records that shard `shard` is alive and running its timers.
    pub(crate) fn beat(&self, shard: ShardId) {
        if let Some(beat) = self.heartbeats.get(usize::from(shard)) {
            let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
            beat.store(now.saturating_add(1), Ordering::Release);
        }
    }

    /// Records that shard `shard`'s thread has ended.
    pub(crate) fn shard_stopped(&self, shard: usize) {
        if let Some(stopped) = self.stopped.get(shard) {
            stopped.store(true, Ordering::Release);
        }
    }

    /// What each shard is doing, in shard order.
    pub fn shard_health(&self) -> Vec<ShardHealth> {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let stall_ms = u64::try_from(self.stall_timeout.as_millis()).unwrap_or(u64::MAX);
        self.heartbeats
            .iter()
            .zip(&self.stopped)
            .map(|(beat, stopped)| {
                ShardHealth::judge(
                    beat.load(Ordering::Acquire),
                    stopped.load(Ordering::Acquire),
                    now,
                    stall_ms,
                )
            })
            .collect()
    }

    /// The first shard that has stopped or stalled while the server was not shutting down,
    /// with what happened to it.
    pub fn failed_shard(&self) -> Option<(usize, ShardHealth)> {
        if self.shutting_down() {
            return None;
        }
        self.shard_health()
            .into_iter()
            .enumerate()
            .find(|(_, health)| health.is_failed())
    }

    /// Whether every shard has stopped.
    pub fn all_stopped(&self) -> bool {
        self.stopped.iter().all(|s| s.load(Ordering::Acquire))
    }

    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards
    }

    /// Asks every shard to drain and stop.
    pub fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::Release);
        self.nudge_shards();
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

/// What a shard is doing, as its heartbeat and its thread show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardHealth {
    /// Not yet ticking.
    Starting,
    /// Ticking: the last heartbeat was `age_ms` ago.
    Serving {
        /// Milliseconds since the last heartbeat.
        age_ms: u64,
    },
    /// Its thread runs but its timers have not run for longer than the stall timeout.
    Stalled {
        /// Milliseconds since the last heartbeat.
        age_ms: u64,
    },
    /// Its thread has ended.
    Stopped,
}

impl ShardHealth {
    /// A shard's state from its heartbeat (`beat`: milliseconds since start plus one, 0 for
    /// none yet) and whether its thread ended, at `now_ms`.
    fn judge(beat: u64, stopped: bool, now_ms: u64, stall_ms: u64) -> ShardHealth {
        let age_ms = now_ms.saturating_sub(beat.saturating_sub(1));
        if stopped {
            ShardHealth::Stopped
        } else if beat == 0 {
            ShardHealth::Starting
        } else if age_ms > stall_ms {
            ShardHealth::Stalled { age_ms }
        } else {
            ShardHealth::Serving { age_ms }
        }
    }

    /// The word `/healthz` shows.
    pub fn name(self) -> &'static str {
        match self {
            ShardHealth::Starting => "starting",
            ShardHealth::Serving { .. } => "serving",
            ShardHealth::Stalled { .. } => "stalled",
            ShardHealth::Stopped => "stopped",
        }
    }

    /// Stalled or stopped: the shard no longer serves its connections.
    pub fn is_failed(self) -> bool {
        matches!(self, ShardHealth::Stalled { .. } | ShardHealth::Stopped)
    }

    /// Milliseconds since the last heartbeat, when there was one and the thread runs.
    pub fn age_ms(self) -> Option<u64> {
        match self {
            ShardHealth::Serving { age_ms } | ShardHealth::Stalled { age_ms } => Some(age_ms),
            ShardHealth::Starting | ShardHealth::Stopped => None,
        }
    }
}

/// What a configuration reload changes while connections stay open.
#[derive(Debug)]
pub struct Reload {
    /// Tokens, users, JWT rules, roles and anonymous access.
    pub(crate) auth: Arc<crate::auth::Authenticator>,
    /// The rate limits (their buckets start full again).
    pub(crate) rate_limits: crate::config::RateLimitsConfig,
    /// The room options by pattern.
    pub(crate) rooms: Vec<crate::rooms::RoomConfig>,
    /// The service options by name pattern.
    pub(crate) services: Vec<crate::services::ServiceConfig>,
    /// What changed (the reloader's summary), for the `reload` event.
    pub(crate) changed: serde_json::Value,
}

impl Reload {
    /// The live-changeable parts of `config`.
    ///
    /// # Errors
    /// The `[auth]` section cannot be used (an unknown role, a malformed digest or key).
    pub fn from_config(
        config: &crate::config::Config,
    ) -> Result<Reload, crate::auth::AuthConfigError> {
        Ok(Reload {
            auth: Arc::new(crate::auth::Authenticator::new(&config.auth)?),
            rooms: config.rooms.clone(),
            services: config.services.clone(),
            changed: serde_json::Value::Null,
            rate_limits: config.rate_limits.clone(),
        })
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.stop_bridge();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_is_stalled_past_the_timeout_and_stopped_when_its_thread_ended() {
        assert_eq!(
            ShardHealth::judge(0, false, 5_000, 1_000),
            ShardHealth::Starting
        );
        assert_eq!(
            ShardHealth::judge(4_001, false, 5_000, 1_000),
            ShardHealth::Serving { age_ms: 1_000 }
        );
        let stalled = ShardHealth::judge(3_001, false, 5_000, 1_000);
        assert_eq!(stalled, ShardHealth::Stalled { age_ms: 2_000 });
        assert!(stalled.is_failed());
        assert!(ShardHealth::judge(4_900, true, 5_000, 1_000).is_failed());
    }

    #[test]
    fn a_stopped_shard_makes_the_server_unready_unless_it_is_shutting_down() {
        let shared = Shared::new(2, 10, Duration::from_secs(10));
        shared.shard_ready();
        shared.shard_ready();
        shared.beat(0);
        shared.beat(1);
        assert!(shared.is_ready() && shared.failed_shard().is_none());
        shared.shard_stopped(1);
        assert_eq!(shared.failed_shard(), Some((1, ShardHealth::Stopped)));
        assert!(!shared.is_ready());
        shared.request_shutdown();
        assert_eq!(shared.failed_shard(), None);
    }
}
