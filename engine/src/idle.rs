//! The shard's idle policy (`[runtime] idle_policy`): what a shard does when it has nothing
//! to run. `park` sleeps in the ring at once; `spin` lets glommio poll for
//! `spin_before_park_us` first, after every burst of work; `adaptive` spins only while work
//! keeps arriving.
//!
//! Adaptive, as ski rental: a park and its wake cost a shard tens of microseconds of CPU here
//! (a membarrier, several ring entries, a context switch each way; perf/RESULTS.md), so waiting
//! up to about that long for the next piece of work costs at most twice what the best choice
//! would have. The shard spins only when the idle time before the work that just came was
//! itself shorter than the window: a shard that keeps getting work every few microseconds
//! never parks, one woken after a long quiet parks again as soon as it runs dry, and an idle
//! broker never spins at all.
//!
//! glommio fixes its spin at start, so the adaptive spin is a task of its own in a task queue
//! of its own: while it spins it stays runnable and yields its queue, so the executor keeps
//! polling the rings instead of parking; when it stops it waits on a waker that the next
//! socket read or mesh batch wakes ([`work_arrived`]). The reads tell it only by a counter in
//! a thread-local cell: nothing on the publish path waits, locks or reads the clock.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What an idle shard does (`[runtime] idle_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IdlePolicy {
    /// Park at once.
    Park,
    /// Spin `spin_before_park_us` after every burst of work, then park (glommio's own spin).
    #[default]
    Spin,
    /// Spin up to `spin_before_park_us`, and only while work keeps arriving that often.
    Adaptive,
}

struct Activity {
    /// Work seen on this shard: bumped by every socket read and mesh batch.
    count: Cell<u64>,
    /// The spinner, while it waits for work.
    waiting: Cell<Option<Waker>>,
    /// When the spinner started waiting.
    idle_since: Cell<Option<Instant>>,
    /// How long the last wait lasted.
    last_idle: Cell<Duration>,
}

thread_local! {
    static ACTIVITY: Activity = const {
        Activity {
            count: Cell::new(0),
            waiting: Cell::new(None),
            idle_since: Cell::new(None),
            last_idle: Cell::new(Duration::ZERO),
        }
    };
}

/// Tells the shard's idle policy that work came in (a read returned bytes, a mesh batch
/// arrived). Cheap enough for every read: a counter, and a wake only after a wait.
pub(crate) fn work_arrived() {
    ACTIVITY.with(|activity| {
        activity.count.set(activity.count.get().wrapping_add(1));
        if let Some(waker) = activity.waiting.take() {
            if let Some(since) = activity.idle_since.take() {
                activity.last_idle.set(since.elapsed());
            }
            waker.wake();
        }
    });
}

/// Starts the adaptive spinner on the calling shard, in a task queue of its own; nothing for
/// the other policies. `window` is `spin_before_park_us`.
pub(crate) fn start(policy: IdlePolicy, window: Duration) {
    if policy != IdlePolicy::Adaptive || window.is_zero() {
        return;
    }
    let queue = glommio::executor().create_task_queue(
        glommio::Shares::default(),
        glommio::Latency::NotImportant,
        "idle-spin",
    );
    match glommio::spawn_local_into(spin(window), queue) {
        Ok(task) => drop(task.detach()),
        Err(error) => tracing::warn!(%error, "cannot start the adaptive idle policy; parking"),
    }
}

async fn spin(window: Duration) {
    loop {
        WorkArrived::default().await;
        let last_idle = ACTIVITY.with(|activity| activity.last_idle.get());
        if last_idle > window {
            continue;
        }
        let mut seen = count();
        let mut last_work = Instant::now();
        loop {
            glommio::executor().yield_task_queue_now().await;
            let now_seen = count();
            if now_seen != seen {
                seen = now_seen;
                last_work = Instant::now();
            } else if last_work.elapsed() > window {
                break;
            }
        }
    }
}

fn count() -> u64 {
    ACTIVITY.with(|activity| activity.count.get())
}

/// Completes at the next [`work_arrived`] after it is first polled.
#[derive(Default)]
struct WorkArrived {
    waited: bool,
}

impl Future for WorkArrived {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        ACTIVITY.with(|activity| {
            if self.waited && activity.waiting.take().is_none() {
                // `work_arrived` took the waker: the work came.
                return Poll::Ready(());
            }
            if !self.waited {
                activity.idle_since.set(Some(Instant::now()));
            }
            self.waited = true;
            activity.waiting.set(Some(cx.waker().clone()));
            Poll::Pending
        })
    }
}

/// The executor's own spin for `policy`: glommio spins only under `spin`.
pub(crate) fn glommio_spin(policy: IdlePolicy, window: Duration) -> Option<Duration> {
    (policy == IdlePolicy::Spin && !window.is_zero()).then_some(window)
}
