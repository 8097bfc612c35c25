//! `Outbox`: a connection's outbound bytes. Everything the shard sends a client (deliveries
//! from local publishers and from the mesh, answers, pings) is encoded straight into `pending`;
//! the writer task swaps it out and writes it with one call, so every frame queued during a poll
//! cycle leaves in one batch. The bytes queued plus the bytes being written are bounded by
//! `max_pending`: past it the client is a slow consumer. Past half of it the outbox asks the
//! publishers feeding it to pause (`over_high_water`), as nats-server stalls producers, so a
//! consumer that is slow only for a moment is not cut.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::notify::Notify;
use super::write_tick::WriteTick;

/// The bound was reached; the frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

/// A connection's outbound buffer.
#[derive(Debug)]
pub(crate) struct Outbox {
    pending: RefCell<Vec<u8>>,
    /// The buffer the writer is writing, kept to be swapped back in (no allocation per batch).
    spare: RefCell<Vec<u8>>,
    writing: Cell<usize>,
    max_pending: usize,
    /// Set once nothing more may be queued: the connection is closing.
    closed: Cell<bool>,
    /// Whether anything was queued since the keepalive last looked.
    active: Cell<bool>,
    ready: Notify,
    /// Signalled each time the writer finished a batch (or the outbox closed).
    drained: Notify,
    /// The shard's write tick, when writes wait for it.
    tick: Option<Rc<WriteTick>>,
}

impl Outbox {
    pub(crate) fn new(max_pending: usize, tick: Option<Rc<WriteTick>>) -> Outbox {
        Outbox {
            // Empty until the first frame: an idle connection holds no outbound buffer.
            pending: RefCell::new(Vec::new()),
            spare: RefCell::new(Vec::new()),
            writing: Cell::new(0),
            max_pending,
            closed: Cell::new(false),
            active: Cell::new(false),
            ready: Notify::default(),
            drained: Notify::default(),
            tick,
        }
    }

    /// Queues a frame of `len` bytes written by `write`, unless that would pass `max_pending`.
    /// A closed outbox silently takes nothing: the connection is going away.
    pub(crate) fn push(&self, len: usize, write: impl FnOnce(&mut Vec<u8>)) -> Result<(), Full> {
        if self.closed.get() {
            return Ok(());
        }
        let mut pending = self.pending.borrow_mut();
        if pending.len() + self.writing.get() + len > self.max_pending {
            return Err(Full);
        }
        self.queue(&mut pending, write);
        Ok(())
    }

    /// Queues a last frame regardless of the bound (the ERR that explains a close), then closes.
    pub(crate) fn push_final(&self, write: impl FnOnce(&mut Vec<u8>)) {
        if self.closed.get() {
            return;
        }
        self.queue(&mut self.pending.borrow_mut(), write);
        self.close();
    }

    fn queue(&self, pending: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
        let was_empty = pending.is_empty();
        write(pending);
        self.active.set(true);
        if was_empty {
            self.ready.notify();
        }
    }

    /// Takes nothing more; the writer flushes what is queued and ends.
    pub(crate) fn close(&self) {
        self.closed.set(true);
        self.ready.notify();
        self.drained.notify();
    }

    /// Bytes queued and being written.
    pub(crate) fn backlog(&self) -> usize {
        self.pending.borrow().len() + self.writing.get()
    }

    /// Whether the backlog passed half of `max_pending`: publishers feeding it should pause.
    pub(crate) fn over_high_water(&self) -> bool {
        self.backlog() > self.max_pending / 2
    }

    /// Whether the backlog is still above a quarter of `max_pending` (paused publishers resume
    /// below it).
    pub(crate) fn over_low_water(&self) -> bool {
        !self.closed.get() && self.backlog() > self.max_pending / 4
    }

    /// Completes when the writer has written a batch or the outbox closed.
    pub(crate) async fn drained(&self) {
        self.drained.notified().await;
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Whether frames were queued since the last call (and forgets it).
    pub(crate) fn take_activity(&self) -> bool {
        self.active.replace(false)
    }

    /// For the writer: the next batch to write, or `None` when closed and drained. Waits while
    /// there is nothing to write, and then for the shard's write tick when there is one.
    pub(crate) async fn next_batch(&self) -> Option<Vec<u8>> {
        loop {
            let ready = self.ready.notified();
            {
                let mut pending = self.pending.borrow_mut();
                if !pending.is_empty() {
                    let batch = std::mem::replace(&mut *pending, self.spare.take());
                    self.writing.set(batch.len());
                    return Some(batch);
                }
            }
            if self.closed.get() {
                return None;
            }
            ready.await;
            if let Some(tick) = &self.tick {
                tick.wait().await;
            }
        }
    }

    /// For the writer: the batch is written; its buffer comes back for reuse.
    pub(crate) fn written(&self, mut batch: Vec<u8>) {
        batch.clear();
        self.writing.set(0);
        *self.spare.borrow_mut() = batch;
        self.drained.notify();
    }
}
