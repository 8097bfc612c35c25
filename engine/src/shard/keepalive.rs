//! Keepalive (PROTOCOL.md §1.4): one task per shard wakes every `ping_interval_ms`, pings each
//! connection that was sent nothing during the interval, and closes with `STALE_CONNECTION` one
//! that left two PINGs in a row unanswered and sent nothing else meanwhile: input of any kind
//! proves the peer alive (as in nats-server), so a client whose PONGs queue behind its own
//! flood is not cut. One timer per shard rather than per connection keeps
//! an idle connection's cost to its state (ten thousand devices, ten thousand timers saved).

use std::rc::Rc;
use std::time::Duration;

use shardbus_protocol::{ErrorCode, Fields};

use super::Shard;
use super::conn::{Conn, Outgoing};
use crate::metrics::Metric;

/// Runs until the shard stops. Does nothing when keepalive is off (interval 0).
pub(crate) async fn run(shard: Rc<Shard>) {
    if shard.settings.ping_interval_ms == 0 {
        return;
    }
    let interval = Duration::from_millis(u64::from(shard.settings.ping_interval_ms));
    loop {
        glommio::timer::sleep(interval).await;
        shard.metrics.add(Metric::KeepaliveTicks, 1);
        let conns: Vec<Rc<Conn>> = shard.conns.borrow().values().cloned().collect();
        for conn in conns {
            tick(&shard, &conn);
        }
    }
}

fn tick(shard: &Shard, conn: &Conn) {
    if conn.outbox.is_closed() {
        return;
    }
    if conn.heard.take() {
        conn.pings_unanswered.set(0);
    }
    if conn.pings_unanswered.get() >= 2 {
        shard.metrics.add(Metric::StaleConnections, 1);
        conn.fail(
            ErrorCode::STALE_CONNECTION,
            0,
            0,
            "two PINGs in a row went unanswered",
        );
        return;
    }
    if conn.outbox.take_activity() {
        return;
    }
    conn.pings_unanswered.set(conn.pings_unanswered.get() + 1);
    conn.send(&Outgoing::bare(Fields::Ping, 0));
    conn.outbox.take_activity();
}
