//! The client's transport: the reader thread (decode, dispatch, reconnect with backoff), the
//! flusher thread (writes the session's outbox whenever it is non-empty), and the state they
//! share with [`super::Client`] behind one mutex. This is the client side, one connection: the
//! broker's publish path has no locks.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::decode::{Check, check, decode};
use crate::error_code::ErrorCode;
use crate::frame::{Fields, Frame, Welcome};
use crate::header::HEADER_LEN;

use super::backoff::Backoff;
use super::error::ClientError;
use super::message::Message;
use super::options::ClientOptions;
use super::session::{ClientSession, Event, Phase};
use super::tls::{ClientTls, TlsLink, TlsReader};

/// Everything a client's handles and threads share.
pub(crate) struct Inner {
    pub(super) shared: Mutex<Shared>,
    /// Signals the flusher that the outbox has bytes (or the client closed).
    pub(super) outbox_ready: Condvar,
    /// Signals waiters that the connection state, the outbox size or the pong count changed.
    pub(super) changed: Condvar,
    pub(super) options: ClientOptions,
    /// The TLS configuration, built once from `options.tls`.
    tls: Option<Arc<rustls::ClientConfig>>,
    pub(super) addrs: Vec<SocketAddr>,
    pub(super) threads: Mutex<Vec<JoinHandle<()>>>,
}

/// Where the reader delivers one subscription's messages, and its count of drops.
pub(crate) struct SubSlot {
    pub(super) tx: SyncSender<Message>,
    pub(super) dropped: Arc<AtomicU64>,
}

/// The state behind `Inner::shared`: the session, the live socket's writer, and who waits for what.
pub(super) struct Shared {
    pub(super) session: ClientSession,
    pub(super) writer: Option<Arc<Writer>>,
    pub(super) spare: Vec<u8>,
    pub(super) closed: bool,
    pub(super) handshake_error: Option<ClientError>,
    pub(super) subs: HashMap<u64, SubSlot>,
    pub(super) requests: HashMap<u64, SyncSender<Result<Message, ClientError>>>,
    pub(super) pongs: u64,
    /// STATUS answers not yet collected, by op id.
    pub(super) statuses: HashMap<u32, Vec<u8>>,
    /// Room answers (JOIN, PRESENCE, HISTORY) and ERRs for the ops in `awaited`, by op id.
    pub(super) answers: HashMap<u32, Result<(crate::Fields, Vec<u8>), ClientError>>,
    /// Op ids a caller waits on: only their answers are kept.
    pub(super) awaited: std::collections::HashSet<u32>,
    /// Rooms a backend joined this connection to, not yet taken by the application (`None`
    /// until it asks for them: `Client::server_room`).
    pub(super) server_rooms: Option<std::collections::VecDeque<super::room::ServerJoin>>,
    /// Where each membership's MEMBER events go, by sid.
    pub(super) member_events: HashMap<u64, std::sync::mpsc::SyncSender<super::room::MemberEvent>>,
    pub(super) last_rtt: Option<Duration>,
    pub(super) last_error: Option<(ErrorCode, String)>,
    /// The terminal closing ERR the server sent, if any: no reconnect follows it.
    pub(super) terminal: Option<(ErrorCode, String)>,
    pub(super) reconnects: u64,
    /// Whether the heartbeat thread runs (started by the first registration).
    pub(super) heartbeats_started: bool,
}

/// The writing side of a connection.
#[derive(Debug)]
pub(super) enum Writer {
    Plain(TcpStream),
    Tls(Arc<TlsLink>),
}

impl Writer {
    fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Writer::Plain(stream) => (&*stream).write_all(bytes),
            Writer::Tls(link) => link.write_all(bytes),
        }
    }

    fn shutdown(&self) {
        let _ = match self {
            Writer::Plain(stream) => stream.shutdown(Shutdown::Both),
            Writer::Tls(link) => {
                link.shutdown();
                Ok(())
            }
        };
    }
}

/// The reading side of a connection.
#[derive(Debug)]
pub(super) enum Reader {
    Plain(TcpStream),
    Tls(TlsReader),
}

impl Reader {
    fn tcp(&self) -> &TcpStream {
        match self {
            Reader::Plain(stream) => stream,
            Reader::Tls(reader) => reader.link().tcp(),
        }
    }
}

