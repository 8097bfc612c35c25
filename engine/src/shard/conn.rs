//! `Conn`: what a shard knows of one client connection once HELLO is accepted — its options,
//! subscriptions, in-flight requests, keepalive state — and the encoders that queue frames to
//! it. Every send goes through [`Conn::send`], which turns a full outbox into the slow-consumer
//! close; closing codes go through [`Conn::fail`].

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

use shardbus_protocol::encode::frame_len;
use shardbus_protocol::{ErrorCode, Fields, Flags, Frame, Head, HelloOptions, encode_head};

use super::outbox::Outbox;
use super::rate::{ConnBuckets, Limited};
use super::sid_map::SidMap;
use super::stream::SharedStream;
use crate::auth::{Identity, Permissions};
use crate::metrics::{Metric, ShardMetrics};
use crate::routing::{ShardId, Subscriber};

/// How long a connection closed for cause may take to flush its last frames before the socket
/// is shut down under it (a slow consumer may never read them).
pub(crate) const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// One subscription's state, shared by the connection's table and the router's trie (through
/// [`LocalSub`]), so a delivery reaches it, and its connection, without a lookup.
#[derive(Debug)]
pub(crate) struct SubState {
    pub(crate) sid: u64,
    conn_id: u64,
    conn: Weak<Conn>,
    pub(crate) pattern: Box<[u8]>,
    pub(crate) queue: Option<Box<str>>,
    /// Deliveries so far (MSG `seq` of the last one).
    seq: Cell<u64>,
    /// Deliveries left before auto-unsubscribe; 0 = no limit.
    remaining: Cell<u64>,
    /// Cleared when the subscription ends: a route computed before that delivers nothing.
    active: Cell<bool>,
}

/// A handle on a subscription, as the router stores it. Equal only to itself.
#[derive(Debug, Clone)]
pub(crate) struct LocalSub(pub(crate) Rc<SubState>);

impl PartialEq for LocalSub {
    fn eq(&self, other: &LocalSub) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl Subscriber for LocalSub {
    fn conn_id(&self) -> u64 {
        self.0.conn_id
    }
}

impl LocalSub {
    /// A new, active subscription `sid` of `conn`.
    pub(crate) fn new(conn: &Rc<Conn>, sid: u64, pattern: &[u8], queue: Option<&str>) -> LocalSub {
        LocalSub(Rc::new(SubState {
            sid,
            conn_id: conn.id,
            conn: Rc::downgrade(conn),
            pattern: pattern.into(),
            queue: queue.map(Into::into),
            seq: Cell::new(0),
            remaining: Cell::new(0),
            active: Cell::new(true),
        }))
    }

    /// The connection, while it lives.
    pub(crate) fn conn(&self) -> Option<Rc<Conn>> {
        self.0.conn.upgrade()
    }

    /// Ends the subscription after `n` more deliveries.
    pub(crate) fn expire_after(&self, n: u64) {
        self.0.remaining.set(n);
    }

    /// Marks the subscription ended.
    pub(crate) fn end(&self) {
        self.0.active.set(false);
    }

    /// Holds deliveries back (a room member's subscription until its home answers the join,
    /// so nothing reaches it before the publications it recovers).
    pub(crate) fn hold(&self) {
        self.0.active.set(false);
    }

    /// Lets deliveries through again after `hold`.
    pub(crate) fn resume(&self) {
        self.0.active.set(true);
    }

    /// Whether deliveries reach it.
    pub(crate) fn is_active(&self) -> bool {
        self.0.active.get()
    }
}

/// A frame to queue: the head's parts and the payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outgoing<'a> {
    pub(crate) fields: Fields,
    pub(crate) flags: u8,
    pub(crate) op_id: u32,
    pub(crate) topic: &'a [u8],
    pub(crate) headers: &'a [u8],
    pub(crate) payload: &'a [u8],
}

