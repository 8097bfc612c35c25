//! `Client`: the blocking Rust client over `std::net::TcpStream`, built on [`ClientSession`].
//!
//! The threads that move the bytes live in [`super::transport`]; this file is the API the
//! application calls.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use crate::container::{ContainerLimits, Value, compress};
use crate::error_code::ErrorCode;
use crate::flags::{Flags, RoomFlags};
use crate::frame::{Fields, RoomFields, Welcome};
use crate::headers::Headers;

use super::error::ClientError;
use super::message::Message;
use super::options::ClientOptions;
use super::room::{
    History, HistoryQuery, JoinOptions, Joined, Presence, Room, counts, payload_value,
};
use super::session::{ClientSession, LOCAL_TIMEOUT_GRACE, Phase};
use super::subscription::Subscription;
use super::transport::{Inner, Shared, SubSlot};

/// Publications a HISTORY with no limit may bring: the server's default page maximum.
const HISTORY_DEFAULT_PAGE: usize = 1_000;

/// A connection to a shardbus server. Cheap to clone; closed when the last clone (and every
/// [`Subscription`]) is dropped, or by [`Client::close`].
///
/// When the connection drops, the client reconnects with jittered backoff
/// ([`ClientOptions::reconnect`]), restores its subscriptions, and then sends what was published
/// while it was away (up to [`ClientOptions::reconnect_buffer`] bytes). Delivery is at most once:
/// bytes already handed to the dead socket are lost, and requests in flight fail with
/// [`ClientError::Disconnected`].
///
/// ```no_run
/// use std::time::Duration;
/// use shardbus_protocol::client::Client;
///
/// let client = Client::connect("127.0.0.1:7400")?;
/// let sub = client.subscribe("sensors.*.temp")?;
/// client.publish("sensors.kitchen.temp", b"21.5")?;
/// let msg = sub.recv_timeout(Duration::from_secs(1))?;
/// assert_eq!(msg.payload(), b"21.5");
/// # Ok::<(), shardbus_protocol::client::ClientError>(())
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
    _guard: Arc<CloseOnDrop>,
}

