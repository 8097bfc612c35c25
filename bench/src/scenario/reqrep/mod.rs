//! `reqrep`: C requesters each send a request and wait for its response before the next (a
//! synchronous client, the shape that exposes wake-up latency); R responders in one queue group
//! answer each request with its own payload. Latency is the request's round trip. With a rate,
//! each requester paces its requests (a synchronous client at an ordinary load). By default the
//! requesters share one thread and the responders another, each waiting on its sockets with
//! poll(2) (`requester.rs`, `responder.rs`), so the tool's own wake-ups do not set the pace.

mod requester;
mod responder;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use super::{core_for, join_all, pin};
use crate::error::BenchError;
use crate::report::{self, Measured, Placement, Report};
use crate::stamp;
use crate::wire::{self, Target};
use requester::Requester;
use responder::Responder;

const SUBJECT: &str = "bench.service";

/// How the load threads drive their connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Driver {
    /// All requesters on one thread and all responders that are not slow on another, each
    /// thread waiting on its sockets with poll(2) (a slow responder keeps a thread of its own).
    Poll,
    /// A thread per connection, blocking on its socket.
    Threads,
}

/// A request/reply run's parameters.
#[derive(Debug, Clone)]
pub struct ReqRep {
    /// Broker.
    pub target: Target,
    /// Concurrent synchronous requesters.
    pub requesters: usize,
    /// Responders (one queue group).
    pub responders: usize,
    /// Requests per requester.
    pub requests: u64,
    /// Payload bytes.
    pub size: usize,
    /// Cores to pin load threads to.
    pub cores: Vec<usize>,
    /// Register the responders as instances of this shardbus service (its endpoint the
    /// subject) instead of subscribing them in a queue group.
    pub service: Option<String>,
    /// How many responders are slow, and how long each of their answers takes (they serve
    /// one request at a time, as a slow process would).
    pub slow: usize,
    /// The slow responders' time per request.
    pub slow_time: Duration,
    /// Requests per second per requester: a request starts at its slot (or at once when the
    /// previous answer came late), so CPU per request can be read at an ordinary rate, not
    /// only at saturation. `None`: each request as soon as the previous answer came.
    pub rate: Option<u64>,
    /// How the load threads drive their connections.
    pub driver: Driver,
}

impl ReqRep {
    /// Which responders share a thread: the slow ones alone, the others together when polled.
    fn responder_threads(&self) -> Vec<Vec<usize>> {
        let slow = self.slow.min(self.responders);
        let mut threads: Vec<Vec<usize>> = (0..slow).map(|i| vec![i]).collect();
        match self.driver {
            Driver::Poll if slow < self.responders => {
                threads.push((slow..self.responders).collect())
            }
            Driver::Poll => {}
            Driver::Threads => threads.extend((slow..self.responders).map(|i| vec![i])),
        }
        threads
    }

    /// Which requesters share a thread.
    fn requester_threads(&self) -> Vec<Vec<usize>> {
        match self.driver {
            Driver::Poll => vec![(0..self.requesters).collect()],
            Driver::Threads => (0..self.requesters).map(|i| vec![i]).collect(),
        }
    }

    /// The `index`th responder's connection, subscribed or registered.
    fn responder(&self, index: usize) -> Result<Responder, BenchError> {
        let wire = match &self.service {
            None => wire::subscribed(self.target, SUBJECT, Some("bench-responders"))?,
            Some(name) => {
                let mut wire = wire::connect(self.target)?;
                wire.register(name, SUBJECT)?;
                wire.sync()?;
                wire
            }
        };
        let delay = if index < self.slow {
            self.slow_time
        } else {
            Duration::ZERO
        };
        Ok(Responder::new(wire, delay))
    }

    /// Runs the scenario.
    ///
    /// # Errors
    /// A connection failed, a response never came, or a load thread died.
    pub fn run(&self) -> Result<Report, BenchError> {
        let size = self.size.max(stamp::MIN_PAYLOAD);
        let responder_threads = self.responder_threads();
        let ready = Arc::new(Barrier::new(responder_threads.len() + 1));
        let stop = Arc::new(AtomicBool::new(false));
        let mut responders = Vec::new();
        for (thread, indices) in responder_threads.into_iter().enumerate() {
            let run = self.clone();
            let (ready, stop) = (Arc::clone(&ready), Arc::clone(&stop));
            responders.push(std::thread::spawn(move || {
                pin(core_for(&run.cores, 1, thread));
                let setup: Result<Vec<Responder>, BenchError> =
                    indices.iter().map(|&i| run.responder(i)).collect();
                // Reach the start line even after a failure, or everyone else waits forever.
                ready.wait();
                responder::run(setup?, &stop)
            }));
        }
        ready.wait();
        let requester_threads = self.requester_threads();
        let start_line = Arc::new(Barrier::new(requester_threads.len() + 1));
        let mut requesters = Vec::new();
        for (thread, indices) in requester_threads.into_iter().enumerate() {
            let run = self.clone();
            let start_line = Arc::clone(&start_line);
            requesters.push(std::thread::spawn(move || {
                pin(core_for(&run.cores, 0, thread));
                let setup: Result<Vec<Requester>, BenchError> = indices
                    .iter()
                    .map(|_| {
                        Requester::new(wire::connect(run.target)?, size, run.requests, run.rate)
                    })
                    .collect();
                start_line.wait();
                requester::run(setup?)
            }));
        }
        start_line.wait();
        let started = Instant::now();
        let results = join_all(requesters);
        stop.store(true, Ordering::Relaxed);
        let responder_shards: Vec<Option<u16>> =
            join_all(responders)?.into_iter().flatten().collect();
        let results: Vec<requester::Measured> = results?.into_iter().flatten().collect();
        let mut latency = report::histogram()?;
        let mut end = started;
        for (h, finished, _) in &results {
            latency
                .add(h)
                .map_err(|e| BenchError::Setup(e.to_string()))?;
            end = end.max(*finished);
        }
        let secs = end.duration_since(started).as_secs_f64().max(1e-9);
        let total = self.requests * self.requesters as u64;
        let requester_shards: Vec<Option<u16>> = results.iter().map(|r| r.2).collect();
        let mut report = Report::new(
            Measured {
                scenario: if self.service.is_some() {
                    "service"
                } else {
                    "reqrep"
                },
                target: self.target.to_string(),
                publishers: self.requesters,
                subscribers: self.responders,
                size,
                sent: total,
                received: latency.len(),
                expected: total,
                send_secs: secs,
                total_secs: secs,
            },
            &latency,
            None,
        );
        report.placement = Placement::of(&requester_shards, &responder_shards);
        Ok(report)
    }
}
