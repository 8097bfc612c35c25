//! Connections inside the process, for the engine bench (`crate::inproc`): no socket, no
//! HELLO. Their frames go through the session's own decode-and-handle path (`session::process`)
//! and their outboxes through the writer's swap protocol; only the socket calls are left out —
//! a subscriber's batches are counted and dropped where a session would write them.

use std::rc::Rc;
use std::sync::Arc;

use shardbus_protocol::{Fields, Frame, HelloOptions, encode};

use super::Shard;
use super::conn::Conn;
use super::read_buffer::ReadBuffer;
use super::session::{self, Next};

/// A connection with no socket, registered with `shard` as a session after HELLO would be.
pub(crate) fn open(shard: &Rc<Shard>) -> Rc<Conn> {
    let conn = Rc::new(Conn::new(
        shard.next_conn_id(),
        None,
        None,
        shard.settings.max_pending,
        None,
        Arc::clone(&shard.metrics),
    ));
    conn.options.set(HelloOptions(0));
    shard.register(Rc::clone(&conn));
    conn
}

/// An in-process connection that leaves its shard when dropped (the HTTP edge's, whose
/// request may be abandoned at any `.await` when its client goes away).
pub(crate) struct Attached {
    shard: Rc<Shard>,
    pub(crate) conn: Rc<Conn>,
}

impl Attached {
    /// A new connection on `shard` with `options`.
    pub(crate) fn new(shard: &Rc<Shard>, options: HelloOptions) -> Attached {
        let conn = open(shard);
        conn.options.set(options);
        Attached {
            shard: Rc::clone(shard),
            conn,
        }
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.shard.remove_conn(&self.conn);
        self.conn.outbox.close();
    }
}

/// A connection subscribed to `pattern` whose deliveries are encoded as for a client and then
/// dropped by its writer task.
pub(crate) fn sink(shard: &Rc<Shard>, pattern: &str) -> Rc<Conn> {
    let conn = open(shard);
    let mut sub = Vec::new();
    // A pattern the caller validated and a small fixed frame: encoding cannot fail, and if it
    // did the subscription would be missing, which the bench's delivery count shows.
    let _ = encode(
        &Frame::new(Fields::Sub { sid: 1 }).with_topic(pattern),
        &mut sub,
    );
    feed(shard, &conn, &mut ReadBuffer::new(sub.len()), &sub);
    glommio::spawn_local(discard(Rc::clone(&conn))).detach();
    conn
}

/// The writer of a sink: takes each batch as a session's writer does, and drops it.
async fn discard(conn: Rc<Conn>) {
    while let Some(batch) = conn.outbox.next_batch().await {
        conn.outbox.written(batch);
    }
}

/// Hands `frames` (whole encoded frames) to the shard as if one read had brought them; `false`
/// when the connection was closed by them.
pub(crate) fn feed(
    shard: &Rc<Shard>,
    conn: &Rc<Conn>,
    buf: &mut ReadBuffer,
    frames: &[u8],
) -> bool {
    buf.append(frames);
    !matches!(session::process(shard, conn, buf, None), Next::Close)
}

/// Publishes `block` (whole PUB frames) `rounds` times from `conn`, pausing between rounds
/// exactly where a session's reader does: for backlogged consumers, for a congested mesh, and
/// for the rest of the shard (where a session would wait for its socket).
pub(crate) async fn publish(shard: &Rc<Shard>, conn: &Rc<Conn>, block: &[u8], rounds: u64) {
    let mut buf = ReadBuffer::new(block.len());
    for _ in 0..rounds {
        if !feed(shard, conn, &mut buf, block) {
            return;
        }
        shard.pause_reader().await;
        futures_lite::future::yield_now().await;
    }
}

/// How many other shards have a plain subscription matching `subject`, as this shard's
/// interest table has it now.
pub(crate) fn shards_interested(shard: &Shard, subject: &[u8]) -> usize {
    let mut route = shard.route.borrow_mut();
    shard
        .router
        .borrow_mut()
        .route_publish(subject, 0, true, &mut route);
    route.remote.len()
}