impl Read for Reader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self {
            Reader::Plain(stream) => stream.read(out),
            Reader::Tls(reader) => reader.read(out),
        }
    }
}

/// Dials and, with TLS configured, starts TLS: the two sides of a new connection.
fn open(
    addrs: &[SocketAddr],
    options: &ClientOptions,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<(Reader, Writer), ClientError> {
    let tcp = dial(addrs, options.connect_timeout)?;
    let Some(config) = tls else {
        let writer = tcp.try_clone()?;
        return Ok((Reader::Plain(tcp), Writer::Plain(writer)));
    };
    let host = options
        .tls
        .as_ref()
        .and_then(|t| t.server_name.clone())
        .or_else(|| addrs.first().map(|a| a.ip().to_string()))
        .unwrap_or_default();
    let link = Arc::new(TlsLink::new(tcp, Arc::clone(config), &host)?);
    Ok((
        Reader::Tls(TlsReader::new(Arc::clone(&link))),
        Writer::Tls(link),
    ))
}

fn dial(addrs: &[SocketAddr], timeout: Duration) -> Result<TcpStream, ClientError> {
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to");
    for addr in addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                // A server that stops reading must not hang `close` in the flusher's write.
                stream.set_write_timeout(Some(timeout.max(Duration::from_secs(1))))?;
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(ClientError::Io(last))
}

impl Inner {
    /// Dials, queues HELLO and starts the reader and flusher threads.
    pub(super) fn start(
        addrs: Vec<SocketAddr>,
        options: ClientOptions,
    ) -> Result<Arc<Inner>, ClientError> {
        let tls = options.tls.as_ref().map(ClientTls::config).transpose()?;
        let (stream, writer) = open(&addrs, &options, tls.as_ref())?;
        let mut session = ClientSession::new(options.session.clone());
        session.connected()?;
        let writer = Arc::new(writer);
        let inner = Arc::new(Inner {
            shared: Mutex::new(Shared {
                session,
                writer: Some(writer),
                spare: Vec::new(),
                closed: false,
                handshake_error: None,
                subs: HashMap::new(),
                requests: HashMap::new(),
                pongs: 0,
                statuses: HashMap::new(),
                answers: HashMap::new(),
                awaited: std::collections::HashSet::new(),
                member_events: HashMap::new(),
                server_rooms: None,
                last_rtt: None,
                last_error: None,
                terminal: None,
                reconnects: 0,
                heartbeats_started: false,
            }),
            outbox_ready: Condvar::new(),
            changed: Condvar::new(),
            options,
            tls,
            addrs,
            threads: Mutex::new(Vec::new()),
        });
        let reader = {
            let inner = Arc::clone(&inner);
            thread::Builder::new()
                .name("shardbus-reader".into())
                .spawn(move || inner.run_reader(stream))?
        };
        let flusher = {
            let inner = Arc::clone(&inner);
            thread::Builder::new()
                .name("shardbus-flusher".into())
                .spawn(move || inner.run_flusher())?
        };
        if let Ok(mut threads) = inner.threads.lock() {
            threads.extend([reader, flusher]);
        }
        Ok(inner)
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Shared> {
        // A poisoned lock means a client thread panicked mid-update; the state is still the
        // best we have, and refusing every later call would help nobody.
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn wait_until<'a>(
        &self,
        guard: MutexGuard<'a, Shared>,
        deadline: Instant,
    ) -> Option<MutexGuard<'a, Shared>> {
        let left = deadline.checked_duration_since(Instant::now())?;
        let (guard, _) = self
            .changed
            .wait_timeout(guard, left)
            .unwrap_or_else(|p| p.into_inner());
        Some(guard)
    }

    pub(super) fn open(&self) -> Result<MutexGuard<'_, Shared>, ClientError> {
        let shared = self.lock();
        if shared.closed {
            return Err(ClientError::Closed);
        }
        Ok(shared)
    }

    /// The lock, once there is room to queue more: waits while a live connection's outbox is
    /// over `max_outbox`; fails while disconnected with the reconnect buffer full.
    pub(super) fn writable(&self) -> Result<MutexGuard<'_, Shared>, ClientError> {
        let mut shared = self.open()?;
        loop {
            let len = shared.session.outbox_len();
            if shared.writer.is_none() {
                if len >= self.options.reconnect_buffer {
                    return Err(ClientError::BufferFull);
                }
                return Ok(shared);
            }
            if len < self.options.max_outbox {
                return Ok(shared);
            }
            shared = self.changed.wait(shared).unwrap_or_else(|p| p.into_inner());
            if shared.closed {
                return Err(ClientError::Closed);
            }
        }
    }

    pub(super) fn close(&self) {
        {
            let mut shared = self.lock();
            if shared.closed {
                return;
            }
            shared.closed = true;
            shared.subs.clear();
            for (_, tx) in shared.requests.drain() {
                let _ = tx.try_send(Err(ClientError::Closed));
            }
        }
        self.outbox_ready.notify_all();
        self.changed.notify_all();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        let me = thread::current().id();
        for handle in threads {
            if handle.thread().id() != me {
                let _ = handle.join();
            }
        }
    }

    fn run_flusher(&self) {
        let mut shared = self.lock();
        loop {
            while !shared.closed && (shared.session.outbox_len() == 0 || shared.writer.is_none()) {
                shared = self
                    .outbox_ready
                    .wait(shared)
                    .unwrap_or_else(|p| p.into_inner());
            }
            let Some(writer) = shared.writer.clone() else {
                return; // closed while disconnected: nothing can be written
            };
            let mut batch = std::mem::take(&mut shared.spare);
            std::mem::swap(&mut batch, shared.session.outbox());
            let closing = shared.closed;
            drop(shared);
            let result = writer.write_all(&batch);
            if closing {
                writer.shutdown();
                return;
            }
            if result.is_err() {
                // The reader sees the broken socket and reconnects.
                writer.shutdown();
            }
            batch.clear();
            shared = self.lock();
            shared.spare = batch;
            self.changed.notify_all();
        }
    }

    fn run_reader(&self, mut stream: Reader) {
        let mut buf = BytesMut::with_capacity(256 << 10);
        let mut chunk = vec![0u8; 128 << 10];
        loop {
            let outcome = self.read_until_broken(&mut stream, &mut buf, &mut chunk);
            let _ = stream.tcp().shutdown(Shutdown::Both);
            buf.clear();
            if let Err(err) = outcome {
                let mut shared = self.lock();
                if shared.reconnects == 0 && shared.session.phase() == Phase::AwaitingWelcome {
                    // The first handshake failed: report it to `connect` instead of retrying.
                    shared.handshake_error = Some(err);
                    self.changed.notify_all();
                    return;
                }
            }
            if self.lock().terminal.is_some() {
                self.reconnect_abandoned();
                return;
            }
            match self.reconnect() {
                Some(next) => stream = next,
                None => return,
            }
        }
    }

    /// Reads and dispatches frames until the connection breaks or the client closes.
    fn read_until_broken(
        &self,
        stream: &mut Reader,
        buf: &mut BytesMut,
        chunk: &mut [u8],
    ) -> Result<(), ClientError> {
        let mut read_timeout = None;
        loop {
            let n = match stream.read(chunk) {
                Ok(0) => return Err(ClientError::Disconnected),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ClientError::Io(e)),
            };
            buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
            let mut shared = self.lock();
            if shared.closed {
                return Ok(());
            }
            let limits = *shared.session.limits();
            loop {
                let frame_len = match check(buf, &limits)? {
                    Check::Complete { frame_len } => frame_len,
                    Check::Incomplete { frame_len } => {
                        if let Some(len) = frame_len {
                            buf.reserve(len.saturating_sub(buf.len()));
                        }
                        break;
                    }
                };
                let bytes = buf.split_to(frame_len).freeze();
                let frame = decode(&bytes, &limits)?;
                self.dispatch(&mut shared, &frame, &bytes)?;
            }
            if shared.session.outbox_len() > 0 {
                self.outbox_ready.notify_one();
            }
            let wanted = silence_limit(shared.session.welcome());
            drop(shared);
            if wanted != read_timeout {
                stream.tcp().set_read_timeout(wanted)?;
                read_timeout = wanted;
            }
        }
    }

    fn dispatch(
        &self,
        shared: &mut Shared,
        frame: &Frame<'_>,
        bytes: &Bytes,
    ) -> Result<(), ClientError> {
        match shared.session.handle_frame(frame, Instant::now())? {
            Event::Welcome(_) => self.changed.notify_all(),
            Event::Message {
                sid,
                seq,
                reply,
                last,
            } => {
                let message = owned_message(frame, bytes, sid, seq, reply);
                if let Some(slot) = shared.subs.get(&sid) {
                    match slot.tx.try_send(message) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_)) => {
                            slot.dropped.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(TrySendError::Disconnected(_)) => {
                            // The application dropped the receiver; the Subscription's Drop
                            // unsubscribes.
                        }
                    }
                }
                if last {
                    shared.subs.remove(&sid);
                }
            }
            Event::Response { request_id } => {
                if let Some(tx) = shared.requests.remove(&request_id) {
                    let _ = tx.try_send(Ok(owned_message(frame, bytes, 0, 0, 0)));
                }
            }
            Event::RequestFailed { request_id, code } => {
                if let Some(tx) = shared.requests.remove(&request_id) {
                    let _ = tx.try_send(Err(server_error(frame, code)));
                }
            }
            Event::SubscriptionFailed { sid, code } => {
                shared.subs.remove(&sid);
                shared.member_events.remove(&sid);
                shared.last_error = Some((code, error_text(frame)));
                if shared.awaited.contains(&frame.op_id) {
                    let refused = Err(server_error(frame, code));
                    shared.answers.insert(frame.op_id, refused);
                    self.changed.notify_all();
                }
            }
            Event::Error { code, .. } => {
                if code.closes_connection() && !code.is_temporary() {
                    // A terminal close (KICKED, AUTH_FAILED, ...): reconnecting would only be
                    // refused again, or undo what an administrator did.
                    shared.terminal = Some((code, error_text(frame)));
                }
                shared.last_error = Some((code, error_text(frame)));
                if shared.awaited.contains(&frame.op_id) {
                    let refused = Err(server_error(frame, code));
                    shared.answers.insert(frame.op_id, refused);
                    self.changed.notify_all();
                }
            }
            Event::Drain { .. } => {
                // The server is going away: leave now (and reconnect, to wherever the address
                // leads next) rather than hold its drain up for the whole grace period.
                return Err(ClientError::Disconnected);
            }
            Event::Pong { rtt } => {
                shared.pongs += 1;
                shared.last_rtt = rtt;
                self.changed.notify_all();
            }
            Event::Status { op_id } => {
                shared.statuses.insert(op_id, frame.payload.to_vec());
                self.changed.notify_all();
            }
            Event::Room {
                op: crate::Op::Member,
                fields,
                ..
            } => {
                if let Some(tx) = shared.member_events.get(&fields.sid) {
                    let event = super::room::MemberEvent {
                        joined: fields.flags.contains(crate::RoomFlags::JOINED),
                        member: super::room::payload_value(frame.payload),
                    };
                    let _ = tx.try_send(event);
                }
            }
            Event::Room {
                op: crate::Op::Leave,
                fields,
                ..
            } => {
                // Dropping the slot ends the room's channels: its receiver sees Closed.
                shared.subs.remove(&fields.sid);
                shared.member_events.remove(&fields.sid);
            }
            Event::Room {
                op: crate::Op::Join,
                op_id: 0,
                fields,
            } if !shared.subs.contains_key(&fields.sid) => {
                self.server_joined(shared, frame, fields);
            }
            Event::Room { op_id, .. } | Event::Service { op_id, .. } => {
                if shared.awaited.contains(&op_id) {
                    let answer = Ok((frame.fields, frame.payload.to_vec()));
                    shared.answers.insert(op_id, answer);
                    self.changed.notify_all();
                }
            }
            Event::Ok { .. } | Event::Ping | Event::Ignored => {}
        }
        Ok(())
    }

    /// A backend joined this connection to a room: the application takes a `Room` for it
    /// (when it asked for them with `Client::server_room`).
    fn server_joined(&self, shared: &mut Shared, frame: &Frame<'_>, fields: crate::RoomFields) {
        let Some(waiting) = shared.server_rooms.as_mut() else {
            return;
        };
        let capacity = self.options.subscription_capacity;
        let (messages, rx) = std::sync::mpsc::sync_channel(capacity);
        let (events_tx, events) = std::sync::mpsc::sync_channel(capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        waiting.push_back(super::room::ServerJoin {
            name: frame.topic_str().to_owned(),
            fields,
            counts: super::room::counts(&super::room::payload_value(frame.payload)),
            messages: rx,
            events,
            dropped: Arc::clone(&dropped),
        });
        shared.subs.insert(
            fields.sid,
            SubSlot {
                tx: messages,
                dropped,
            },
        );
        shared.member_events.insert(fields.sid, events_tx);
        self.changed.notify_all();
    }

    /// Re-dials with jittered backoff. Returns the new stream, or `None` when the client closed
    /// or the policy gave up.
    fn reconnect(&self) -> Option<Reader> {
        {
            let mut shared = self.lock();
            shared.writer = None;
            let failed = shared.session.disconnected();
            for id in &failed {
                if let Some(tx) = shared.requests.remove(id) {
                    let _ = tx.try_send(Err(ClientError::Disconnected));
                }
            }
            self.changed.notify_all();
            if shared.closed {
                return None;
            }
        }
        let policy = self.options.reconnect;
        if !policy.enabled {
            self.mark_closed();
            return None;
        }
        let mut backoff = Backoff::new(policy.base_delay, policy.max_delay);
        let mut attempt = 0u32;
        loop {
            if policy.max_attempts.is_some_and(|max| attempt >= max) {
                self.mark_closed();
                return None;
            }
            let deadline = Instant::now() + backoff.delay(attempt);
            attempt = attempt.saturating_add(1);
            if !self.wait_while_open(deadline) {
                return None;
            }
            let Ok((stream, writer)) = open(&self.addrs, &self.options, self.tls.as_ref()) else {
                continue;
            };
            let mut shared = self.lock();
            if shared.closed {
                return None;
            }
            if shared.session.connected().is_err() {
                continue;
            }
            shared.writer = Some(Arc::new(writer));
            shared.reconnects += 1;
            drop(shared);
            self.outbox_ready.notify_one();
            return Some(stream);
        }
    }

    /// Sleeps until `deadline` unless the client closes first. Returns whether it is still open.
    fn wait_while_open(&self, deadline: Instant) -> bool {
        let mut shared = self.lock();
        loop {
            if shared.closed {
                return false;
            }
            match self.wait_until(shared, deadline) {
                Some(guard) => shared = guard,
                // `wait_until` consumed the guard, so taking the lock again is safe.
                None => return !self.lock().closed,
            }
        }
    }

    /// Ends the client after a terminal close: pending requests fail, the client is closed.
    fn reconnect_abandoned(&self) {
        let mut shared = self.lock();
        shared.writer = None;
        for id in shared.session.disconnected() {
            if let Some(tx) = shared.requests.remove(&id) {
                let _ = tx.try_send(Err(ClientError::Disconnected));
            }
        }
        drop(shared);
        self.mark_closed();
    }

    fn mark_closed(&self) {
        let mut shared = self.lock();
        shared.closed = true;
        shared.subs.clear();
        self.changed.notify_all();
        self.outbox_ready.notify_all();
    }
}

