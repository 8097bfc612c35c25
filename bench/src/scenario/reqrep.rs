//! `reqrep`: C requesters each send a request and wait for its response before the next (a
//! synchronous client, the shape that exposes wake-up latency); R responders in one queue group
//! answer each request with its own payload. Latency is the request's round trip. With a rate,
//! each requester paces its requests (a synchronous client at an ordinary load).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use super::{core_for, join_all, pin};
use crate::error::BenchError;
use crate::report::{self, Measured, Placement, Report};
use crate::stamp;
use crate::wire::{self, Event, ReplyTo, Target};

const SUBJECT: &str = "bench.service";

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
}

impl ReqRep {
    /// Runs the scenario.
    ///
    /// # Errors
    /// A connection failed, a response never came, or a load thread died.
    pub fn run(&self) -> Result<Report, BenchError> {
        let size = self.size.max(stamp::MIN_PAYLOAD);
        let ready = Arc::new(Barrier::new(self.responders + 1));
        let stop = Arc::new(AtomicBool::new(false));
        let mut responders = Vec::new();
        for i in 0..self.responders {
            let run = self.clone();
            let (ready, stop) = (Arc::clone(&ready), Arc::clone(&stop));
            responders.push(std::thread::spawn(move || {
                pin(core_for(&run.cores, 1, i));
                let setup = match &run.service {
                    None => wire::subscribed(run.target, SUBJECT, Some("bench-responders")),
                    Some(name) => wire::connect(run.target).and_then(|mut wire| {
                        wire.register(name, SUBJECT)?;
                        wire.sync()?;
                        Ok(wire)
                    }),
                };
                let delay = if i < run.slow {
                    run.slow_time
                } else {
                    Duration::ZERO
                };
                // Reach the start line even after a failure, or everyone else waits forever.
                ready.wait();
                let mut wire = setup?;
                let mut pending: Vec<(ReplyTo, Vec<u8>)> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    wire.receive(&mut |event| {
                        if let Event::Msg {
                            payload,
                            reply: Some(to),
                        } = event
                        {
                            pending.push((to, payload.to_vec()));
                        }
                    })?;
                    for (to, payload) in pending.drain(..) {
                        if !delay.is_zero() {
                            std::thread::sleep(delay);
                        }
                        wire.reply(&to, &payload)?;
                        if !delay.is_zero() {
                            wire.flush()?;
                        }
                    }
                    wire.flush()?;
                }
                Ok(wire.shard())
            }));
        }
        ready.wait();
        let start_line = Arc::new(Barrier::new(self.requesters + 1));
        let mut requesters = Vec::new();
        for i in 0..self.requesters {
            let run = self.clone();
            let start_line = Arc::clone(&start_line);
            requesters.push(std::thread::spawn(move || {
                pin(core_for(&run.cores, 0, i));
                let setup = wire::connect(run.target);
                let mut payload = vec![0u8; size];
                start_line.wait();
                let mut wire = setup?;
                let mut latency = report::histogram()?;
                let interval = run
                    .rate
                    .filter(|&rate| rate > 0)
                    .map(|rate| Duration::from_secs_f64(1.0 / rate as f64));
                let paced_from = Instant::now();
                for n in 0..run.requests {
                    if let Some(interval) = interval {
                        let slot = paced_from + interval.mul_f64(n as f64);
                        if let Some(wait) = slot.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                    }
                    let sent = stamp::now_ns();
                    stamp::write(&mut payload, sent);
                    wire.request(SUBJECT, &payload)?;
                    wire.flush()?;
                    let deadline = Instant::now() + Duration::from_secs(30);
                    let mut answered = false;
                    while !answered {
                        wire.receive(&mut |event| {
                            // The responder echoes the payload: its stamp names our request.
                            if let Event::Response { payload } = event {
                                answered |= stamp::read(payload) == sent;
                            }
                        })?;
                        if Instant::now() > deadline {
                            return Err(BenchError::Setup("no response within 30 s".to_owned()));
                        }
                    }
                    let _ = latency.record(stamp::now_ns().saturating_sub(sent).max(1));
                }
                Ok((latency, Instant::now(), wire.shard()))
            }));
        }
        start_line.wait();
        let started = Instant::now();
        let results = join_all(requesters);
        stop.store(true, Ordering::Relaxed);
        let responder_shards = join_all(responders)?;
        let results = results?;
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
