//! Nodes over Redis (ARCHITECTURE.md, *Nodes over Redis*): several brokers share their topics
//! through one Redis. Each node tells the others its interest — changes only, as shards tell
//! each other, with a sequence number so a node that missed one reads the whole set again —
//! and sends a publication only to the nodes that want it, one Redis message per node per batch
//! on that node's channel. Other nodes stand in every shard's interest replica as one pseudo
//! shard ([`remote_id`], one past the real shards), and are one more outgoing link of every
//! shard: a publish routed to it goes into that link's mesh batch like a forward to another
//! shard, and the link's flusher hands the batch to this node's cluster thread, which picks the
//! nodes (every node with plain interest, one node per queue group). A node silent for
//! `node_timeout_ms` is gone and its interest with it.
//!
//! Two threads: `cluster-out` owns a connection for commands (interest changes, heartbeats,
//! publishing batches, reading a node's interest) and the view of the other nodes;
//! `cluster-in` holds the subscription to the node's own channel and the cluster channel.
//! They meet the shards through lock-free queues, as the Redis bridge does.

pub(crate) mod inbound;
pub(crate) mod nodes;
pub mod options;
mod outbound;
pub(crate) mod wire;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crossbeam_queue::{ArrayQueue, SegQueue};

use crate::bridge::RedisConfig;
use crate::foreign_queue::ForeignQueue;
use crate::routing::{InterestChange, ShardId};
pub use options::ClusterConfig;

/// The pseudo shard other nodes stand for in the interest replicas of a node of `shards`
/// shards: one past the last real shard (so it is a link index, after the shards' own).
pub(crate) fn remote_id(shards: usize) -> ShardId {
    ShardId::try_from(shards).unwrap_or(ShardId::MAX)
}

/// Bytes waiting for the cluster thread past which a shard's cluster link stops handing it
/// batches (and, once its open batch is congested, readers pause: the mesh's backpressure).
const MAX_QUEUED_BYTES: usize = 64 << 20;

/// Emptied record buffers kept for the shards to reuse.
const SPARE_BUFFERS: usize = 64;

/// Emptied mesh batches kept per shard for its cluster link.
const SPARE_BATCHES: usize = 8;

/// What a shard hands `cluster-out`.
#[derive(Debug)]
enum Uplink {
    /// The cluster link's batch: interest changes, publications, requests (mesh records).
    Batch(crate::mesh::batch::Batch),
    /// Records addressed to one node (`wire` layout): responses, node asks and answers.
    Records(Vec<u8>),
}

/// What the cluster threads hand a shard.
#[derive(Debug)]
pub(crate) enum ToShard {
    /// Other nodes' interest changed (as shard [`REMOTE`]).
    Interest(InterestChange),
    /// A batch of publications from another node (`wire` layout, version byte first).
    Batch(Vec<u8>),
    /// A node ask of this shard went to this many nodes (their answers follow).
    Asked { id: u64, nodes: usize },
    /// Another node came (new, or a new incarnation: what it had before is gone).
    NodeCame(Box<str>),
    /// Another node went (goodbye, silence, or a new incarnation that follows).
    NodeGone(Box<str>),
}

/// A node as `/api/v1/cluster` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct NodeView {
    pub(crate) node: String,
    /// Patterns (with queue groups) it has interest in.
    pub(crate) interest: usize,
    /// Milliseconds since it was last heard.
    pub(crate) last_heard_ms: u64,
}

/// What the shards and the two cluster threads share.
#[derive(Debug)]
pub(crate) struct Cluster {
    node: String,
    /// What the shards hand `cluster-out`, in order per shard.
    uplink: SegQueue<(ShardId, Uplink)>,
    queued_bytes: AtomicUsize,
    /// Bytes of other nodes' batches handed to the shards and not taken yet.
    inbound_bytes: AtomicUsize,
    spare: ArrayQueue<Vec<u8>>,
    /// Per shard, emptied batches back from `cluster-out`.
    spare_batches: Vec<ArrayQueue<crate::mesh::batch::Batch>>,
    /// The pseudo shard the other nodes are.
    remote: ShardId,
    /// What `cluster-in` heard on the cluster channel, for `cluster-out`.
    heard: SegQueue<inbound::Heard>,
    inboxes: Vec<ForeignQueue<ToShard>>,
    /// The other nodes, as `cluster-out` last saw them.
    view: Mutex<Vec<NodeView>>,
    connected: AtomicBool,
    /// Records sent to other nodes, and publications the shards' links dropped while Redis was
    /// away (`cluster-out`'s counts: no shard writes them).
    sent: AtomicU64,
    lost: AtomicU64,
    stopping: AtomicBool,
    out_thread: OnceLock<std::thread::Thread>,
    handles: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Cluster {
    /// Starts the cluster threads of a node with `shards` shards.
    pub(crate) fn start(
        config: &ClusterConfig,
        redis: &RedisConfig,
        shards: usize,
    ) -> Result<Arc<Cluster>, crate::bridge::BridgeError> {
        let mut connection = redis.clone();
        connection.url.clone_from(&config.redis_url);
        let client =
            crate::bridge::client(&connection).map_err(crate::bridge::BridgeError::Client)?;
        let cluster = Arc::new(Cluster {
            node: config.node_name(),
            uplink: SegQueue::new(),
            queued_bytes: AtomicUsize::new(0),
            inbound_bytes: AtomicUsize::new(0),
            spare: ArrayQueue::new(SPARE_BUFFERS),
            spare_batches: (0..shards)
                .map(|_| ArrayQueue::new(SPARE_BATCHES))
                .collect(),
            remote: remote_id(shards),
            heard: SegQueue::new(),
            inboxes: (0..shards).map(|_| ForeignQueue::default()).collect(),
            view: Mutex::new(Vec::new()),
            connected: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            out_thread: OnceLock::new(),
            handles: Mutex::new(Vec::new()),
        });
        let settings = outbound::Settings::new(config, redis);
        let spawn = |name: &str, body: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(body)
                .map_err(|e| crate::bridge::BridgeError::Thread(e.to_string()))
        };
        let (ours, out_client, out_settings) =
            (Arc::clone(&cluster), client.clone(), settings.clone());
        let out = spawn(
            "cluster-out",
            Box::new(move || outbound::run(&ours, &out_client, &out_settings)),
        )?;
        let _ = cluster.out_thread.set(out.thread().clone());
        let ours = Arc::clone(&cluster);
        let inn = spawn(
            "cluster-in",
            Box::new(move || inbound::run(&ours, &client, &settings)),
        )?;
        if let Ok(mut handles) = cluster.handles.lock() {
            handles.extend([out, inn]);
        }
        Ok(cluster)
    }

