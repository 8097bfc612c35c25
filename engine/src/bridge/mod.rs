//! The Redis bridge (ARCHITECTURE.md, *History in Redis*): one thread that owns the broker's
//! connection to Redis and meets the shards through lock-free queues, so a shard never waits
//! on Redis. A shard pushes a request and wakes the thread; the thread sends everything
//! waiting as one pipeline, pushes each answer onto the asking shard's queue, in the order the
//! shard asked, and wakes the shard's task through its waker (glommio takes wakes from other
//! threads). While Redis is unreachable the thread answers every request `Failed` at once and
//! reconnects with backoff. Nothing of it runs unless `[redis] url` is set.

pub mod options;
pub(crate) mod status;
mod thread;

pub(crate) use thread::client;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crossbeam_queue::SegQueue;

use crate::foreign_queue::ForeignQueue;
use crate::history::redis::{Outcome, Request};
use crate::routing::ShardId;
pub use options::RedisConfig;
use status::RedisStatus;

/// A request answered.
#[derive(Debug)]
pub(crate) struct Done {
    /// The request, handed back with its buffers (the shard reuses them).
    pub(crate) request: Request,
    pub(crate) outcome: Outcome,
}

/// What the shards and the bridge thread share.
#[derive(Debug)]
pub(crate) struct Bridge {
    requests: SegQueue<(ShardId, Request)>,
    answers: Vec<ForeignQueue<Done>>,
    pub(crate) status: RedisStatus,
    stopping: AtomicBool,
    thread: OnceLock<std::thread::Thread>,
    handle: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Why the bridge could not start.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The URL does not parse, or the CA file cannot be read.
    #[error("redis.url: {0}")]
    Client(String),
    /// The thread could not be spawned.
    #[error("cannot start the redis bridge thread: {0}")]
    Thread(String),
}

impl Bridge {
    /// Starts the bridge thread for `shards` shards and waits for its first connection attempt
    /// (a Redis that is not there yet leaves the server degraded, not stopped).
    pub(crate) fn start(config: &RedisConfig, shards: usize) -> Result<Arc<Bridge>, BridgeError> {
        let client = thread::client(config).map_err(BridgeError::Client)?;
        let bridge = Arc::new(Bridge {
            requests: SegQueue::new(),
            answers: (0..shards).map(|_| ForeignQueue::default()).collect(),
            status: RedisStatus::new(),
            stopping: AtomicBool::new(false),
            thread: OnceLock::new(),
            handle: Mutex::new(None),
        });
        let settings = thread::Settings::new(config);
        let ours = Arc::clone(&bridge);
        let (tried, first_try) = std::sync::mpsc::sync_channel(1);
        let handle = std::thread::Builder::new()
            .name("redis-bridge".to_owned())
            .spawn(move || thread::run(&ours, &client, &settings, tried))
            .map_err(|e| BridgeError::Thread(e.to_string()))?;
        // The shards start once the first connection has been tried: otherwise the first
        // publications would find Redis "away" and start their rooms over in memory.
        let _ = first_try.recv_timeout(2 * Duration::from_millis(config.timeout_ms));
        let _ = bridge.thread.set(handle.thread().clone());
        if let Ok(mut slot) = bridge.handle.lock() {
            *slot = Some(handle);
        }
        Ok(bridge)
    }

    /// Queues `request` of shard `shard` and wakes the thread.
    pub(crate) fn submit(&self, shard: ShardId, request: Request) {
        self.requests.push((shard, request));
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }

    /// Waits until shard `shard` has an answer to take.
    pub(crate) async fn answered(&self, shard: ShardId) {
        match self.answers.get(usize::from(shard)) {
            Some(answers) => answers.ready().await,
            None => std::future::pending().await,
        }
    }

    /// Shard `shard`'s next answer, in the order it asked.
    pub(crate) fn take(&self, shard: ShardId) -> Option<Done> {
        self.answers.get(usize::from(shard))?.pop()
    }

    /// Hands `done` to its shard and wakes it.
    fn answer(&self, shard: ShardId, done: Done) {
        if let Some(answers) = self.answers.get(usize::from(shard)) {
            answers.push(done);
        }
    }

    /// Stops the thread (requests still queued are dropped) and waits for it.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
        let handle = self.handle.lock().ok().and_then(|mut slot| slot.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }
}
