//! The shard's watch task: every `runtime.watch_interval_us`, and at once when the shard is
//! nudged (its doorbell rung for a shutdown or a reload), it records the shard's heartbeat
//! (so `/healthz` and the process see a shard that stopped running its timers) and looks at
//! the server's shutdown flag, which the signal thread sets. When the flag is up it notifies
//! `Shard::stopping` once. It also applies a configuration reload when one was published
//! (`Shared::publish_reload`), and drops room history past its TTL once a second.
//!
//! This is the only periodic poll, and it lives in a task of its own on purpose: glommio's
//! accept (and connect, peek) pushes a waker clone on every poll while pending, and a task's
//! reference count is an `i16`. An accept that shared a task with a 20 ms poll overflowed it
//! after 32,767 polls, 11 minutes into an idle run, and the shard never accepted again. The
//! accept loop now waits on the notification, which wakes it exactly once.

use std::rc::Rc;
use std::time::Duration;

use super::Shard;
use crate::metrics::Metric;

/// Runs until the server asks to shut down, then wakes everything waiting on `stopping`.
pub(crate) async fn run(shard: Rc<Shard>, interval: Duration) {
    let mut generation = shard.shared.reload_generation();
    let mut refusals = shard.shared.reload_failures();
    loop {
        // Taken before the looks below, so a nudge that comes during them is not missed.
        let nudged = shard.nudged.notified();
        shard.shared.beat(shard.id);
        if let Some(reload) = shard.shared.reload_after(&mut generation) {
            shard.apply_reload(&reload);
        }
        // One shard speaks for the server about reloads.
        if shard.id == 0
            && let Some(why) = shard.shared.refusal_after(&mut refusals)
        {
            shard.reload_refused_event(&why);
        }
        shard.expire_history(std::time::Instant::now());
        shard.metrics.add(Metric::WatchTicks, 1);
        if shard.shared.shutting_down() {
            shard.stopping.notify();
            return;
        }
        futures_lite::future::or(glommio::timer::sleep(interval), nudged).await;
    }
}
