//! A subscriber of a flow run (`pubsub`, `queue`): counts what it receives and records each
//! message's latency from its send stamp. Subscribers are driven alone on a thread each, or
//! several on one thread that waits on their sockets with poll(2): a hundred paced subscribers
//! on a hundred threads made every delivery wake a thread of its own, and on loopback the
//! broker's `send` pays for that wake, so the tool inflated the broker's CPU per delivery.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::error::BenchError;
use crate::report;
use crate::scenario::readiness::{self, Readiness};
use crate::stamp;
use crate::wire::{Event, Wire};

/// How long a wait for readable sockets lasts at most, so the end of the run is noticed.
const POLL_AT_MOST: Duration = Duration::from_millis(100);

/// What one subscriber saw.
pub struct Seen {
    /// Messages received.
    pub received: u64,
    /// When the last one came.
    pub last: Option<Instant>,
    /// Their latencies.
    pub latency: Histogram<u64>,
}

/// One subscriber.
pub struct Subscriber {
    wire: Box<dyn Wire>,
    seen: Seen,
    /// Messages after which it is done (`u64::MAX` in a queue group, which ends at `stop`).
    expected: u64,
}

impl Subscriber {
    /// A subscriber on `wire` (subscribed) that is done after `expected` messages.
    pub fn new(wire: Box<dyn Wire>, expected: u64) -> Result<Subscriber, BenchError> {
        Ok(Subscriber {
            wire,
            seen: Seen {
                received: 0,
                last: None,
                latency: report::histogram()?,
            },
            expected,
        })
    }

    fn done(&self) -> bool {
        self.seen.received >= self.expected
    }

    /// Reads once and counts what arrived (into `total` too).
    fn read(&mut self, total: &AtomicU64) -> Result<(), BenchError> {
        // Every message of one read arrived at once: one clock read per read, not per
        // message (the clock was a third of the tool's CPU, perf/RESULTS.md).
        let mut arrived = None;
        let latency = &mut self.seen.latency;
        let n = self.wire.receive(&mut |event| {
            if let Event::Msg { payload, .. } = event {
                let sent = stamp::read(payload);
                let now = *arrived.get_or_insert_with(stamp::now_ns);
                let _ = latency.record(now.saturating_sub(sent).max(1));
            }
        })?;
        if n > 0 {
            self.seen.received += n as u64;
            self.seen.last = Some(Instant::now());
            total.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Drives `subscribers` on this thread until each is done or `stop`: alone with blocking
/// reads, several with poll(2). Returns what each saw.
///
/// # Errors
/// A read failed, or a wire has no socket to poll.
pub fn run(
    mut subscribers: Vec<Subscriber>,
    total: &AtomicU64,
    stop: &AtomicBool,
) -> Result<Vec<Seen>, BenchError> {
    if let [alone] = subscribers.as_mut_slice() {
        while !stop.load(Ordering::Relaxed) && !alone.done() {
            alone.read(total)?;
        }
    } else {
        let sockets = readiness::sockets(subscribers.iter().map(|s| &*s.wire))?;
        let mut readiness = Readiness::new(&sockets);
        while !stop.load(Ordering::Relaxed) && !subscribers.iter().all(Subscriber::done) {
            readiness.wait(
                |i| subscribers.get(i).is_some_and(|s| !s.done()),
                POLL_AT_MOST,
            )?;
            for (i, subscriber) in subscribers.iter_mut().enumerate() {
                if readiness.ready(i) {
                    subscriber.read(total)?;
                }
            }
        }
    }
    Ok(subscribers.into_iter().map(|s| s.seen).collect())
}
