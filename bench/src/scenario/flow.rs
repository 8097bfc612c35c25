//! `pub`, `pubsub` and `queue`: P publishers send to one subject; S subscribers each get every
//! message (`pubsub`, fan-out when S > 1) or share them as one queue group (`queue`); with no
//! subscriber only publishing is measured (`pub`). Subscribers record the latency from each
//! message's send stamp. Subscribers share threads (`subscriber.rs`), one per core by default.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;

use super::subscriber::{self, Subscriber};
use super::{core_for, join_all, pin};
use crate::error::BenchError;
use crate::report::{self, Measured, Report};
use crate::stamp;
use crate::wire::{self, Target};

/// Subject every flow scenario publishes on.
const SUBJECT: &str = "bench.flow";

/// How the subscribers share the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Each subscriber gets every message.
    Each,
    /// One queue group: each message reaches one subscriber.
    Queue,
}

/// A flow run's parameters.
#[derive(Debug, Clone)]
pub struct Flow {
    /// Broker.
    pub target: Target,
    /// Publishers.
    pub publishers: usize,
    /// Subscribers.
    pub subscribers: usize,
    /// How subscribers share messages.
    pub sharing: Sharing,
    /// Messages per publisher.
    pub msgs: u64,
    /// Payload bytes (at least 8, for the stamp).
    pub size: usize,
    /// Publishes written per socket write.
    pub batch: usize,
    /// Messages per second per publisher; `None` = as fast as possible.
    pub rate: Option<u64>,
    /// How long subscribers wait for stragglers once publishing ended.
    pub drain: Duration,
    /// Cores to pin load threads to (empty: no pinning).
    pub cores: Vec<usize>,
    /// Show a progress bar.
    pub progress: bool,
    /// Threads the subscribers share (0: a thread each).
    pub subscriber_threads: usize,
}

impl Flow {
    fn expected_per_subscriber(&self) -> u64 {
        let total = self.msgs * self.publishers as u64;
        match self.sharing {
            Sharing::Each => total,
            Sharing::Queue => total.div_ceil(self.subscribers.max(1) as u64),
        }
    }

    /// How many subscribers each subscriber thread drives (dealt round robin).
    fn subscribers_per_thread(&self) -> Vec<usize> {
        let threads = match self.subscriber_threads {
            0 => self.subscribers,
            n => n.min(self.subscribers),
        };
        (0..threads)
            .map(|t| (self.subscribers - t).div_ceil(threads))
            .collect()
    }

    fn expected_total(&self) -> u64 {
        let total = self.msgs * self.publishers as u64;
        match self.sharing {
            Sharing::Each => total * self.subscribers as u64,
            Sharing::Queue if self.subscribers > 0 => total,
            Sharing::Queue => 0,
        }
    }

