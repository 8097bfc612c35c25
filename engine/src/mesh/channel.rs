//! `Channel`: one direction between two shards, a bounded lock-free FIFO of batches
//! (crossbeam's `ArrayQueue`, the measured choice for a shared queue) and the receiving shard's
//! [`Bell`](super::doorbell::Bell). The sender rings only when the receiver waits, and the
//! receiver never wakes the sender: a full channel is rare (its capacity is batches, each a
//! poll cycle's records), and a sender that meets one looks again after [`ROOM_POLL`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;

use super::batch::Batch;
use super::doorbell::Bell;

/// How long a sender that met a full channel waits before it looks again.
pub(crate) const ROOM_POLL: Duration = Duration::from_micros(100);

struct Shared {
    queue: ArrayQueue<Batch>,
    sender_gone: AtomicBool,
    receiver_gone: AtomicBool,
}

/// The sending shard's end.
pub(crate) struct Sender {
    shared: Arc<Shared>,
    bell: Bell,
}

/// The receiving shard's end.
pub(crate) struct Receiver {
    shared: Arc<Shared>,
}

/// A channel of `capacity` batches whose sender rings `bell`.
pub(crate) fn new(capacity: usize, bell: Bell) -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        queue: ArrayQueue::new(capacity),
        sender_gone: AtomicBool::new(false),
        receiver_gone: AtomicBool::new(false),
    });
    (
        Sender {
            shared: Arc::clone(&shared),
            bell,
        },
        Receiver { shared },
    )
}

impl Sender {
    /// Hands `batch` to the receiver, waiting while the channel is full. Gives it back when
    /// the receiver is gone (its shard stopped).
    pub(crate) async fn send(&self, mut batch: Batch) -> Result<(), Batch> {
        loop {
            if self.shared.receiver_gone.load(Ordering::Acquire) {
                return Err(batch);
            }
            match self.shared.queue.push(batch) {
                Ok(()) => {
                    self.bell.ring();
                    return Ok(());
                }
                Err(full) => {
                    batch = full;
                    glommio::timer::sleep(ROOM_POLL).await;
                }
            }
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.shared.sender_gone.store(true, Ordering::Release);
        self.bell.ring_always();
    }
}

impl Receiver {
    /// The oldest batch, if any.
    pub(crate) fn pop(&self) -> Option<Batch> {
        self.shared.queue.pop()
    }

    /// Whether a batch is waiting.
    pub(crate) fn has_work(&self) -> bool {
        !self.shared.queue.is_empty()
    }

    /// Whether the sender is gone and everything it sent has been taken.
    pub(crate) fn is_finished(&self) -> bool {
        self.shared.sender_gone.load(Ordering::Acquire) && self.shared.queue.is_empty()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shared.receiver_gone.store(true, Ordering::Release);
    }
}