    /// This node's name.
    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    /// Whether both threads hold their connections.
    pub(crate) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// Records sent to other nodes so far, and publications for them lost while Redis was away.
    pub(crate) fn traffic(&self) -> (u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.lost.load(Ordering::Relaxed),
        )
    }

    /// The other nodes, as last seen.
    pub(crate) fn nodes(&self) -> Vec<NodeView> {
        self.view.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// An empty buffer for a shard's next records.
    pub(crate) fn buffer(&self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }

    /// Whether `cluster-out` is so far behind that the shards should wait.
    pub(crate) fn is_backed_up(&self) -> bool {
        self.queued_bytes.load(Ordering::Relaxed) > MAX_QUEUED_BYTES
    }

    /// Whether the shards have so many of other nodes' batches to take that `cluster-in`
    /// should wait.
    fn inbound_backed_up(&self) -> bool {
        self.inbound_bytes.load(Ordering::Relaxed) > MAX_QUEUED_BYTES
    }

    /// Counts `delta` bytes of other nodes' batches handed to (or taken by) the shards.
    pub(crate) fn inbound_bytes(&self, delta: isize) {
        if delta >= 0 {
            self.inbound_bytes
                .fetch_add(delta.unsigned_abs(), Ordering::Relaxed);
        } else {
            self.inbound_bytes
                .fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
        }
    }

    /// Hands a shard's node-addressed records to `cluster-out` and wakes it.
    pub(crate) fn submit_records(&self, shard: ShardId, records: Vec<u8>) {
        self.queued_bytes
            .fetch_add(records.len(), Ordering::Relaxed);
        self.uplink.push((shard, Uplink::Records(records)));
        self.wake_out();
    }

    /// Hands a shard's cluster-link batch to `cluster-out` and wakes it.
    pub(crate) fn submit_batch(&self, shard: ShardId, batch: crate::mesh::batch::Batch) {
        self.queued_bytes
            .fetch_add(batch.byte_len(), Ordering::Relaxed);
        self.uplink.push((shard, Uplink::Batch(batch)));
        self.wake_out();
    }

    /// An empty batch for shard `shard`'s cluster link.
    pub(crate) fn spare_batch(&self, shard: ShardId) -> crate::mesh::batch::Batch {
        self.spare_batches
            .get(usize::from(shard))
            .and_then(ArrayQueue::pop)
            .unwrap_or_default()
    }

    fn wake_out(&self) {
        if let Some(thread) = self.out_thread.get() {
            thread.unpark();
        }
    }

    /// Gives a taken uplink item's buffers back for reuse.
    fn recycle(&self, shard: ShardId, item: Uplink) {
        match item {
            Uplink::Records(mut buffer) => {
                self.queued_bytes.fetch_sub(buffer.len(), Ordering::Relaxed);
                buffer.clear();
                let _ = self.spare.push(buffer);
            }
            Uplink::Batch(mut batch) => {
                self.queued_bytes
                    .fetch_sub(batch.byte_len(), Ordering::Relaxed);
                batch.clear();
                if let Some(spare) = self.spare_batches.get(usize::from(shard)) {
                    let _ = spare.push(batch);
                }
            }
        }
    }

    /// Hands `item` to shard `shard` and wakes it.
    fn to_shard(&self, shard: ShardId, item: ToShard) {
        if let Some(inbox) = self.inboxes.get(usize::from(shard)) {
            inbox.push(item);
        }
    }

    /// Hands `change` to every shard.
    fn node_noticed(&self, node: &str, came: bool) {
        for shard in 0..self.inboxes.len() {
            let notice = if came {
                ToShard::NodeCame(node.into())
            } else {
                ToShard::NodeGone(node.into())
            };
            self.to_shard(shard as ShardId, notice);
        }
    }

    fn to_every_shard(&self, change: &InterestChange) {
        for shard in 0..self.inboxes.len() {
            self.to_shard(shard as ShardId, ToShard::Interest(change.clone()));
        }
    }

    /// Waits until shard `shard` has something to take.
    pub(crate) async fn arrived(&self, shard: ShardId) {
        match self.inboxes.get(usize::from(shard)) {
            Some(inbox) => inbox.ready().await,
            None => std::future::pending().await,
        }
    }

    /// Shard `shard`'s next item.
    pub(crate) fn take(&self, shard: ShardId) -> Option<ToShard> {
        self.inboxes.get(usize::from(shard))?.pop()
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Says goodbye to the other nodes, stops both threads and waits for them.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.wake_out();
        let handles: Vec<_> = self
            .handles
            .lock()
            .map(|mut h| h.drain(..).collect())
            .unwrap_or_default();
        for handle in handles {
            let _ = handle.join();
        }
    }
}
