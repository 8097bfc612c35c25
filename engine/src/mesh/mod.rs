//! The cross-shard mesh (DESIGN.md, "Cross-shard mesh"): one bounded single-producer
//! single-consumer channel per ordered pair of shards, built from glommio `shared_channel`
//! pairs (not `MeshBuilder`, whose shared `Rc` is dropped on several threads:
//! DEPENDENCIES.md). Each channel is FIFO, so everything one shard sends another, interest
//! changes and messages alike, is applied in the order it was sent.

pub(crate) mod batch;
pub(crate) mod link;

use glommio::channels::shared_channel::{self, SharedReceiver, SharedSender};

use crate::routing::ShardId;
use batch::Batch;

/// Batches a channel holds before the sender waits.
const CHANNEL_CAPACITY: usize = 256;

/// One shard's ends of the mesh, moved into its thread.
#[derive(Default)]
pub(crate) struct MeshEnds {
    /// Towards each other shard.
    pub(crate) senders: Vec<(ShardId, SharedSender<Batch>)>,
    /// From each other shard.
    pub(crate) receivers: Vec<(ShardId, SharedReceiver<Batch>)>,
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
            // n <= MAX_SHARDS (1024), so the ids fit a u16.
            if let Some(end) = ends.get_mut(from) {
                end.senders.push((to as ShardId, sender));
            }
            if let Some(end) = ends.get_mut(to) {
                end.receivers.push((from as ShardId, receiver));
            }
        }
    }
    ends
}
