//! `PeerLink`: one shard's outgoing side towards one other shard. Records accumulate in the
//! link's open batch during a poll cycle; the link's flusher task sends the batch as one channel
//! item. While the channel is full the flusher waits and the open batch grows, until it is
//! congested: then sessions stop reading their sockets ([`PeerLink::is_congested`]) until the
//! flusher makes progress. Nothing is dropped and nothing grows without bound.

use std::cell::RefCell;

use super::BatchPool;
use super::batch::Batch;
use super::channel::Sender;
use crate::shard::notify::Notify;

/// An open batch this large (records) makes the link congested.
const CONGESTED_RECORDS: usize = 16 * 1024;
/// An open batch this large (bytes) makes the link congested.
const CONGESTED_BYTES: usize = 4 << 20;

/// The outgoing side towards one peer shard.
#[derive(Debug, Default)]
pub(crate) struct PeerLink {
    open: RefCell<Batch>,
    has_work: Notify,
    room: Notify,
}

impl PeerLink {
    /// Adds to the open batch through `fill`.
    pub(crate) fn with_batch<R>(&self, fill: impl FnOnce(&mut Batch) -> R) -> R {
        let mut open = self.open.borrow_mut();
        let was_empty = open.is_empty();
        let result = fill(&mut open);
        if was_empty && !open.is_empty() {
            self.has_work.notify();
        }
        result
    }

    /// Whether readers should stop until the flusher catches up.
    pub(crate) fn is_congested(&self) -> bool {
        let open = self.open.borrow();
        open.len() >= CONGESTED_RECORDS || open.byte_len() >= CONGESTED_BYTES
    }

    /// Completes when the flusher has handed a batch to the channel.
    pub(crate) async fn room(&self) {
        self.room.notified().await;
    }

    /// The flusher of a shard's link to the other nodes of a cluster: hands the open batch to
    /// `cluster-out` whenever it has records, waiting while `cluster-out` is far behind.
    pub(crate) async fn run_cluster_flusher(&self, cluster: &crate::cluster::Cluster, shard: u16) {
        loop {
            let has_work = self.has_work.notified();
            if self.open.borrow().is_empty() {
                has_work.await;
                continue;
            }
            while cluster.is_backed_up() {
                glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
            }
            let next = cluster.spare_batch(shard);
            let batch = std::mem::replace(&mut *self.open.borrow_mut(), next);
            cluster.submit_batch(shard, batch);
            self.room.notify();
            // Once per poll cycle, as the mesh's flusher: the cycle's records travel together.
            glommio::yield_if_needed().await;
        }
    }

    /// The flusher: sends the open batch whenever it has records, one channel item per batch.
    /// Ends when the peer's receiving side is gone (the peer shard stopped).
    /// Emptied batches come back through `pool` and become the next open batch.
    pub(crate) async fn run_flusher(&self, sender: Sender, pool: BatchPool) {
        loop {
            let has_work = self.has_work.notified();
            if self.open.borrow().is_empty() {
                has_work.await;
                continue;
            }
            let next = pool.pop().unwrap_or_default();
            let batch = std::mem::replace(&mut *self.open.borrow_mut(), next);
            if sender.send(batch).await.is_err() {
                return;
            }
            self.room.notify();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
mod tests {
    use std::rc::Rc;

    use glommio::{LocalExecutorBuilder, Placement};

    use super::*;
    use crate::mesh::batch::Record;

    fn barrier(ping: u64) -> Record {
        Record::Barrier { conn: 1, ping }
    }

    /// The backpressure contract: a peer that stops receiving makes the link congested once
    /// the channel is full and the open batch has grown; nothing is dropped; the congestion
    /// clears when the peer drains.
    #[test]
    fn a_peer_that_stops_receiving_congests_the_link_until_it_drains() {
        let (bell, ear) = crate::mesh::doorbell::new().unwrap();
        let (tx, rx) = crate::mesh::channel::new(2, bell);
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let receiver = LocalExecutorBuilder::new(Placement::Unbound)
            .io_memory(64 << 10)
            .spawn(move || async move {
                let mut waiter = ear.into_waiter();
                // Stalled until the sender has seen congestion.
                go_rx.recv().unwrap();
                let mut records = 0;
                loop {
                    while let Some(batch) = rx.pop() {
                        records += batch.len();
                    }
                    if rx.is_finished() {
                        return records;
                    }
                    waiter.arm();
                    if rx.has_work() || rx.is_finished() {
                        waiter.disarm();
                        continue;
                    }
                    assert!(waiter.wait().await);
                }
            })
            .unwrap();
        let sender = LocalExecutorBuilder::new(Placement::Unbound)
            .io_memory(64 << 10)
            .spawn(move || async move {
                let link = Rc::new(PeerLink::default());
                let flusher = {
                    let link = Rc::clone(&link);
                    glommio::spawn_local(async move {
                        let pool = std::sync::Arc::new(crossbeam_queue::ArrayQueue::new(1));
                        link.run_flusher(tx, pool).await;
                    })
                };
                let mut sent = 0u64;
                // One record per poll cycle until the flusher is stuck on the full channel:
                // then the open batch stops being taken.
                let mut stuck_cycles = 0;
                while stuck_cycles < 3 {
                    link.with_batch(|b| b.push(barrier(sent)));
                    sent += 1;
                    futures_lite::future::yield_now().await;
                    if link.open.borrow().is_empty() {
                        stuck_cycles = 0;
                    } else {
                        stuck_cycles += 1;
                    }
                    assert!(sent < 100_000, "the flusher never blocked");
                }
                assert!(!link.is_congested());
                while !link.is_congested() {
                    link.with_batch(|b| b.push(barrier(sent)));
                    sent += 1;
                }
                go_tx.send(()).unwrap();
                while link.is_congested() {
                    link.room().await;
                }
                drop(link);
                drop(flusher);
                sent
            })
            .unwrap();
        let sent = sender.join().unwrap();
        let received = receiver.join().unwrap();
        // Everything the flusher handed to the channel arrived; what was still in the open
        // batch when the link was dropped is the caller's (a stopping shard's) to lose.
        assert!(received as u64 <= sent);
        assert!(
            received as u64 >= CONGESTED_RECORDS as u64,
            "{received} of {sent}"
        );
    }
}
