//! The cross-shard mesh (ARCHITECTURE.md, "The mesh"): one bounded single-producer
//! single-consumer channel per ordered pair of shards, built from glommio `shared_channel`
//! pairs (not `MeshBuilder`, whose shared `Rc` is dropped on several threads: ARCHITECTURE.md,
//! "The dependencies as measured"). Each channel is FIFO, so everything one shard sends
//! another, interest changes and messages alike, is applied in the order it was sent.

pub(crate) mod batch;
pub(crate) mod link;

use std::sync::Arc;

use crossbeam_queue::ArrayQueue;
use glommio::channels::shared_channel::{self, SharedReceiver, SharedSender};

use crate::routing::ShardId;
use batch::Batch;

/// Batches a channel holds before the sender waits.
const CHANNEL_CAPACITY: usize = 256;

/// Emptied batches a pair keeps for reuse.
const RECYCLED_BATCHES: usize = 8;

/// Emptied batches travelling back from a pair's receiver to its sender, so batch buffers are
/// reused instead of allocated, grown and page-faulted every poll cycle (a fifth of a shard's
/// time under a 1:1 publish load before, perf/RESULTS.md). A bounded lock-free queue
/// (crossbeam's `ArrayQueue`, the measured choice for a shared queue) between two threads.
pub(crate) type BatchPool = Arc<ArrayQueue<Batch>>;

/// One direction of the mesh, as its sending shard holds it.
pub(crate) struct SendEnd {
    pub(crate) peer: ShardId,
    pub(crate) channel: SharedSender<Batch>,
    pub(crate) pool: BatchPool,
}

/// One direction of the mesh, as its receiving shard holds it.
pub(crate) struct ReceiveEnd {
    pub(crate) peer: ShardId,
    pub(crate) channel: SharedReceiver<Batch>,
    pub(crate) pool: BatchPool,
}

/// One shard's ends of the mesh, moved into its thread.
#[derive(Default)]
pub(crate) struct MeshEnds {
    /// Towards each other shard.
    pub(crate) senders: Vec<SendEnd>,
    /// From each other shard.
    pub(crate) receivers: Vec<ReceiveEnd>,
}

/// Creates every channel of an `n`-shard mesh and hands each shard its ends.
pub(crate) fn build(n: usize) -> Vec<MeshEnds> {
    let mut ends: Vec<MeshEnds> = (0..n).map(|_| MeshEnds::default()).collect();
    for from in 0..n {
        for to in 0..n {
            if from == to {
                continue;
            }
            let (sender, receiver) = shared_channel::new_bounded(CHANNEL_CAPACITY);
            let pool: BatchPool = Arc::new(ArrayQueue::new(RECYCLED_BATCHES));
            // n <= MAX_SHARDS (1024), so the ids fit a u16.
            if let Some(end) = ends.get_mut(from) {
                end.senders.push(SendEnd {
                    peer: to as ShardId,
                    channel: sender,
                    pool: Arc::clone(&pool),
                });
            }
            if let Some(end) = ends.get_mut(to) {
                end.receivers.push(ReceiveEnd {
                    peer: from as ShardId,
                    channel: receiver,
                    pool,
                });
            }
        }
    }
    ends
}
