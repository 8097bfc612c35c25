//! `PeerLink`: one shard's outgoing side towards one other shard. Records accumulate in the
//! link's open batch during a poll cycle; the link's flusher task sends the batch as one channel
//! item. While the channel is full the flusher waits and the open batch grows, until it is
//! congested: then sessions stop reading their sockets ([`PeerLink::is_congested`]) until the
//! flusher makes progress. Nothing is dropped and nothing grows without bound.

use std::cell::RefCell;

use glommio::channels::shared_channel::ConnectedSender;

use super::batch::Batch;
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

    /// The flusher: sends the open batch whenever it has records, one channel item per batch.
    /// Ends when the peer's receiving side is gone (the peer shard stopped).
    pub(crate) async fn run_flusher(&self, sender: ConnectedSender<Batch>) {
        loop {
            let has_work = self.has_work.notified();
            let batch = std::mem::take(&mut *self.open.borrow_mut());
            if batch.is_empty() {
                has_work.await;
                continue;
            }
            if sender.send(batch).await.is_err() {
                return;
            }
            self.room.notify();
        }
    }
}
