//! A responder (answers each request with the request's own payload, after a delay when it plays
//! a slow process) and the two ways to drive responders: each alone on its own thread, or many
//! on one thread that reads whichever socket poll(2) says is readable.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::BenchError;
use crate::scenario::readiness::{self, Readiness};
use crate::wire::{Event, ReplyTo, Wire};

/// How long a wait for readable sockets lasts at most, so the end of the run is noticed.
const POLL_AT_MOST: Duration = Duration::from_millis(100);

/// One responder.
pub struct Responder {
    wire: Box<dyn Wire>,
    /// Time per answer (zero but for a slow responder, which serves one request at a time).
    delay: Duration,
    pending: Vec<(ReplyTo, Vec<u8>)>,
}

impl Responder {
    /// A responder on `wire` (subscribed or registered) that takes `delay` per answer.
    pub fn new(wire: Box<dyn Wire>, delay: Duration) -> Responder {
        Responder {
            wire,
            delay,
            pending: Vec::new(),
        }
    }

    /// Reads once and answers every request that arrived.
    fn serve(&mut self) -> io::Result<()> {
        let pending = &mut self.pending;
        self.wire.receive(&mut |event| {
            if let Event::Msg {
                payload,
                reply: Some(to),
            } = event
            {
                pending.push((to, payload.to_vec()));
            }
        })?;
        for (to, payload) in self.pending.drain(..) {
            if !self.delay.is_zero() {
                std::thread::sleep(self.delay);
            }
            self.wire.reply(&to, &payload)?;
            if !self.delay.is_zero() {
                self.wire.flush()?;
            }
        }
        self.wire.flush()
    }

    /// Serves alone (blocking reads) until `stop`; returns the shard it was on.
    fn run_alone(mut self, stop: &AtomicBool) -> Result<Option<u16>, BenchError> {
        while !stop.load(Ordering::Relaxed) {
            self.serve()?;
        }
        Ok(self.wire.shard())
    }
}

/// Serves `responders` on this thread until `stop`, one alone or several together; returns
/// the shard of each.
///
/// # Errors
/// A responder's wire has no socket to wait on, or a read or write failed.
pub fn run(responders: Vec<Responder>, stop: &AtomicBool) -> Result<Vec<Option<u16>>, BenchError> {
    match <[Responder; 1]>::try_from(responders) {
        Ok([alone]) => Ok(vec![alone.run_alone(stop)?]),
        Err(together) => run_together(together, stop),
    }
}

/// Serves `responders` together, reading the sockets poll(2) says are readable.
fn run_together(
    mut responders: Vec<Responder>,
    stop: &AtomicBool,
) -> Result<Vec<Option<u16>>, BenchError> {
    let sockets = readiness::sockets(responders.iter().map(|r| &*r.wire))?;
    let mut readiness = Readiness::new(&sockets);
    while !stop.load(Ordering::Relaxed) {
        readiness.wait(|_| true, POLL_AT_MOST)?;
        for (i, responder) in responders.iter_mut().enumerate() {
            if readiness.ready(i) {
                responder.serve()?;
            }
        }
    }
    Ok(responders.iter().map(|r| r.wire.shard()).collect())
}
