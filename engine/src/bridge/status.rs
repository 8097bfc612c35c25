//! Whether Redis is reachable, as the shards, `/readyz` and `/api/v1/server` see it: one flag
//! read on the path of every history publication, and the reason of the current outage behind
//! a lock taken only when an outage starts or ends and when someone asks.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// Redis's reachability and its outages so far.
#[derive(Debug)]
pub(crate) struct RedisStatus {
    up: AtomicBool,
    outages: AtomicU64,
    /// Why Redis is unreachable and since when (`None` while it is up).
    outage: Mutex<Option<(String, Instant)>>,
}

impl RedisStatus {
    /// Down until the bridge's first connection succeeds.
    pub(crate) fn new() -> RedisStatus {
        RedisStatus {
            up: AtomicBool::new(false),
            outages: AtomicU64::new(0),
            outage: Mutex::new(Some(("not connected yet".to_owned(), Instant::now()))),
        }
    }

    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Outages since start (the first connection failing counts as one).
    pub(crate) fn outages(&self) -> u64 {
        self.outages.load(Ordering::Relaxed)
    }

    /// Why Redis is unreachable, and for how long it has been (`None`: it is up).
    pub(crate) fn outage(&self) -> Option<(String, std::time::Duration)> {
        let outage = self.outage.lock().ok()?;
        outage
            .as_ref()
            .map(|(why, since)| (why.clone(), since.elapsed()))
    }

    /// Marks Redis reachable; returns how long the outage it ends lasted, if there was one.
    pub(crate) fn set_up(&self) -> Option<std::time::Duration> {
        let ended = self
            .outage
            .lock()
            .ok()
            .and_then(|mut outage| outage.take())
            .map(|(_, since)| since.elapsed());
        self.up.store(true, Ordering::Release);
        ended
    }

    /// Marks Redis unreachable for `why`; returns whether this starts an outage (it was up, or
    /// had never been reached and this is the first failure).
    pub(crate) fn set_down(&self, why: &str) -> bool {
        let was_up = self.up.swap(false, Ordering::AcqRel);
        let Ok(mut outage) = self.outage.lock() else {
            return was_up;
        };
        let first = match outage.as_mut() {
            Some((reason, _)) if !was_up => {
                let first = reason == "not connected yet";
                why.clone_into(reason);
                first
            }
            _ => {
                *outage = Some((why.to_owned(), Instant::now()));
                true
            }
        };
        if first || was_up {
            self.outages.fetch_add(1, Ordering::Relaxed);
        }
        first || was_up
    }
}
