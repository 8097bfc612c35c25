//! `ForeignQueue`: what a thread that is not a shard hands one shard — the Redis bridge's
//! answers, the cluster threads' items. A lock-free queue (crossbeam's `SegQueue`) and the
//! waker of the one shard task that takes from it: glommio takes wakes from other threads, so
//! the shard sleeps until there is something and no thread blocks on the other.

use std::task::Poll;

use crossbeam_queue::SegQueue;
use futures_util::task::AtomicWaker;

/// Items for one shard from another thread.
#[derive(Debug)]
pub(crate) struct ForeignQueue<T> {
    items: SegQueue<T>,
    waker: AtomicWaker,
}

impl<T> Default for ForeignQueue<T> {
    fn default() -> ForeignQueue<T> {
        ForeignQueue {
            items: SegQueue::new(),
            waker: AtomicWaker::new(),
        }
    }
}

impl<T> ForeignQueue<T> {
    /// Queues `item` and wakes the shard's task.
    pub(crate) fn push(&self, item: T) {
        self.items.push(item);
        self.waker.wake();
    }

    /// The next item, in the order they were pushed.
    pub(crate) fn pop(&self) -> Option<T> {
        self.items.pop()
    }

    /// Completes when there is an item to pop (for the one task that pops).
    pub(crate) async fn ready(&self) {
        std::future::poll_fn(|cx| {
            self.waker.register(cx.waker());
            if self.items.is_empty() {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
    }
}
