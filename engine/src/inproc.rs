//! The in-process engine bench: messages published on shard 0 and routed to
//! subscribers on every shard, with no sockets, counting routed deliveries per second. The
//! shards, the mesh, routing, delivery and the frame path are the server's own; the
//! connections are `shard::inproc`'s socketless ones, so what is measured is the engine
//! without the kernel's share. `perf/examples/engine_inproc.rs` drives it.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use shardbus_protocol::{Fields, Frame, encode};

use crate::config::Config;
use crate::metrics::Metric;
use crate::routing::ShardId;
use crate::server::{Shared, StartError, core_of, prepare_process, shard_executor};
use crate::shard::{self, Settings, Shard, inproc};

/// How often the waiting sides look at the counters.
const POLL: Duration = Duration::from_millis(1);

/// How long the bench waits for deliveries to progress before it calls the run stuck.
const STUCK: Duration = Duration::from_secs(30);

/// What to publish, and to how many subscribers.
#[derive(Debug, Clone)]
pub struct Load {
    /// Subscribers on each shard, all on `subject`.
    pub subscribers_per_shard: usize,
    /// The subject published to.
    pub subject: String,
    /// Payload bytes per message.
    pub payload: usize,
    /// PUB frames handed to the shard at once (as one socket read would bring them).
    pub frames_per_read: usize,
    /// Reads published before measuring (buffers grown, caches filled).
    pub warmup_reads: u64,
    /// Reads measured.
    pub reads: u64,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Shards run.
    pub shards: usize,
    /// The core each shard was pinned to.
    pub cores: Vec<Option<usize>>,
    /// Messages published in the measured part.
    pub published: u64,
    /// Deliveries (MSG frames encoded into subscribers' outboxes) in the measured part.
    pub delivered: u64,
    /// From the first measured publish to the last delivery.
    pub elapsed: Duration,
}

impl Report {
    /// Routed deliveries per second.
    pub fn deliveries_per_sec(&self) -> f64 {
        self.delivered as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The shards could not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// No delivery for a long while before all were made.
    #[error("deliveries stopped at {delivered} of {expected}")]
    Stuck {
        /// Deliveries made in the measured part.
        delivered: u64,
        /// Deliveries expected.
        expected: u64,
    },
    /// Shard 0 ended before it began the measured part.
    #[error("the publishing shard ended before it started measuring")]
    PublisherGone,
}

/// Runs `load` on the shards `config` asks for, and stops them.
///
/// # Errors
/// [`LoadError`]: the shards could not start, or deliveries stopped short.
pub fn run(config: &Config, load: &Load) -> Result<Report, LoadError> {
    let (cores, shards) = prepare_process(config)?;
    let shared = Arc::new(Shared::new(
        shards,
        config.limits.max_connections,
        std::time::Duration::from_millis(config.runtime.stall_timeout_ms),
    ));
    let settings = Settings::new(config, shards)?;
    let per_read = load.frames_per_read as u64 * (load.subscribers_per_shard * shards) as u64;
    let (started_tx, started_rx) = mpsc::sync_channel(1);
    let mut handles = Vec::with_capacity(shards);
    let mut pinned = Vec::with_capacity(shards);
    let (mesh, bells) = crate::mesh::build(shards).map_err(|error| StartError::Mesh {
        reason: error.to_string(),
    })?;
    shared.set_doorbells(bells);
    for (id, ends) in mesh.into_iter().enumerate() {
        let core = core_of(&cores, id);
        let (shared, settings, load) = (Arc::clone(&shared), settings.clone(), load.clone());
        let started_tx = started_tx.clone();
        let handle = shard_executor(id, core, config)
            .spawn(move || async move {
                let shard =
                    Shard::into_rc(Shard::new(id as ShardId, settings, Arc::clone(&shared)));
                shard::spawn_mesh(&shard, ends);
                let _sinks: Vec<_> = (0..load.subscribers_per_shard)
                    .map(|_| inproc::sink(&shard, &load.subject))
                    .collect();
                if id == 0 {
                    drive(&shard, &load, per_read, started_tx).await;
                }
                while !shared.shutting_down() {
                    glommio::timer::sleep(POLL).await;
                }
            })
            .map_err(|e| StartError::Runtime {
                shard: id,
                reason: e.to_string(),
            })?;
        handles.push(handle);
        pinned.push(core);
    }
    drop(started_tx);
    let result = measure(&shared, load, per_read, &started_rx);
    shared.request_shutdown();
    for handle in handles {
        let _ = handle.join();
    }
    let (started, delivered, ended) = result?;
    Ok(Report {
        shards,
        cores: pinned,
        published: load.reads * load.frames_per_read as u64,
        delivered,
        elapsed: ended.duration_since(started),
    })
}

/// On shard 0: waits until every other shard's subscribers are known here, publishes the
/// warm-up, waits for its deliveries, then says when the measured part starts and publishes it.
async fn drive(shard: &Rc<Shard>, load: &Load, per_read: u64, started: mpsc::SyncSender<Instant>) {
    let others = shard.settings.shards - 1;
    while inproc::shards_interested(shard, load.subject.as_bytes()) < others {
        glommio::timer::sleep(POLL).await;
    }
    let publisher = inproc::open(shard);
    let block = pub_frames(load);
    inproc::publish(shard, &publisher, &block, load.warmup_reads).await;
    let warm = load.warmup_reads * per_read;
    while delivered(&shard.shared) < warm {
        glommio::timer::sleep(POLL).await;
    }
    let _ = started.send(Instant::now());
    inproc::publish(shard, &publisher, &block, load.reads).await;
}

/// On the calling thread: waits for the start, then for every measured delivery.
fn measure(
    shared: &Shared,
    load: &Load,
    per_read: u64,
    started: &mpsc::Receiver<Instant>,
) -> Result<(Instant, u64, Instant), LoadError> {
    let started = started.recv().map_err(|_| LoadError::PublisherGone)?;
    let base = load.warmup_reads * per_read;
    let expected = load.reads * per_read;
    let mut last = (0, Instant::now());
    loop {
        let now = Instant::now();
        let done = delivered(shared).saturating_sub(base);
        if done >= expected {
            return Ok((started, done, now));
        }
        if done != last.0 {
            last = (done, now);
        } else if now.duration_since(last.1) > STUCK {
            return Err(LoadError::Stuck {
                delivered: done,
                expected,
            });
        }
        std::thread::sleep(POLL);
    }
}

fn delivered(shared: &Shared) -> u64 {
    shared.metrics().map(|m| m.get(Metric::MsgsOut)).sum()
}

/// `frames_per_read` encoded PUB frames on the load's subject.
fn pub_frames(load: &Load) -> Vec<u8> {
    let payload = vec![b'x'; load.payload];
    let frame = Frame::new(Fields::Pub)
        .with_topic(&load.subject)
        .with_payload(&payload);
    let mut block = Vec::new();
    for _ in 0..load.frames_per_read {
        // A valid subject and a payload within the limits: encoding cannot fail.
        let _ = encode(&frame, &mut block);
    }
    block
}
