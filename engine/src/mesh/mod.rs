//! The cross-shard mesh (ARCHITECTURE.md, "The mesh"): one bounded single-producer
//! single-consumer [`channel`] per ordered pair of shards, and one [`doorbell`] per shard that
//! the others ring when they hand it work while it is idle. Each channel is FIFO, so everything
//! one shard sends another, interest changes and messages alike, is applied in the order it was
//! sent.

pub(crate) mod batch;
pub(crate) mod channel;
pub(crate) mod doorbell;
pub(crate) mod link;

use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

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
    pub(crate) channel: channel::Sender,
    pub(crate) pool: BatchPool,
}

/// One direction of the mesh, as its receiving shard holds it.
pub(crate) struct ReceiveEnd {
    pub(crate) peer: ShardId,
    pub(crate) channel: channel::Receiver,
    pub(crate) pool: BatchPool,
}

/// One shard's ends of the mesh, moved into its thread.
#[derive(Default)]
pub(crate) struct MeshEnds {
    /// Towards each other shard.
    pub(crate) senders: Vec<SendEnd>,
    /// From each other shard.
    pub(crate) receivers: Vec<ReceiveEnd>,
    /// What the other shards (and a shutdown or a reload) ring when this one is idle.
    pub(crate) doorbell: Option<doorbell::Ear>,
}

/// Creates every channel of an `n`-shard mesh and hands each shard its ends; also answers
/// each shard's doorbell, for `Shared` to nudge them.
///
/// # Errors
/// A doorbell's socket pair could not be created (out of file descriptors).
pub(crate) fn build(n: usize) -> std::io::Result<(Vec<MeshEnds>, Vec<doorbell::Bell>)> {
    let mut ends: Vec<MeshEnds> = (0..n).map(|_| MeshEnds::default()).collect();
    let mut bells = Vec::with_capacity(n);
    for end in &mut ends {
        let (bell, ear) = doorbell::new()?;
        end.doorbell = Some(ear);
        bells.push(bell);
    }
    for from in 0..n {
        for (to, bell) in bells.iter().enumerate() {
            if from == to {
                continue;
            }
            let (sender, receiver) = channel::new(CHANNEL_CAPACITY, bell.clone());
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
    Ok((ends, bells))
}