impl<'a> Outgoing<'a> {
    /// A frame with only fixed fields (and an op id).
    pub(crate) fn bare(fields: Fields, op_id: u32) -> Outgoing<'a> {
        Outgoing {
            fields,
            flags: 0,
            op_id,
            topic: &[],
            headers: &[],
            payload: &[],
        }
    }

    fn len(&self) -> usize {
        frame_len(
            &self.fields,
            self.topic.len(),
            self.headers.len(),
            self.payload.len(),
        )
    }

    fn write(&self, out: &mut Vec<u8>) {
        let head = Head {
            fields: self.fields,
            flags: Flags(self.flags),
            op_id: self.op_id,
            topic: self.topic,
            headers: self.headers,
        };
        // The sections come from decoded frames or the mesh, already within the wire limits,
        // so encoding cannot fail; if it ever did, the frame is skipped rather than sent torn.
        let mark = out.len();
        if encode_head(&head, self.payload.len(), out).is_ok() {
            out.extend_from_slice(self.payload);
        } else {
            out.truncate(mark);
        }
    }
}

/// A client connection owned by this shard.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) id: u64,
    pub(crate) outbox: Outbox,
    /// The socket; `None` for a connection inside the process (the engine bench).
    stream: Option<SharedStream>,
    pub(crate) options: Cell<HelloOptions>,
    pub(crate) name: RefCell<String>,
    pub(crate) subs: RefCell<SidMap<LocalSub>>,
    pub(crate) inflight: Cell<u32>,
    /// Room ops (JOIN, PRESENCE, HISTORY) sent to a room's home and not answered yet.
    pub(crate) room_ops: Cell<u32>,
    pub(crate) pings_unanswered: Cell<u32>,
    /// Input arrived since the last keepalive tick: the client is alive even when its PONGs
    /// sit behind its own flood of frames.
    pub(crate) heard: Cell<bool>,
    /// Subscriptions changed since the last PING: the next PONG waits for the other shards.
    pub(crate) interest_dirty: Cell<bool>,
    /// PINGs waiting for their barrier's acknowledgements.
    pub(crate) barriers_pending: Cell<u32>,
    /// Listed in the shard's backlog (publishers are waiting for this outbox to drain).
    pub(crate) backlogged: Cell<bool>,
    /// The peer's address (`None` inside the process).
    pub(crate) remote: Option<SocketAddr>,
    /// The code of the ERR that closed the connection (the WebSocket edge picks its close code
    /// from it).
    pub(crate) closed_with: Cell<Option<ErrorCode>>,
    /// This connection's traffic, as `/api/v1/connections` shows it.
    pub(crate) traffic: Traffic,
    /// Who HELLO said it is; `None` for in-process connections, which may do anything.
    identity: RefCell<Option<Arc<Identity>>>,
    /// What the identity allows without a check per message (set with it).
    unrestricted: Cell<Unrestricted>,
    /// A password check made before HELLO was handled (see `session::read_hello`).
    pub(crate) preauth: RefCell<Option<Result<Arc<Identity>, ErrorCode>>>,
    /// Its own rate-limit buckets, when per-connection limits are set. Boxed: most
    /// connections have none, and every connection would pay for the room.
    pub(crate) rate: RefCell<Option<Box<ConnBuckets>>>,
    /// The shard the last responses came from and how many in a row (`moving.rs`).
    pub(crate) answered_from: Cell<(ShardId, u32)>,
    /// The shard this connection should move to, once nothing holds it here (`moving.rs`).
    pub(crate) move_to: Cell<Option<ShardId>>,
    /// It moved to another shard: its writer leaves the socket open.
    pub(crate) moved: Cell<bool>,
    metrics: Arc<ShardMetrics>,
}

/// The actions an identity allows on every subject, so the publish path checks a flag instead
/// of matching patterns per message (the common case: anonymous admin, `>` allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Unrestricted {
    publish: bool,
    request: bool,
    respond: bool,
    /// Nothing denied to its subscriptions.
    receive: bool,
}

impl Unrestricted {
    const ALL: Unrestricted = Unrestricted {
        publish: true,
        request: true,
        respond: true,
        receive: true,
    };

