//! `Client`: the blocking Rust client over `std::net::TcpStream`, built on [`ClientSession`].
//!
//! Two threads per client: a reader that decodes frames, dispatches them and reconnects, and a
//! flusher that writes the session's outbox whenever it is non-empty, so publishes are batched
//! into few writes without the caller flushing. State shared with the caller sits behind one
//! mutex; this is the client side, not the broker's publish path.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::container::{Value, compress};
use crate::decode::{Check, check, decode};
use crate::error_code::ErrorCode;
use crate::flags::Flags;
use crate::frame::{Fields, Frame, Welcome};
use crate::header::HEADER_LEN;
use crate::headers::Headers;

use super::backoff::Backoff;
use super::error::ClientError;
use super::message::Message;
use super::options::ClientOptions;
use super::session::{ClientSession, Event, LOCAL_TIMEOUT_GRACE, Phase};
use super::subscription::Subscription;

/// A connection to a shardbus server. Cheap to clone; closed when the last clone (and every
/// [`Subscription`]) is dropped, or by [`Client::close`].
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

pub(crate) struct Inner {
    shared: Mutex<Shared>,
    /// Signals the flusher that the outbox has bytes (or the client closed).
    outbox_ready: Condvar,
    /// Signals waiters that the connection state, the outbox size or the pong count changed.
    changed: Condvar,
    options: ClientOptions,
    addrs: Vec<SocketAddr>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

pub(crate) struct SubSlot {
    tx: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
}

struct Shared {
    session: ClientSession,
    writer: Option<Arc<TcpStream>>,
    spare: Vec<u8>,
    closed: bool,
    handshake_error: Option<ClientError>,
    subs: HashMap<u64, SubSlot>,
    requests: HashMap<u64, SyncSender<Result<Message, ClientError>>>,
    pongs: u64,
    last_rtt: Option<Duration>,
    last_error: Option<(ErrorCode, String)>,
    reconnects: u64,
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
        let stream = dial(&addrs, options.connect_timeout)?;
        let mut session = ClientSession::new(options.session.clone());
        session.connected()?;
        let writer = Arc::new(stream.try_clone()?);
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
                last_rtt: None,
                last_error: None,
                reconnects: 0,
            }),
            outbox_ready: Condvar::new(),
            changed: Condvar::new(),
            options,
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

    /// Measures the round trip to the server with PING/PONG. Everything published before it has
    /// been processed by the server when it returns.
    ///
    /// # Errors
    /// [`ClientError::Timeout`] after the handshake timeout, [`ClientError::Closed`].
    pub fn rtt(&self) -> Result<Duration, ClientError> {
        let deadline = Instant::now() + self.inner.options.handshake_timeout;
        let mut shared = self.inner.open()?;
        // Wait for a live connection: a PING queued while disconnected would be dropped.
        while shared.session.phase() != Phase::Ready {
            shared = self
                .inner
                .wait_until(shared, deadline)
                .ok_or(ClientError::Timeout)?;
            if shared.closed {
                return Err(ClientError::Closed);
            }
        }
        // PONGs answer PINGs in order: ours is answered after those already outstanding.
        let target = shared.pongs + 1 + shared.session.pings_outstanding() as u64;
        shared.session.ping(Instant::now())?;
        self.inner.outbox_ready.notify_one();
        while shared.pongs < target {
            shared = self
                .inner
                .wait_until(shared, deadline)
                .ok_or(ClientError::Timeout)?;
            if shared.closed {
                return Err(ClientError::Closed);
            }
            if shared.session.phase() == Phase::Disconnected {
                return Err(ClientError::Disconnected);
            }
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
    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A poisoned lock means a client thread panicked mid-update; the state is still the
        // best we have, and refusing every later call would help nobody.
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait_until<'a>(
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

    fn open(&self) -> Result<MutexGuard<'_, Shared>, ClientError> {
        let shared = self.lock();
        if shared.closed {
            return Err(ClientError::Closed);
        }
        Ok(shared)
    }

    /// The lock, once there is room to queue more: waits while a live connection's outbox is
    /// over `max_outbox`; fails while disconnected with the reconnect buffer full.
    fn writable(&self) -> Result<MutexGuard<'_, Shared>, ClientError> {
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

    fn close(&self) {
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
            let result = (&*writer).write_all(&batch);
            if closing {
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
            if result.is_err() {
                // The reader sees the broken socket and reconnects.
                let _ = writer.shutdown(Shutdown::Both);
            }
            batch.clear();
            shared = self.lock();
            shared.spare = batch;
            self.changed.notify_all();
        }
    }

    fn run_reader(&self, mut stream: TcpStream) {
        let mut buf = BytesMut::with_capacity(256 << 10);
        let mut chunk = vec![0u8; 128 << 10];
        loop {
            let outcome = self.read_until_broken(&mut stream, &mut buf, &mut chunk);
            let _ = stream.shutdown(Shutdown::Both);
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
            match self.reconnect() {
                Some(next) => stream = next,
                None => return,
            }
        }
    }

    /// Reads and dispatches frames until the connection breaks or the client closes.
    fn read_until_broken(
        &self,
        stream: &mut TcpStream,
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
                stream.set_read_timeout(wanted)?;
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
                shared.last_error = Some((code, error_text(frame)));
            }
            Event::Error { code, .. } => shared.last_error = Some((code, error_text(frame))),
            Event::Pong { rtt } => {
                shared.pongs += 1;
                shared.last_rtt = rtt;
                self.changed.notify_all();
            }
            Event::Ok { .. } | Event::Ping | Event::Drain { .. } | Event::Ignored => {}
        }
        Ok(())
    }

    /// Re-dials with jittered backoff. Returns the new stream, or `None` when the client closed
    /// or the policy gave up.
    fn reconnect(&self) -> Option<TcpStream> {
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
            let Ok(stream) = dial(&self.addrs, self.options.connect_timeout) else {
                continue;
            };
            let Ok(writer) = stream.try_clone() else {
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
