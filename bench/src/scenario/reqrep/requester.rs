//! A synchronous requester (one request outstanding, the next sent when its answer came or, when
//! paced, at its slot) and the two ways to drive requesters: each alone on its own thread, or
//! many on one thread that waits for whichever socket is readable with ppoll(2). Many on one
//! thread is the default: a thread per requester costs the load tool a wake-up and a context
//! switch per answer, which on a small machine took as much CPU as the broker it measured.

use std::io;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::error::BenchError;
use crate::report;
use crate::scenario::readiness::{self, Readiness};
use crate::stamp;
use crate::wire::{Event, Wire};

use super::SUBJECT;

/// How long a request may wait for its answer before the run fails.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// How long a wait for readable sockets lasts at most, so a lost answer is noticed.
const POLL_AT_MOST: Duration = Duration::from_millis(100);

/// One requester: its connection, its outstanding request and the latencies of those answered.
pub struct Requester {
    wire: Box<dyn Wire>,
    payload: Vec<u8>,
    /// The outstanding request's stamp (0: none outstanding).
    sent: u64,
    answer_by: Instant,
    /// Requests sent so far.
    count: u64,
    /// Requests to send in all.
    requests: u64,
    /// Time between two requests' slots, when paced.
    interval: Option<Duration>,
    paced_from: Instant,
    latency: Histogram<u64>,
    finished_at: Option<Instant>,
}

/// What a requester measured: its latencies, when its last answer came, and its shard.
pub type Measured = (Histogram<u64>, Instant, Option<u16>);

impl Requester {
    /// A requester on `wire` that sends `requests` requests of `size` bytes, paced at `rate`
    /// per second if given.
    pub fn new(
        wire: Box<dyn Wire>,
        size: usize,
        requests: u64,
        rate: Option<u64>,
    ) -> Result<Requester, BenchError> {
        Ok(Requester {
            wire,
            payload: vec![0u8; size],
            sent: 0,
            answer_by: Instant::now(),
            count: 0,
            requests,
            interval: rate
                .filter(|&rate| rate > 0)
                .map(|rate| Duration::from_secs_f64(1.0 / rate as f64)),
            paced_from: Instant::now(),
            latency: report::histogram()?,
            finished_at: None,
        })
    }

    /// Starts the clock of the requester's pacing.
    fn start(&mut self) {
        self.paced_from = Instant::now();
        if self.requests == 0 {
            self.finished_at = Some(self.paced_from);
        }
    }

    /// How long until the next request is due; `None` while one is outstanding or when all
    /// were sent.
    fn due_in(&self, now: Instant) -> Option<Duration> {
        if self.sent != 0 || self.count >= self.requests {
            return None;
        }
        let Some(interval) = self.interval else {
            return Some(Duration::ZERO);
        };
        let slot = self.paced_from + interval.mul_f64(self.count as f64);
        Some(slot.saturating_duration_since(now))
    }

    /// Sends the next request.
    fn send(&mut self) -> io::Result<()> {
        self.sent = stamp::now_ns().max(1);
        stamp::write(&mut self.payload, self.sent);
        self.count += 1;
        self.answer_by = stamp::instant(self.sent) + ANSWER_WITHIN;
        self.wire.request(SUBJECT, &self.payload)?;
        self.wire.flush()
    }

    /// Reads once, and records the outstanding request's latency if its answer came.
    fn read(&mut self) -> Result<(), BenchError> {
        let sent = self.sent;
        let mut answered = false;
        self.wire.receive(&mut |event| {
            // The responder echoes the payload: its stamp names our request.
            if let Event::Response { payload } = event {
                answered |= stamp::read(payload) == sent;
            }
        })?;
        if !answered {
            return self.overdue(Instant::now());
        }
        let _ = self
            .latency
            .record(stamp::now_ns().saturating_sub(sent).max(1));
        self.sent = 0;
        if self.count >= self.requests {
            self.finished_at = Some(Instant::now());
        }
        Ok(())
    }

    /// Fails when the outstanding request's answer is later than a healthy run allows.
    fn overdue(&self, now: Instant) -> Result<(), BenchError> {
        if self.sent != 0 && now > self.answer_by {
            return Err(BenchError::Setup("no response within 30 s".to_owned()));
        }
        Ok(())
    }

    fn finished(&self) -> bool {
        self.finished_at.is_some()
    }

    fn into_measured(self) -> Measured {
        let finished = self.finished_at.unwrap_or_else(Instant::now);
        (self.latency, finished, self.wire.shard())
    }

    /// Drives this requester alone: blocking reads, sleeping until a paced slot.
    fn run_alone(mut self) -> Result<Measured, BenchError> {
        self.start();
        while !self.finished() {
            if let Some(wait) = self.due_in(Instant::now()) {
                if !wait.is_zero() {
                    std::thread::sleep(wait);
                }
                self.send()?;
            }
            self.read()?;
        }
        Ok(self.into_measured())
    }
}

/// Drives `requesters` on this thread until each has sent all its requests and had them
/// answered: one alone, or several together.
///
/// # Errors
/// A requester's wire has no socket to wait on, a read or write failed, or an answer is late.
pub fn run(requesters: Vec<Requester>) -> Result<Vec<Measured>, BenchError> {
    match <[Requester; 1]>::try_from(requesters) {
        Ok([alone]) => Ok(vec![alone.run_alone()?]),
        Err(together) => run_together(together),
    }
}

/// Drives `requesters` together: sends each one's requests when due and reads the sockets
/// ppoll(2) says are readable.
fn run_together(mut requesters: Vec<Requester>) -> Result<Vec<Measured>, BenchError> {
    let sockets = readiness::sockets(requesters.iter().map(|r| &*r.wire))?;
    let mut readiness = Readiness::new(&sockets);
    for requester in &mut requesters {
        requester.start();
    }
    while !requesters.iter().all(Requester::finished) {
        let now = Instant::now();
        let mut wait = POLL_AT_MOST;
        for requester in &mut requesters {
            match requester.due_in(now) {
                Some(due) if due.is_zero() => requester.send()?,
                Some(due) => wait = wait.min(due),
                None => requester.overdue(now)?,
            }
        }
        readiness.wait(|i| requesters.get(i).is_some_and(|r| r.sent != 0), wait)?;
        for (i, requester) in requesters.iter_mut().enumerate() {
            if readiness.ready(i) {
                requester.read()?;
            }
        }
    }
    Ok(requesters
        .into_iter()
        .map(Requester::into_measured)
        .collect())
}