    fn of(permissions: &Permissions) -> Unrestricted {
        Unrestricted {
            publish: permissions.publish.allows_everything(),
            request: permissions.request.allows_everything(),
            respond: permissions.responds_anywhere(),
            receive: permissions.subscribe.deny.is_empty(),
        }
    }
}

/// One connection's message and payload-byte counts, both directions.
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    pub(crate) msgs_in: Cell<u64>,
    pub(crate) bytes_in: Cell<u64>,
    pub(crate) msgs_out: Cell<u64>,
    pub(crate) bytes_out: Cell<u64>,
}

impl Traffic {
    pub(crate) fn count_in(&self, payload: usize) {
        self.msgs_in.set(self.msgs_in.get() + 1);
        self.bytes_in.set(self.bytes_in.get() + payload as u64);
    }

    fn count_out(&self, payload: usize) {
        self.msgs_out.set(self.msgs_out.get() + 1);
        self.bytes_out.set(self.bytes_out.get() + payload as u64);
    }
}

impl Conn {
    pub(crate) fn new(
        id: u64,
        stream: Option<SharedStream>,
        remote: Option<SocketAddr>,
        max_pending: usize,
        write_tick: Option<Rc<super::write_tick::WriteTick>>,
        metrics: Arc<ShardMetrics>,
    ) -> Conn {
        Conn {
            id,
            outbox: Outbox::new(max_pending, write_tick),
            stream,
            options: Cell::new(HelloOptions(0)),
            name: RefCell::new(String::new()),
            subs: RefCell::new(SidMap::default()),
            inflight: Cell::new(0),
            room_ops: Cell::new(0),
            pings_unanswered: Cell::new(0),
            heard: Cell::new(false),
            interest_dirty: Cell::new(false),
            barriers_pending: Cell::new(0),
            backlogged: Cell::new(false),
            remote,
            closed_with: Cell::new(None),
            traffic: Traffic::default(),
            identity: RefCell::new(None),
            unrestricted: Cell::new(Unrestricted::ALL),
            rate: RefCell::new(None),
            preauth: RefCell::new(None),
            answered_from: Cell::new((0, 0)),
            move_to: Cell::new(None),
            moved: Cell::new(false),
            metrics,
        }
    }

    pub(crate) fn echo(&self) -> bool {
        self.options.get().contains(HelloOptions::ECHO)
    }

    pub(crate) fn verbose(&self) -> bool {
        self.options.get().contains(HelloOptions::VERBOSE)
    }

    pub(crate) fn accepts_headers(&self) -> bool {
        self.options.get().contains(HelloOptions::HEADERS)
    }

    /// Queues a frame; a full outbox makes this connection a slow consumer and closes it.
    /// Returns whether the frame was queued.
    #[inline]
    pub(crate) fn send(&self, frame: &Outgoing<'_>) -> bool {
        if self
            .outbox
            .push(frame.len(), |out| frame.write(out))
            .is_ok()
        {
            return true;
        }
        self.slow_consumer();
        false
    }

    /// The outbox is full: counts a slow consumer and closes the connection.
    #[cold]
    fn slow_consumer(&self) {
        self.metrics.add(Metric::SlowConsumers, 1);
        self.fail(
            ErrorCode::SLOW_CONSUMER,
            0,
            0,
            "outbound buffer full (max_pending)",
        );
    }

    /// The socket's descriptor, over plaintext TCP only.
    pub(crate) fn plain_fd(&self) -> Option<std::os::fd::RawFd> {
        self.stream.as_ref()?.plain_fd()
    }

    /// Sets who the connection is and what it may do.
    pub(crate) fn set_identity(&self, identity: Arc<Identity>) {
        self.unrestricted
            .set(Unrestricted::of(&identity.permissions));
        *self.identity.borrow_mut() = Some(identity);
    }