struct CloseOnDrop(Arc<Inner>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl Client {
    /// Connects with default options and waits for WELCOME.
    ///
    /// # Errors
    /// [`ClientError::Io`] when no address accepts, [`ClientError::Server`] when the server
    /// refuses the handshake, [`ClientError::Timeout`] when WELCOME does not come.
    pub fn connect(addr: impl ToSocketAddrs) -> Result<Client, ClientError> {
        Client::connect_with(addr, ClientOptions::default())
    }

    /// Connects with `options` and waits for WELCOME.
    ///
    /// # Errors
    /// As [`Client::connect`].
    pub fn connect_with(
        addr: impl ToSocketAddrs,
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
        let inner = Inner::start(addrs, options)?;
        let client = Client {
            _guard: Arc::new(CloseOnDrop(Arc::clone(&inner))),
            inner,
        };
        client.wait_ready()?;
        Ok(client)
    }

    fn wait_ready(&self) -> Result<(), ClientError> {
        let deadline = Instant::now() + self.inner.options.handshake_timeout;
        let mut shared = self.inner.lock();
        loop {
            if let Some(err) = shared.handshake_error.take() {
                drop(shared);
                self.inner.close();
                return Err(err);
            }
            if shared.closed {
                return Err(ClientError::Closed);
            }
            if shared.session.phase() == Phase::Ready {
                return Ok(());
            }
            shared = self.inner.wait_until(shared, deadline).ok_or_else(|| {
                self.inner.close();
                ClientError::Timeout
            })?;
        }
    }

    /// What the server said in WELCOME on the current connection.
    pub fn server_info(&self) -> Option<Welcome> {
        self.inner.lock().session.welcome().copied()
    }

    /// Whether the handshake on the current connection has completed.
    pub fn is_connected(&self) -> bool {
        self.inner.lock().session.phase() == Phase::Ready
    }

    /// How many times the client has reconnected.
    pub fn reconnects(&self) -> u64 {
        self.inner.lock().reconnects
    }

    /// The terminal closing ERR that ended this client (`KICKED`, `AUTH_FAILED`, ...): after it
    /// the client does not reconnect (PROTOCOL.md §5).
    pub fn terminal_error(&self) -> Option<(ErrorCode, String)> {
        self.inner.lock().terminal.clone()
    }

    /// The last ERR the server sent that no call was waiting for (e.g. a refused PUB).
    pub fn take_last_error(&self) -> Option<(ErrorCode, String)> {
        self.inner.lock().last_error.take()
    }

    /// Publishes `payload` on `topic`.
    ///
    /// # Errors
    /// [`ClientError::Protocol`] for an invalid topic or an oversized payload,
    /// [`ClientError::BufferFull`] while disconnected with a full buffer, [`ClientError::Closed`].
    pub fn publish(&self, topic: &str, payload: &[u8]) -> Result<(), ClientError> {
        self.publish_with(topic, Headers::EMPTY, Flags::empty(), payload)
    }

    /// Publishes with headers and flags.
    ///
    /// # Errors
    /// As [`Client::publish`].
    pub fn publish_with(
        &self,
        topic: &str,
        headers: Headers<'_>,
        flags: Flags,
        payload: &[u8],
    ) -> Result<(), ClientError> {
        self.queue(|session| session.publish(topic, headers, flags, payload))
            .map(|_| ())
    }

    /// Runs `op` on the session once there is room to queue, then wakes the flusher.
    fn queue<T>(
        &self,
        op: impl FnOnce(&mut ClientSession) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let mut shared = self.inner.writable()?;
        let out = op(&mut shared.session)?;
        self.inner.outbox_ready.notify_one();
        Ok(out)
    }

    /// Publishes a container value, LZ4-compressed when it is large enough to gain.
    ///
    /// # Errors
    /// As [`Client::publish`], and [`ClientError::Container`] when the value cannot be encoded.
    pub fn publish_value(&self, topic: &str, value: &Value) -> Result<(), ClientError> {
        let (flags, payload) = self.encode_value(value)?;
        self.publish_with(topic, Headers::EMPTY, flags, &payload)
    }

    fn encode_value(&self, value: &Value) -> Result<(Flags, Vec<u8>), ClientError> {
        let binary = value.to_binary()?;
        if let Some(threshold) = self.inner.options.compress_threshold {
            let mut packed = Vec::new();
            if compress::compress_if_smaller(&binary, threshold, &mut packed) {
                return Ok((Flags::CONTAINER.with(Flags::LZ4), packed));
            }
        }
        Ok((Flags::CONTAINER, binary))
    }

    /// Subscribes to a pattern (`*` and `>` wildcards allowed).
    ///
    /// # Errors
    /// [`ClientError::Protocol`] for an invalid pattern, [`ClientError::Closed`].
    pub fn subscribe(&self, pattern: &str) -> Result<Subscription, ClientError> {
        self.subscribe_inner(pattern, None)
    }

    /// Subscribes as a member of queue group `group`: each message reaches one member.
    ///
    /// ```no_run
    /// # use shardbus_protocol::client::Client;
    /// let client = Client::connect("127.0.0.1:7400")?;
    /// for job in client.queue_subscribe("jobs.resize", "resizers")? {
    ///     println!("resizing {:?}", job.payload());
    /// }
    /// # Ok::<(), shardbus_protocol::client::ClientError>(())
    /// ```
    ///
    /// # Errors
    /// As [`Client::subscribe`], and for an invalid group name.
    pub fn queue_subscribe(&self, pattern: &str, group: &str) -> Result<Subscription, ClientError> {
        self.subscribe_inner(pattern, Some(group))
    }

    fn subscribe_inner(
        &self,
        pattern: &str,
        group: Option<&str>,
    ) -> Result<Subscription, ClientError> {
        let (tx, rx) = mpsc::sync_channel(self.inner.options.subscription_capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        let mut shared = self.inner.open()?;
        let sid = shared.session.subscribe(pattern, group)?;
        let slot = SubSlot {
            tx,
            dropped: Arc::clone(&dropped),
        };
        shared.subs.insert(sid, slot);
        self.inner.outbox_ready.notify_one();
        drop(shared);
        Ok(Subscription::new(self.clone(), sid, rx, dropped))
    }

    pub(crate) fn unsubscribe(&self, sid: u64, after: Option<u64>) -> Result<(), ClientError> {
        let mut shared = self.inner.open()?;
        shared.session.unsubscribe(sid, after)?;
        if after.is_none_or(|n| n == 0) {
            shared.subs.remove(&sid);
            shared.member_events.remove(&sid);
        }
        self.inner.outbox_ready.notify_one();
        Ok(())
    }

    /// Sends a request and waits for the response. The server answers `NO_RESPONDERS` at once
    /// when nobody listens, and `TIMEOUT` when no response comes within `timeout`.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// use shardbus_protocol::ErrorCode;
    /// use shardbus_protocol::client::Client;
    ///
    /// let client = Client::connect("127.0.0.1:7400")?;
    /// match client.request("svc.time", b"", Duration::from_millis(500)) {
    ///     Ok(reply) => println!("{}", String::from_utf8_lossy(reply.payload())),
    ///     Err(e) if e.code() == Some(ErrorCode::NO_RESPONDERS) => println!("nobody serves svc.time"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok::<(), shardbus_protocol::client::ClientError>(())
    /// ```
    ///
    /// # Errors
    /// [`ClientError::Server`] with the server's code, [`ClientError::Timeout`] when even the
    /// server's answer is missing, [`ClientError::Disconnected`] when the connection dropped.
    pub fn request(
        &self,
        topic: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Message, ClientError> {
        self.request_with(topic, Headers::EMPTY, Flags::empty(), payload, timeout)
    }

    /// Sends a request with headers and flags and waits for the response.
    ///
    /// # Errors
    /// As [`Client::request`].
    pub fn request_with(
        &self,
        topic: &str,
        headers: Headers<'_>,
        flags: Flags,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Message, ClientError> {
        let (tx, rx) = mpsc::sync_channel(1);
        let request_id = {
            let mut shared = self.inner.writable()?;
            let id =
                shared
                    .session
                    .request(topic, headers, flags, payload, timeout, Instant::now())?;
            shared.requests.insert(id, tx);
            self.inner.outbox_ready.notify_one();
            id
        };
        match rx.recv_timeout(timeout + LOCAL_TIMEOUT_GRACE) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => {
                let mut shared = self.inner.lock();
                shared.session.cancel_request(request_id);
                shared.requests.remove(&request_id);
                Err(ClientError::Timeout)
            }
            Err(RecvTimeoutError::Disconnected) => Err(ClientError::Closed),
        }
    }

    /// Answers a request message.
    ///
    /// ```no_run
    /// # use shardbus_protocol::client::Client;
    /// let client = Client::connect("127.0.0.1:7400")?;
    /// for request in client.queue_subscribe("svc.echo", "echo")? {
    ///     client.respond(&request, request.payload())?;
    /// }
    /// # Ok::<(), shardbus_protocol::client::ClientError>(())
    /// ```
    ///
    /// # Errors
    /// [`ClientError::Protocol`] for an oversized payload, [`ClientError::Closed`].
    pub fn respond(&self, request: &Message, payload: &[u8]) -> Result<(), ClientError> {
        self.respond_with(request, Headers::EMPTY, Flags::empty(), payload)
    }

    /// Answers a request message with headers and flags.
    ///
    /// # Errors
    /// As [`Client::respond`].
    pub fn respond_with(
        &self,
        request: &Message,
        headers: Headers<'_>,
        flags: Flags,
        payload: &[u8],
    ) -> Result<(), ClientError> {
        let reply = request.reply_token();
        self.queue(|session| session.respond(reply, headers, flags, payload))
            .map(|_| ())
    }

    /// The server's counters (the STATUS op): a map with `server` (id, version, uptime, shard
    /// count), `totals` and `shards` (one map of counters per shard, with errors by code).
    ///
    /// # Errors
    /// [`ClientError::Timeout`] after the handshake timeout, [`ClientError::Closed`],
    /// [`ClientError::Container`] if the answer does not decode.
    pub fn status(&self) -> Result<Value, ClientError> {
        let deadline = Instant::now() + self.inner.options.handshake_timeout;
        let mut shared = self.wait_connected(deadline)?;
        let op_id = shared.session.status()?;
        self.inner.outbox_ready.notify_one();
        loop {
            if let Some(payload) = shared.statuses.remove(&op_id) {
                let view = crate::container::view::decode(&payload, &ContainerLimits::default())?;
                return Ok(view.to_owned_value());
            }
            shared = self.wait_answer(shared, deadline)?;
        }
    }

    /// Pushes a backend made to this connection's user (`POST /api/v1/publish` with `user`):
    /// MSGs with sid 0, whatever their subject. Only one receiver at a time gets them.
    ///
    /// # Errors
    /// [`ClientError::Closed`].
    pub fn pushes(&self) -> Result<Subscription, ClientError> {
        let (tx, rx) = mpsc::sync_channel(self.inner.options.subscription_capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        let mut shared = self.inner.open()?;
        let slot = SubSlot {
            tx,
            dropped: Arc::clone(&dropped),
        };
        shared.subs.insert(0, slot);
        drop(shared);
        Ok(Subscription::new(self.clone(), 0, rx, dropped))
    }

    /// Waits up to `timeout` for the next room a backend joined this connection to
    /// (`POST /api/v1/rooms/{room}/members`). Server-side joins that arrive before the first
    /// call are not kept; a backend's join ends with the connection.
    ///
    /// # Errors
    /// [`ClientError::Timeout`], [`ClientError::Closed`].
    pub fn server_room(&self, timeout: Duration) -> Result<Room, ClientError> {
        let deadline = Instant::now() + timeout;
        let mut shared = self.inner.open()?;
        loop {
            let waiting = shared
                .server_rooms
                .get_or_insert_with(std::collections::VecDeque::new);
            if let Some(join) = waiting.pop_front() {
                let fields = join.fields;
                return Ok(Room {
                    name: join.name,
                    joined: Joined {
                        positioned: fields.flags.contains(RoomFlags::POSITIONED),
                        epoch: fields.epoch,
                        offset: fields.offset,
                        count: fields.count,
                        recovered: false,
                        clients: join.counts.0,
                        users: join.counts.1,
                    },
                    messages: Subscription::new(
                        self.clone(),
                        fields.sid,
                        join.messages,
                        join.dropped,
                    ),
                    events: join.events,
                });
            }
            shared = self
                .inner
                .wait_until(shared, deadline)
                .ok_or(ClientError::Timeout)?;
            if shared.closed {
                return Err(ClientError::Closed);
            }
        }
    }

    /// Joins room `room` (PROTOCOL.md §3.11) and waits for the server's answer.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// use shardbus_protocol::client::Client;
    ///
    /// let client = Client::connect("127.0.0.1:7400")?;
    /// let room = client.join("chat.lobby")?;
    /// println!("{} here", room.joined().clients);
    /// let said = room.recv_timeout(Duration::from_secs(5))?;
    /// # Ok::<(), shardbus_protocol::client::ClientError>(())
    /// ```
    ///
    /// # Errors
    /// [`ClientError::Server`] with `NOT_A_ROOM`, `ROOM_FULL`, `TOO_MANY_ROOMS`,
    /// `PERMISSION_DENIED` ...; [`ClientError::Timeout`], [`ClientError::Closed`].
    pub fn join(&self, room: &str) -> Result<Room, ClientError> {
        self.join_with(room, JoinOptions::default())
    }

    /// Joins with member info, or recovering from a position.
    ///
    /// # Errors
    /// As [`Client::join`], and [`ClientError::Container`] for info that does not encode.
    pub fn join_with(&self, room: &str, options: JoinOptions) -> Result<Room, ClientError> {
        let info = match &options.info {
            Some(value) => value.to_binary()?,
            None => Vec::new(),
        };
        let deadline = Instant::now() + self.inner.options.handshake_timeout;
        let (tx, rx) = mpsc::sync_channel(self.inner.options.subscription_capacity);
        let (events_tx, events) = mpsc::sync_channel(self.inner.options.subscription_capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        let mut shared = self.wait_connected(deadline)?;
        let (sid, op_id) = shared.session.join(room, &info, options.from)?;
        shared.awaited.insert(op_id);
        shared.subs.insert(
            sid,
            SubSlot {
                tx,
                dropped: Arc::clone(&dropped),
            },
        );
        shared.member_events.insert(sid, events_tx);
        self.inner.outbox_ready.notify_one();
        let (answer, payload) = self.answer(shared, op_id, deadline)?;
        let Fields::Join(fields) = answer else {
            return Err(ClientError::Disconnected);
        };
        let (clients, users) = counts(&payload_value(&payload));
        Ok(Room {
            name: room.to_owned(),
            joined: Joined {
                positioned: fields.flags.contains(RoomFlags::POSITIONED),
                epoch: fields.epoch,
                offset: fields.offset,
                count: fields.count,
                recovered: fields.flags.contains(RoomFlags::RECOVERED),
                clients,
                users,
            },
            messages: Subscription::new(self.clone(), sid, rx, dropped),
            events,
        })
    }

    /// A page of room `room`'s members: up to `limit` (0: the server's default) after `cursor`
    /// (0: the first page).
    ///
    /// # Errors
    /// [`ClientError::Server`] (`NOT_A_ROOM`, `NOT_AVAILABLE`, `LIMIT_TOO_LARGE`, ...),
    /// [`ClientError::Timeout`], [`ClientError::Closed`].
    pub fn presence(&self, room: &str, cursor: u64, limit: u32) -> Result<Presence, ClientError> {
        let fields = Fields::Presence(RoomFields {
            offset: cursor,
            count: limit,
            ..RoomFields::default()
        });
        let deadline = Instant::now() + self.inner.options.handshake_timeout;
        let mut shared = self.wait_connected(deadline)?;
        let op_id = shared.session.room_query(fields, room)?;
        shared.awaited.insert(op_id);
        self.inner.outbox_ready.notify_one();
        let (answer, payload) = self.answer(shared, op_id, deadline)?;
        let next = match answer {
            Fields::Presence(page) => page.offset,
            _ => 0,
        };
        let value =
            crate::container::view::decode(&payload, &ContainerLimits::default())?.to_owned_value();
        let (clients, users) = counts(&value);
        let members = match value.get("members") {
            Some(Value::List(members)) => members.clone(),
            _ => Vec::new(),
        };
        Ok(Presence {
            clients,
            users,
            members,
            cursor: (next != 0).then_some(next),
        })
    }

    /// What room `room` kept, as `query` asks.
    ///
    /// # Errors
    /// As [`Client::presence`].
    pub fn history(&self, room: &str, query: HistoryQuery) -> Result<History, ClientError> {
        let deadline = Instant::now() + self.inner.options.handshake_timeout;
        let mut shared = self.wait_connected(deadline)?;
        let label = shared.session.label();
        let (epoch, offset) = query.after.unwrap_or_default();
        let mut flags = RoomFlags::default();
        if query.after.is_some() {
            flags = flags.with(RoomFlags::FROM_POSITION);
        }
        if query.reverse {
            flags = flags.with(RoomFlags::REVERSE);
        }
        let fields = Fields::History(RoomFields {
            sid: label,
            epoch,
            offset,
            count: query.limit,
            flags,
        });
        // The answer's messages arrive on the label before the HISTORY that ends them; the
        // channel holds a whole answer.
        let capacity = match query.limit {
            0 => HISTORY_DEFAULT_PAGE,
            n => n as usize,
        };
        let (tx, rx) = mpsc::sync_channel(capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        shared.subs.insert(label, SubSlot { tx, dropped });
        let op_id = shared.session.room_query(fields, room)?;
        shared.awaited.insert(op_id);
        self.inner.outbox_ready.notify_one();
        let answer = self.answer(shared, op_id, deadline);
        {
            let mut shared = self.inner.lock();
            shared.subs.remove(&label);
            shared.session.end_label(label);
        }
        let (answer, _) = answer?;
        let Fields::History(end) = answer else {
            return Err(ClientError::Disconnected);
        };
        Ok(History {
            epoch: end.epoch,
            offset: end.offset,
            publications: rx.try_iter().collect(),
        })
    }

    /// Waits for the answer (or the ERR) to op `op_id` (a room or service op).
    pub(super) fn answer<'a>(
        &'a self,
        mut shared: MutexGuard<'a, Shared>,
        op_id: u32,
        deadline: Instant,
    ) -> Result<(Fields, Vec<u8>), ClientError> {
        loop {
            if let Some(answer) = shared.answers.remove(&op_id) {
                shared.awaited.remove(&op_id);
                return answer;
            }
            match self.wait_answer(shared, deadline) {
                Ok(next) => shared = next,
                Err(e) => {
                    let mut shared = self.inner.lock();
                    shared.awaited.remove(&op_id);
                    shared.answers.remove(&op_id);
                    return Err(e);
                }
            }
        }
    }

    /// Waits once for the reader's next change, failing when the deadline passed or the
    /// connection is gone (an answer cannot come any more).
    fn wait_answer<'a>(
        &'a self,
        shared: MutexGuard<'a, Shared>,
        deadline: Instant,
    ) -> Result<MutexGuard<'a, Shared>, ClientError> {
        let shared = self
            .inner
            .wait_until(shared, deadline)
            .ok_or(ClientError::Timeout)?;
        if shared.closed {
            return Err(ClientError::Closed);
        }
        if shared.session.phase() == Phase::Disconnected {
            return Err(ClientError::Disconnected);
        }
        Ok(shared)
    }

    /// Waits for a live connection: a frame queued while disconnected would be dropped.
    pub(super) fn wait_connected(
        &self,
        deadline: Instant,
    ) -> Result<MutexGuard<'_, Shared>, ClientError> {
        let mut shared = self.inner.open()?;
        while shared.session.phase() != Phase::Ready {
            shared = self
                .inner
                .wait_until(shared, deadline)
                .ok_or(ClientError::Timeout)?;
            if shared.closed {
                return Err(ClientError::Closed);
            }
        }
        Ok(shared)
    }

    /// Measures the round trip to the server with PING/PONG. Everything published before it has
    /// been processed by the server when it returns.
    ///
    /// # Errors
    /// [`ClientError::Timeout`] after the handshake timeout, [`ClientError::Closed`].
    pub fn rtt(&self) -> Result<Duration, ClientError> {
        let deadline = Instant::now() + self.inner.options.handshake_timeout;
        let mut shared = self.wait_connected(deadline)?;
        // PONGs answer PINGs in order: ours is answered after those already outstanding.
        let target = shared.pongs + 1 + shared.session.pings_outstanding() as u64;
        shared.session.ping(Instant::now())?;
        self.inner.outbox_ready.notify_one();
        while shared.pongs < target {
            shared = self.wait_answer(shared, deadline)?;
        }
        shared.last_rtt.ok_or(ClientError::Disconnected)
    }

    /// Waits until the server has processed everything sent so far (a PING/PONG round trip).
    ///
    /// # Errors
    /// As [`Client::rtt`].
    pub fn flush(&self) -> Result<(), ClientError> {
        self.rtt().map(|_| ())
    }

    /// Writes what is queued, then closes the connection and ends every subscription.
    pub fn close(&self) {
        self.inner.close();
    }
}
