//! A shard's life: connect its mesh ends, accept connections on its own SO_REUSEPORT listener,
//! run the request timer, and on shutdown stop accepting, send DRAIN, wait out the grace period
//! and close what is left.

use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::future;
use glommio::net::TcpListener;
use shardbus_protocol::{ErrorCode, Fields};

use super::Shard;
use super::conn::Outgoing;
use super::{keepalive, session, watch};
use crate::mesh::doorbell::Ear;
use crate::mesh::{MeshEnds, ReceiveEnd};

/// How often the drain looks whether every connection has gone.
const DRAIN_POLL: Duration = Duration::from_millis(20);
/// How long a shard waits for its closed connections' writers to finish after the grace period.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Runs shard `shard` until the server shuts down.
pub(crate) async fn run(shard: Rc<Shard>, listener: TcpListener, ends: MeshEnds) {
    spawn_mesh(&shard, ends);
    if let Some(tick) = &shard.write_tick {
        glommio::spawn_local(Rc::clone(tick).run()).detach();
    }
    glommio::spawn_local(request_timer(Rc::clone(&shard))).detach();
    glommio::spawn_local(keepalive::run(Rc::clone(&shard))).detach();
    glommio::spawn_local(Rc::clone(&shard).watch_instances()).detach();
    glommio::spawn_local(Rc::clone(&shard).watch_gates()).detach();
    glommio::spawn_local(Rc::clone(&shard).publish_events()).detach();
    glommio::spawn_local(Rc::clone(&shard).take_store_answers()).detach();
    glommio::spawn_local(Rc::clone(&shard).flush_cluster()).detach();
    glommio::spawn_local(Rc::clone(&shard).flush_cluster_link()).detach();
    glommio::spawn_local(Rc::clone(&shard).take_from_cluster()).detach();
    let stopping = shard.stopping.notified();
    glommio::spawn_local(watch::run(Rc::clone(&shard), shard.settings.watch_interval)).detach();

    // The accept is polled when a connection arrives and once more when `stopping` fires:
    // nothing else wakes this task (see `watch.rs` for why that matters).
    future::or(accept_loop(&shard, &listener), stopping).await;
    drop(listener);
    drain(&shard).await;
}

/// Spawns the tasks that carry the mesh: a flusher per outgoing link, and one receiver for
/// every incoming channel, which waits on the shard's doorbell when they are all empty (with
/// one shard, only for nudges).
pub(crate) fn spawn_mesh(shard: &Rc<Shard>, ends: MeshEnds) {
    for end in ends.senders {
        let shard = Rc::clone(shard);
        glommio::spawn_local(async move {
            if let Some(link) = shard.link(end.peer) {
                link.run_flusher(end.channel, end.pool).await;
            }
        })
        .detach();
    }
    if let Some(ear) = ends.doorbell {
        glommio::spawn_local(receive_mesh(Rc::clone(shard), ends.receivers, ear)).detach();
    }
}

/// Applies what the other shards send, in each one's order, until they are all gone; passes
/// a nudge (a shutdown or a reload published) on to the watch task.
async fn receive_mesh(shard: Rc<Shard>, receivers: Vec<ReceiveEnd>, ear: Ear) {
    let mut waiter = ear.into_waiter();
    let mut nudges = shard.shared.nudges();
    loop {
        let mut took = false;
        for end in &receivers {
            while let Some(mut batch) = end.channel.pop() {
                took = true;
                shard.apply_batch(end.peer, &batch);
                batch.clear();
                // A full pool just drops the batch: the sender allocates another.
                let _ = end.pool.push(batch);
                // Pausing here fills the channel, which congests the sender's link, which
                // pauses the publishers over there: backpressure across shards.
                shard.wait_for_backlog().await;
                glommio::yield_if_needed().await;
            }
        }
        if !receivers.is_empty() && receivers.iter().all(|end| end.channel.is_finished()) {
            return;
        }
        if took {
            continue;
        }
        waiter.arm();
        if receivers.iter().any(|end| end.channel.has_work()) {
            waiter.disarm();
            continue;
        }
        if !waiter.wait().await {
            tracing::error!("the mesh doorbell failed: this shard no longer hears the others");
            return;
        }
        let now = shard.shared.nudges();
        if now != nudges {
            nudges = now;
            shard.nudged.notify();
        }
    }
}

async fn accept_loop(shard: &Rc<Shard>, listener: &TcpListener) {
    loop {
        match listener.accept().await {
            Ok(stream) if shard.rate.borrow().accept() => {
                glommio::spawn_local(session::serve(Rc::clone(shard), stream)).detach();
            }
            Ok(stream) => {
                shard
                    .metrics
                    .add(crate::metrics::Metric::ConnectionsRefused, 1);
                glommio::spawn_local(session::refuse_accept_rate(Rc::clone(shard), stream))
                    .detach();
            }
            Err(error) => {
                // EMFILE and friends: say so and back off instead of spinning on the error.
                tracing::warn!(shard = shard.id, %error, "accept failed");
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Answers TIMEOUT at each request's deadline. One task per shard, asleep until the earliest
/// deadline or until an earlier one is added.
async fn request_timer(shard: Rc<Shard>) {
    loop {
        let changed = shard.requests_changed.notified();
        let next = [
            shard.requests.borrow().next_deadline(),
            shard.replies.borrow().next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min();
        match next {
            Some(deadline) => {
                let wait = deadline.saturating_duration_since(Instant::now());
                future::or(glommio::timer::sleep(wait), changed).await;
            }
            None => changed.await,
        }
        shard.expire_requests();
    }
}

/// Tells every client to go (DRAIN), waits the grace period or until they have all left, then
/// closes the rest with SERVER_DRAINING.
async fn drain(shard: &Rc<Shard>) {
    shard.draining.set(true);
    let grace = shard.settings.grace;
    let grace_ms = u32::try_from(grace.as_millis()).unwrap_or(u32::MAX);
    for conn in shard.conns.borrow().values() {
        conn.send(&Outgoing::bare(Fields::Drain { grace_ms }, 0));
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && !shard.conns.borrow().is_empty() {
        glommio::timer::sleep(DRAIN_POLL).await;
    }
    let conns: Vec<_> = shard.conns.borrow().values().cloned().collect();
    for conn in &conns {
        conn.fail(
            ErrorCode::SERVER_DRAINING,
            0,
            0,
            "the server is shutting down",
        );
    }
    let deadline = Instant::now() + CLOSE_WAIT;
    while Instant::now() < deadline && !shard.conns.borrow().is_empty() {
        glommio::timer::sleep(DRAIN_POLL).await;
    }
    tracing::info!(shard = shard.id, "shard stopped");
}