    /// Runs the scenario.
    ///
    /// # Errors
    /// A connection failed or a load thread died.
    pub fn run(&self, name: &'static str) -> Result<Report, BenchError> {
        if self.size < stamp::MIN_PAYLOAD {
            return Err(BenchError::Setup(format!(
                "--size must be at least {} bytes (the send stamp)",
                stamp::MIN_PAYLOAD
            )));
        }
        let groups = self.subscribers_per_thread();
        let start_line = Arc::new(Barrier::new(self.publishers + groups.len() + 1));
        let received_total = Arc::new(AtomicU64::new(0));
        let sent_total = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));

        let mut subscribers = Vec::new();
        for (thread, count) in groups.into_iter().enumerate() {
            let flow = self.clone();
            let (start_line, received_total, stop) = (
                Arc::clone(&start_line),
                Arc::clone(&received_total),
                Arc::clone(&stop),
            );
            subscribers.push(std::thread::spawn(move || {
                pin(core_for(&flow.cores, 1, thread));
                let queue = (flow.sharing == Sharing::Queue).then_some("bench-workers");
                let expected = match flow.sharing {
                    Sharing::Each => flow.expected_per_subscriber(),
                    Sharing::Queue => u64::MAX,
                };
                let setup: Result<Vec<Subscriber>, BenchError> = (0..count)
                    .map(|_| {
                        Subscriber::new(wire::subscribed(flow.target, SUBJECT, queue)?, expected)
                    })
                    .collect();
                // Reach the start line even after a failure, or everyone else waits forever.
                start_line.wait();
                subscriber::run(setup?, &received_total, &stop)
            }));
        }

        let mut publishers = Vec::new();
        for i in 0..self.publishers {
            let flow = self.clone();
            let (start_line, sent_total) = (Arc::clone(&start_line), Arc::clone(&sent_total));
            publishers.push(std::thread::spawn(move || {
                pin(core_for(&flow.cores, 0, i));
                let setup = wire::connect(flow.target);
                let mut payload = vec![0u8; flow.size];
                start_line.wait();
                let mut wire = setup?;
                let started = stamp::now_ns();
                let interval = flow.rate.map(|r| 1_000_000_000 / r.max(1));
                let mut sent = 0u64;
                while sent < flow.msgs {
                    // A batch leaves in one write: one stamp for all of it when unpaced. Paced,
                    // a batch is what is due by now (one message when the tool keeps up), so
                    // no message leaves before the time stamped in it.
                    let batch_at = stamp::now_ns();
                    let due = match interval {
                        Some(step) => {
                            (batch_at.saturating_sub(started) / step + 1).saturating_sub(sent)
                        }
                        None => u64::MAX,
                    };
                    let batch = (flow.msgs - sent).min(flow.batch as u64).min(due.max(1));
                    for k in 0..batch {
                        let at = match interval {
                            Some(step) => started + (sent + k) * step,
                            None => batch_at,
                        };
                        stamp::write(&mut payload, at);
                        wire.publish(SUBJECT, &payload)?;
                    }
                    wire.flush()?;
                    sent += batch;
                    sent_total.fetch_add(batch, Ordering::Relaxed);
                    if let Some(step) = interval {
                        let next = stamp::instant(started + sent * step);
                        if let Some(wait) = next.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                    }
                }
                wire.sync()?;
                Ok(Instant::now())
            }));
        }

        start_line.wait();
        let started = Instant::now();
        let total_sent = self.msgs * self.publishers as u64;
        let bar = if self.progress {
            ProgressBar::new(total_sent)
        } else {
            ProgressBar::hidden()
        };
        while publishers.iter().any(|p| !p.is_finished()) {
            bar.set_position(sent_total.load(Ordering::Relaxed));
            std::thread::sleep(Duration::from_millis(50));
        }
        bar.finish_and_clear();
        let publish_ends = join_all(publishers)?;
        let send_end = publish_ends.iter().max().copied().unwrap_or(started);

        // Wait for the subscribers to catch up, as long as messages keep arriving.
        let expected = self.expected_total();
        let mut last_progress = (received_total.load(Ordering::Relaxed), Instant::now());
        while received_total.load(Ordering::Relaxed) < expected {
            std::thread::sleep(Duration::from_millis(10));
            let now = received_total.load(Ordering::Relaxed);
            if now != last_progress.0 {
                last_progress = (now, Instant::now());
            } else if last_progress.1.elapsed() > self.drain {
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        let seen: Vec<subscriber::Seen> = join_all(subscribers)?.into_iter().flatten().collect();

        let mut latency = report::histogram()?;
        let mut received = 0;
        let mut receive_end = send_end;
        for s in &seen {
            latency
                .add(&s.latency)
                .map_err(|e| BenchError::Setup(e.to_string()))?;
            received += s.received;
            if let Some(last) = s.last {
                receive_end = receive_end.max(last);
            }
        }
        let send_secs = send_end.duration_since(started).as_secs_f64().max(1e-9);
        let total_secs = receive_end.duration_since(started).as_secs_f64().max(1e-9);
        Ok(Report::new(
            Measured {
                scenario: name,
                target: self.target.to_string(),
                publishers: self.publishers,
                subscribers: self.subscribers,
                size: self.size,
                sent: total_sent,
                received,
                expected,
                send_secs,
                total_secs,
            },
            &latency,
            None,
        ))
    }
}
