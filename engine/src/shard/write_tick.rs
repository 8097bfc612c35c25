//! `WriteTick`: `[runtime] write_delay_us`, a shard's trade of latency for CPU at ordinary
//! loads. Paced delivery costs a socket write per delivery (and on loopback the peer's receive
//! too, in the writer's context: 45% of the broker's CPU in paced room delivery,
//! perf/RESULTS.md). With a delay, a connection's writer that wakes from idle waits for the
//! shard's next tick before it takes its outbox, so what arrives meanwhile leaves in the same
//! write. One timer per shard, armed only while some writer waits, whatever the number of
//! connections; a writer with a backlog writes at once, and 0 (the default) writes each poll
//! cycle's frames as soon as the writer runs.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use super::notify::Notify;

/// One shard's write tick.
#[derive(Debug)]
pub(crate) struct WriteTick {
    delay: Duration,
    /// Whether a tick is on its way.
    armed: Cell<bool>,
    /// Wakes the ticker when a writer asks for a tick.
    requested: Notify,
    /// Wakes every writer waiting for the tick.
    ticked: Notify,
}

impl WriteTick {
    /// The tick for `delay`, or `None` when writes are not delayed. Run [`WriteTick::run`].
    pub(crate) fn new(delay: Duration) -> Option<Rc<WriteTick>> {
        (!delay.is_zero()).then(|| {
            Rc::new(WriteTick {
                delay,
                armed: Cell::new(false),
                requested: Notify::default(),
                ticked: Notify::default(),
            })
        })
    }

    /// Completes at the next tick, at most the delay from now.
    pub(crate) async fn wait(&self) {
        let ticked = self.ticked.notified();
        if !self.armed.replace(true) {
            self.requested.notify();
        }
        ticked.await;
    }

    /// The ticker: sleeps the delay whenever a writer asked, then wakes every waiting writer.
    pub(crate) async fn run(self: Rc<Self>) {
        loop {
            let requested = self.requested.notified();
            if !self.armed.get() {
                requested.await;
                continue;
            }
            glommio::timer::sleep(self.delay).await;
            self.armed.set(false);
            self.ticked.notify();
        }
    }
}