/// How long the server may stay silent before the connection counts as dead: three of its ping
/// intervals (it pings idle clients, so a live server is never quiet that long).
fn silence_limit(welcome: Option<&Welcome>) -> Option<Duration> {
    let interval = welcome?.ping_interval_ms;
    (interval > 0).then(|| Duration::from_millis(u64::from(interval) * 3))
}

fn owned_message(frame: &Frame<'_>, bytes: &Bytes, sid: u64, seq: u64, reply: u64) -> Message {
    // Section offsets follow from the layout the decoder just validated.
    let topic_at = HEADER_LEN + Fields::wire_len(frame.op());
    let headers_at = topic_at + frame.topic.len();
    let payload_at = headers_at + frame.headers.as_bytes().len();
    let end = payload_at + frame.payload.len();
    let slice = |from: usize, to: usize| {
        if from <= to && to <= bytes.len() {
            bytes.slice(from..to)
        } else {
            Bytes::new()
        }
    };
    Message {
        sid,
        seq,
        reply,
        flags: frame.flags,
        topic: slice(topic_at, headers_at),
        headers: slice(headers_at, payload_at),
        payload: slice(payload_at, end),
    }
}

fn error_text(frame: &Frame<'_>) -> String {
    String::from_utf8_lossy(frame.payload).into_owned()
}

fn server_error(frame: &Frame<'_>, code: ErrorCode) -> ClientError {
    let retry_after_ms = match frame.fields {
        Fields::Err { retry_after_ms, .. } => retry_after_ms,
        _ => 0,
    };
    ClientError::Server {
        code,
        message: error_text(frame),
        retry_after_ms,
    }
}