    /// The identity's name (`""` before HELLO and in-process).
    pub(crate) fn identity_name(&self) -> std::cell::Ref<'_, str> {
        std::cell::Ref::map(self.identity.borrow(), |identity| {
            identity.as_ref().map_or("", |i| &*i.name)
        })
    }

    /// The identity, once HELLO was accepted.
    pub(crate) fn identity(&self) -> Option<Arc<Identity>> {
        self.identity.borrow().clone()
    }

    /// The identity's name, shared; `None` before HELLO and in-process.
    pub(crate) fn identity_key(&self) -> Option<Arc<str>> {
        self.identity.borrow().as_ref().map(|i| Arc::clone(&i.name))
    }

    /// Whether this connection may publish to the frame's topic.
    #[inline]
    pub(crate) fn may_publish(&self, frame: &Frame<'_>) -> bool {
        self.unrestricted.get().publish || self.may(|p| p.publish.allows_subject(frame.topic_str()))
    }

    /// Whether this connection may send a request to the frame's topic.
    #[inline]
    pub(crate) fn may_request(&self, frame: &Frame<'_>) -> bool {
        self.unrestricted.get().request || self.may(|p| p.request.allows_subject(frame.topic_str()))
    }

    /// Whether this connection may answer a request made on `subject`.
    pub(crate) fn may_respond(&self, subject: &[u8]) -> bool {
        self.unrestricted.get().respond
            || self.may(|p| p.may_respond(std::str::from_utf8(subject).unwrap_or("")))
    }

    /// Whether `check` allows it under this connection's permissions.
    pub(crate) fn may(&self, check: impl FnOnce(&Permissions) -> bool) -> bool {
        self.identity
            .borrow()
            .as_ref()
            .is_none_or(|identity| check(&identity.permissions))
    }

    /// Whether `subject` is denied to this connection's subscriptions (a wildcard subscription
    /// that overlaps a denied pattern never receives what it denies).
    #[inline]
    fn receives_denied(&self, subject: &[u8]) -> bool {
        !self.unrestricted.get().receive && self.subject_denied(subject)
    }

    fn subject_denied(&self, subject: &[u8]) -> bool {
        self.identity.borrow().as_ref().is_some_and(|identity| {
            let deny = &identity.permissions.subscribe;
            !deny.deny.is_empty()
                && std::str::from_utf8(subject).is_ok_and(|s| deny.denies_subject(s))
        })
    }

    /// Counts a delivery (MSG or RESP) of `payload` bytes: the shard's counters and this
    /// connection's.
    pub(crate) fn count_out(&self, payload: usize) {
        self.metrics.add(Metric::MsgsOut, 1);
        self.metrics.add(Metric::BytesOut, payload as u64);
        self.traffic.count_out(payload);
    }

    /// Queues OK for `op_id` if the client asked for VERBOSE.
    pub(crate) fn ack(&self, op_id: u32) {
        if self.verbose() {
            self.send(&Outgoing::bare(Fields::Ok, op_id));
        }
    }

    /// Answers ERR `code` with a retry-after (`SERVICE_BUSY`).
    pub(crate) fn error_retry(
        &self,
        code: ErrorCode,
        op_id: u32,
        ref_id: u64,
        retry_after_ms: u32,
        message: &str,
    ) {
        self.metrics.error(code);
        self.send(&retry_frame(code, op_id, ref_id, retry_after_ms, message));
    }

    /// Answers a message over a rate limit: `RATE_LIMITED` with the milliseconds until it would
    /// fit, then closes when the policy says so.
    pub(crate) fn rate_limited(&self, op_id: u32, ref_id: u64, limited: Limited) {
        let retry_after_ms =
            u32::try_from(limited.retry_after.as_millis().saturating_add(1)).unwrap_or(u32::MAX);
        let frame = retry_frame(
            ErrorCode::RATE_LIMITED,
            op_id,
            ref_id,
            retry_after_ms,
            "rate limit exceeded",
        );
        if limited.disconnect {
            if !self.outbox.is_closed() {
                self.metrics.error(ErrorCode::RATE_LIMITED);
                self.close_with(ErrorCode::RATE_LIMITED, &frame);
            }
        } else {
            self.metrics.error(ErrorCode::RATE_LIMITED);
            self.send(&frame);
        }
    }

    /// Answers with ERR `code`; a closing code also closes the connection.
    pub(crate) fn error(&self, code: ErrorCode, op_id: u32, ref_id: u64, message: &str) {
        if code.closes_connection() {
            self.fail(code, op_id, ref_id, message);
            return;
        }
        self.metrics.error(code);
        self.send(&err_frame(code, op_id, ref_id, message));
    }

    /// Sends ERR `code` as the last frame and closes: queued deliveries are dropped so the ERR
    /// goes out next, and the socket is shut down after a short linger even if the client
    /// never reads.
    pub(crate) fn fail(&self, code: ErrorCode, op_id: u32, ref_id: u64, message: &str) {
        if self.outbox.is_closed() {
            return;
        }
        self.metrics.error(code);
        self.close_with(code, &err_frame(code, op_id, ref_id, message));
    }

    /// Queues `frame` (an ERR with `code`) as the last one and closes (see `fail`).
    fn close_with(&self, code: ErrorCode, frame: &Outgoing<'_>) {
        if self.outbox.is_closed() {
            return;
        }
        self.closed_with.set(Some(code));
        self.outbox.push_final(|out| {
            out.clear();
            frame.write(out);
        });
        let Some(stream) = self.stream.clone() else {
            return;
        };
        glommio::spawn_local(async move {
            glommio::timer::sleep(CLOSE_LINGER).await;
            stream.shutdown();
        })
        .detach();
    }

    /// Queues a MSG that is no subscription's delivery (a HISTORY answer's, a push to the
    /// user: `sid` is the label or 0) and counts it; returns whether it was queued. Kept apart
    /// from `deliver`, the publish path, so that stays inlined where it is called.
    pub(crate) fn push_message(
        &self,
        sid: u64,
        seq: u64,
        subject: &[u8],
        headers: &[u8],
        payload: &[u8],
        flags: u8,
    ) -> bool {
        let headers = if self.accepts_headers() { headers } else { &[] };
        let sent = self.send(&Outgoing {
            fields: Fields::Msg { sid, seq, reply: 0 },
            flags,
            op_id: 0,
            topic: subject,
            headers,
            payload,
        });
        if sent {
            self.count_out(payload.len());
        }
        sent
    }

    /// Queues a MSG for subscription `sub` of this connection; counts it; returns `false` when
    /// the subscription reached its auto-unsubscribe count with this delivery (the caller ends
    /// it). An ended subscription gets nothing.
    pub(crate) fn deliver(
        &self,
        sub: &SubState,
        subject: &[u8],
        headers: &[u8],
        payload: &[u8],
        flags: u8,
        reply: u64,
    ) -> bool {
        if !sub.active.get() || self.receives_denied(subject) {
            return true;
        }
        let seq = sub.seq.get() + 1;
        sub.seq.set(seq);
        let remaining = sub.remaining.get();
        sub.remaining.set(remaining.saturating_sub(1));
        let headers = if self.accepts_headers() { headers } else { &[] };
        let sent = self.send(&Outgoing {
            fields: Fields::Msg {
                sid: sub.sid,
                seq,
                reply,
            },
            flags,
            op_id: 0,
            topic: subject,
            headers,
            payload,
        });
        if sent {
            self.count_out(payload.len());
        }
        remaining != 1
    }
}

fn err_frame<'a>(code: ErrorCode, op_id: u32, ref_id: u64, message: &'a str) -> Outgoing<'a> {
    retry_frame(code, op_id, ref_id, 0, message)
}

/// ERR `code` telling the client when a retry may succeed (0: nothing to say).
fn retry_frame<'a>(
    code: ErrorCode,
    op_id: u32,
    ref_id: u64,
    retry_after_ms: u32,
    message: &'a str,
) -> Outgoing<'a> {
    Outgoing {
        payload: message.as_bytes(),
        ..Outgoing::bare(
            Fields::Err {
                code,
                retry_after_ms,
                ref_id,
            },
            op_id,
        )
    }
}
