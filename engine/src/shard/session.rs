//! A session: the tasks that serve one client connection. The reader task does the HELLO
//! handshake (with its timeout), then decodes frames in place and hands them to the shard; the
//! writer task drains the outbox in batches. (Keepalive is one task per shard: `keepalive.rs`.) Nothing a client sends can panic the shard: every malformed frame ends in an
//! ERR with its code.

use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;

use std::task::Poll;

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWriteExt, future};
use glommio::net::TcpStream;
use shardbus_protocol::header::HEADER_LEN;
use shardbus_protocol::{
    Check, ErrorCode, Fields, Frame, HelloOptions, PROTOCOL_VERSION, ProtocolError, Welcome, check,
    decode,
};

use super::Shard;
use super::conn::{CLOSE_LINGER, Conn, Outgoing};
use super::login::{PreauthCharge, hello_frame_limit, verify_password_in_hello};
use super::read_buffer::{ReadBuffer, SCRATCH_SIZE};
use super::stream::SharedStream;
use crate::metrics::Metric;
use crate::routing::ShardId;
use crate::transport::{self, Accepted};

/// Why a session's input ended.
pub(crate) enum Next {
    Continue,
    Close,
    /// The connection moves to this shard (`moving.rs`); nothing more is read here.
    Move(ShardId),
}

/// Serves one accepted connection until it closes.
///
/// The future lives as long as the connection, and a future is as large as its largest state
/// (and, with rustc today, keeps room for values already moved out of it): so the stream comes
/// boxed, and the phases before and after the steady state run in boxed futures of their own,
/// each made in a statement without an `.await` (a temporary lives to the end of its
/// statement). Inline, the TLS handshake and the refusal's drain buffer made every
/// connection's task 5 KB; `-Zprint-type-sizes` shows the layout.
pub(crate) fn serve(shard: Rc<Shard>, stream: TcpStream) -> impl Future<Output = ()> {
    serve_boxed(shard, Box::new(stream))
}

async fn serve_boxed(shard: Rc<Shard>, stream: Box<TcpStream>) {
    let opening = Box::pin(open(Rc::clone(&shard), stream));
    let Some((stream, remote)) = opening.await else {
        return;
    };
    let conn = Rc::new(Conn::new(
        shard.next_conn_id(),
        Some(stream.clone()),
        Some(remote),
        shard.settings.max_pending,
        shard.write_tick.clone(),
        std::sync::Arc::clone(&shard.metrics),
    ));
    let writer = glommio::spawn_local(write_loop(Rc::clone(&conn), stream.clone()));
    if !shard.shared.try_add_connection() {
        shard.metrics.add(Metric::ConnectionsRefused, 1);
        conn.fail(
            ErrorCode::MAX_CONNECTIONS,
            0,
            0,
            "the server is at max_connections",
        );
        linger(&conn, writer, stream).await;
        return;
    }
    shard.metrics.add(Metric::Connections, 1);
    shard.metrics.add(Metric::ConnectionsTotal, 1);
    let moving = read_loop(&shard, &conn, stream.clone()).await;
    finish(&shard, &conn, stream, writer, moving).await;
}

/// Serves a connection another shard moved here (`moving.rs`), already past HELLO and
/// registered, from the next frame on.
pub(crate) async fn serve_arrived(shard: Rc<Shard>, conn: Rc<Conn>, stream: SharedStream) {
    let writer = glommio::spawn_local(write_loop(Rc::clone(&conn), stream.clone()));
    shard.metrics.add(Metric::Connections, 1);
    let moving = Box::pin(serve_frames(
        &shard,
        &conn,
        stream.clone(),
        ReadBuffer::new(0),
    ))
    .await;
    finish(&shard, &conn, stream, writer, moving).await;
}

/// Ends a session whose input ended: hands the connection to the shard it moves to, or
/// forgets it and closes it.
async fn finish(
    shard: &Rc<Shard>,
    conn: &Rc<Conn>,
    stream: SharedStream,
    writer: glommio::Task<()>,
    moving: Option<ShardId>,
) {
    if let Some(to) = moving {
        // Nothing is queued (`holds_nothing_of`): the writer ends at once, and leaves the
        // socket open for the other shard.
        conn.moved.set(true);
        conn.outbox.close();
        writer.await;
        if shard.send_away(conn, to) {
            return;
        }
        stream.shutdown();
        forget_closed(shard, conn);
        return;
    }
    forget_closed(shard, conn);
    linger(conn, writer, stream).await;
}

/// Forgets a connection that closed: its state here, and its place in the counts.
fn forget_closed(shard: &Shard, conn: &Conn) {
    shard.remove_conn(conn);
    shard.metrics.sub(Metric::Connections, 1);
    shard.shared.remove_connection();
}

/// Closes the outbox and waits for the writer to flush what is left, but a peer that no
/// longer reads must not keep the socket and this task alive: after the linger the socket is
/// shut under the writer.
async fn linger(conn: &Conn, writer: glommio::Task<()>, stream: SharedStream) {
    conn.outbox.close();
    let lingering = Box::pin(future::or(writer, async move {
        glommio::timer::sleep(CLOSE_LINGER).await;
        stream.shutdown();
        future::pending::<()>().await;
    }));
    lingering.await;
}

/// The TLS handshake when the client starts one (or the refusal of plaintext when TLS is
/// required): the transport and the peer's address, or `None` when the connection is done.
async fn open(shard: Rc<Shard>, stream: Box<TcpStream>) -> Option<(SharedStream, SocketAddr)> {
    let stream = *stream;
    let _ = stream.set_nodelay(true);
    let remote = stream
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let tls = shard.settings.tls.as_ref();
    match transport::accept(tls, stream, shard.settings.hello_timeout).await {
        Accepted::Ready(transport) => Some((SharedStream::new(transport), remote)),
        Accepted::PlaintextRefused(mut stream) => {
            refuse_plaintext(&shard, &mut stream).await;
            None
        }
        Accepted::Failed => {
            shard.metrics.add(Metric::TlsFailures, 1);
            None
        }
    }
}

/// Answers a plaintext client of a TLS-only server with ERR `TLS_REQUIRED`, and closes.
async fn refuse_plaintext(shard: &Shard, stream: &mut TcpStream) {
    let message = "this server accepts TLS connections only";
    refuse_before_hello(shard, stream, ErrorCode::TLS_REQUIRED, 0, message).await;
}

/// Refuses a connection accepted over the shard's accept-rate limit: ERR `RATE_LIMITED`
/// (plaintext), then close.
pub(crate) async fn refuse_accept_rate(shard: Rc<Shard>, mut stream: TcpStream) {
    let message = "too many new connections; retry later";
    refuse_before_hello(&shard, &mut stream, ErrorCode::RATE_LIMITED, 1_000, message).await;
}

/// Sends a connection that will not be served one ERR frame, without waiting long for a peer
/// that does not read, after taking what it already sent (so the close does not reset it).
async fn refuse_before_hello(
    shard: &Shard,
    stream: &mut TcpStream,
    code: ErrorCode,
    retry_after_ms: u32,
    message: &str,
) {
    shard.metrics.error(code);
    let refusal = Frame::new(Fields::Err {
        code,
        retry_after_ms,
        ref_id: 0,
    })
    .with_payload(message.as_bytes());
    let mut frame = Vec::new();
    if shardbus_protocol::encode(&refusal, &mut frame).is_ok() {
        transport::refuse(stream, &frame).await;
    }
}

/// Writes the outbox in batches until it is closed and drained, then shuts the socket.
async fn write_loop(conn: Rc<Conn>, mut stream: SharedStream) {
    while let Some(batch) = conn.outbox.next_batch().await {
        let result = stream.write_all(&batch).await;
        conn.outbox.written(batch);
        if result.is_err() {
            conn.outbox.close();
            break;
        }
    }
    if !conn.moved.get() {
        stream.shutdown();
    }
}

/// Reads HELLO, then frames until the connection ends; the shard it moves to, if it moves.
async fn read_loop(
    shard: &Rc<Shard>,
    conn: &Rc<Conn>,
    mut stream: SharedStream,
) -> Option<ShardId> {
    // The start of a frame still arriving; empty (and unallocated) between whole frames.
    let mut own = ReadBuffer::new(0);
    // Boxed, in a statement of its own (see `serve`): the HELLO phase's state (the password
    // check, the timer) is not kept for the connection's life.
    let hello = Box::pin(future::or(
        async { Some(read_hello(shard, conn, &mut stream, &mut own).await) },
        async {
            glommio::timer::sleep(shard.settings.hello_timeout).await;
            None
        },
    ));
    let hello = hello.await;
    match hello {
        Some(true) => {}
        Some(false) => return None,
        None => {
            conn.fail(
                ErrorCode::HELLO_TIMEOUT,
                0,
                0,
                "HELLO did not arrive in time",
            );
            return None;
        }
    }
    // Frames that came in the same read as HELLO.
    if let Next::Close = process(shard, conn, &mut own, None) {
        return None;
    }
    serve_frames(shard, conn, stream, own).await
}

/// Reads and handles frames until the connection ends (`None`) or moves (the shard it moves
/// to); `own` holds the start of a frame already read.
async fn serve_frames(
    shard: &Rc<Shard>,
    conn: &Rc<Conn>,
    mut stream: SharedStream,
    mut own: ReadBuffer,
) -> Option<ShardId> {
    loop {
        shard.hold_back_own_answers(conn);
        shard.pause_reader().await;
        if conn.outbox.is_closed() {
            return None;
        }
        match read_and_process(shard, conn, &mut stream, &mut own, None).await {
            Next::Continue => {}
            Next::Close => return None,
            Next::Move(to) => return Some(to),
        }
        // A socket that always has input would otherwise keep this task running and the
        // shard's timers (keepalive, request deadlines) and other sessions waiting.
        glommio::yield_if_needed().await;
    }
}

/// Reads until HELLO is decoded and answered; `false` when the connection must end. HELLO is
/// read into the connection's own buffer (not the shard's scratch) so that a password in it
/// can be checked off the shard's thread before it is handled.
async fn read_hello(
    shard: &Rc<Shard>,
    conn: &Rc<Conn>,
    stream: &mut SharedStream,
    own: &mut ReadBuffer,
) -> bool {
    let limits = &shard.settings.limits;
    let mut charge = PreauthCharge::new(shard);
    loop {
        let want = match check(own.unread(), limits) {
            Ok(Check::Incomplete { frame_len }) => Some(frame_len.unwrap_or(HEADER_LEN)),
            // Whole, or refused by `process` below.
            Ok(Check::Complete { .. }) | Err(_) => None,
        };
        if let Some(want) = want {
            if want > hello_frame_limit(limits) {
                conn.fail(
                    ErrorCode::FRAME_TOO_LARGE,
                    op_id_of(own.unread()),
                    0,
                    &format!(
                        "a frame before HELLO is accepted may be at most {} bytes",
                        hello_frame_limit(limits)
                    ),
                );
                return false;
            }
            if !charge.hold(want) {
                conn.fail(
                    ErrorCode::MAX_CONNECTIONS,
                    0,
                    0,
                    "too many connections are still authenticating; try again",
                );
                return false;
            }
            match stream.read(own.spare(want)).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => own.filled(n),
            }
            continue;
        }
        verify_password_in_hello(shard, conn, own.unread()).await;
        let mut accepted = false;
        if let Next::Close = process(shard, conn, own, Some(&mut accepted)) {
            return false;
        }
        if accepted {
            if own.unread().is_empty() {
                // An idle connection keeps no input buffer (see `ReadBuffer`).
                *own = ReadBuffer::new(0);
            }
            return true;
        }
    }
}

/// Closes `conn` with `AUTH_EXPIRED` when its credentials expire (`expires`, Unix seconds).
fn close_at_expiry(conn: &Rc<Conn>, expires: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let left = std::time::Duration::from_secs(expires.saturating_sub(now));
    let conn = Rc::downgrade(conn);
    glommio::spawn_local(async move {
        glommio::timer::sleep(left).await;
        if let Some(conn) = conn.upgrade() {
            conn.fail(
                ErrorCode::AUTH_EXPIRED,
                0,
                0,
                "the credentials expired (JWT exp)",
            );
        }
    })
    .detach();
}

/// Reads once and handles every whole frame read; `Close` at end of stream, on a read error or
/// when a frame closed the connection. A connection holding the start of a frame reads the rest
/// into its own buffer `own`; any other reads into the shard's scratch buffer, and only an
/// unfinished frame at the end is copied to `own`. The scratch is empty again before this
/// returns, so no other session ever sees its bytes.
async fn read_and_process(
    shard: &Rc<Shard>,
    conn: &Rc<Conn>,
    stream: &mut SharedStream,
    own: &mut ReadBuffer,
    hello: Option<&mut bool>,
) -> Next {
    // The rest of an unfinished frame is read through the scratch too and appended, so the
    // connection's buffer grows with what arrived, never with what the length prefix announced.
    let room = match check(own.unread(), &shard.settings.limits) {
        Ok(Check::Incomplete {
            frame_len: Some(len),
        }) => len.saturating_sub(own.unread().len()),
        _ if own.unread().is_empty() => SCRATCH_SIZE,
        _ => HEADER_LEN,
    };
    // Only between whole frames may the connection move: what it sent next stays in the
    // socket for the other shard to read.
    let movable = hello.is_none() && own.unread().is_empty();
    match read_into_scratch(
        shard,
        movable.then_some(&**conn),
        stream,
        room.clamp(1, SCRATCH_SIZE),
    )
    .await
    {
        Read::Filled => {}
        Read::Ended => return Next::Close,
        Read::Moving(to) => return Next::Move(to),
    }
    conn.heard.set(true);
    let mut scratch = shard.scratch.borrow_mut();
    if !own.unread().is_empty() {
        own.append(scratch.unread());
        scratch.clear();
        drop(scratch);
        return process(shard, conn, own, hello);
    }
    let next = process(shard, conn, &mut scratch, hello);
    own.append(scratch.unread());
    scratch.clear();
    next
}

/// What a read gave.
enum Read {
    Filled,
    /// End of stream, or an error.
    Ended,
    /// Nothing was read: the connection moves to this shard.
    Moving(ShardId),
}

/// Reads at most `room` bytes into the shard's scratch. With `movable`, a connection marked
/// to move is looked at each time the read is polled, before anything is taken off the
/// socket. The scratch is borrowed only inside a poll, never across the await.
async fn read_into_scratch(
    shard: &Shard,
    movable: Option<&Conn>,
    stream: &mut SharedStream,
    room: usize,
) -> Read {
    future::poll_fn(|cx| {
        if let Some(to) = movable.and_then(|conn| shard.moves_now(conn)) {
            return Poll::Ready(Read::Moving(to));
        }
        let mut scratch = shard.scratch.borrow_mut();
        let spare = scratch.spare(SCRATCH_SIZE);
        let spare = match spare.get_mut(..room) {
            Some(part) => part,
            None => spare,
        };
        match std::pin::Pin::new(&mut *stream).poll_read(cx, spare) {
            Poll::Ready(Ok(n)) if n > 0 => {
                scratch.filled(n);
                Poll::Ready(Read::Filled)
            }
            Poll::Ready(_) => Poll::Ready(Read::Ended),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Handles every whole frame in `buf` for a transport that delivers frames whole (the
/// WebSocket edge): HELLO first while `hello_done` is false, then the rest.
pub(crate) fn process_input(
    shard: &Rc<Shard>,
    conn: &Rc<Conn>,
    buf: &mut ReadBuffer,
    hello_done: &mut bool,
) -> Next {
    if !*hello_done {
        let mut accepted = false;
        if let Next::Close = process(shard, conn, buf, Some(&mut accepted)) {
            return Next::Close;
        }
        if !accepted {
            return Next::Continue;
        }
        *hello_done = true;
    }
    process(shard, conn, buf, None)
}

/// Decodes and handles every whole frame in `buf`. With `hello` set, the first frame must be
/// HELLO; once it is accepted `hello` is set to `true` and the rest waits for the main loop.
pub(crate) fn process(
    shard: &Rc<Shard>,
    conn: &Rc<Conn>,
    buf: &mut ReadBuffer,
    mut hello: Option<&mut bool>,
) -> Next {
    loop {
        let limits = &shard.settings.limits;
        let frame_len = match check(buf.unread(), limits) {
            Ok(Check::Complete { frame_len }) => frame_len,
            Ok(Check::Incomplete { .. }) => return Next::Continue,
            Err(error) => {
                refuse(conn, &error, op_id_of(buf.unread()));
                return Next::Close;
            }
        };
        let bytes = buf.unread().get(..frame_len).unwrap_or_default();
        let next = match decode(bytes, limits) {
            Ok(frame) => match hello.as_deref_mut() {
                Some(accepted) => {
                    let next = handshake(shard, conn, &frame);
                    *accepted = matches!(next, Next::Continue);
                    next
                }
                None => {
                    shard.handle(conn, &frame);
                    Next::Continue
                }
            },
            // Before HELLO, a frame that fails with a code that would keep the connection
            // (an unknown op, a bad topic) is still not HELLO: PROTOCOL.md §3.1.
            Err(error) if hello.is_some() && !error.code().closes_connection() => {
                conn.fail(
                    ErrorCode::HELLO_REQUIRED,
                    op_id_of(bytes),
                    0,
                    "the first frame must be HELLO",
                );
                Next::Close
            }
            // A server-to-client op is refused as such, malformed or not: an unknown or
            // wrong-direction op never closes (PROTOCOL.md §3).
            Err(_) if hello.is_none() && is_server_op(bytes) => {
                conn.error(
                    ErrorCode::UNKNOWN_OP,
                    op_id_of(bytes),
                    0,
                    "a server-to-client op sent to the server",
                );
                Next::Continue
            }
            Err(error) => {
                refuse(conn, &error, op_id_of(bytes));
                if error.code().closes_connection() {
                    Next::Close
                } else {
                    Next::Continue
                }
            }
        };
        buf.consume(frame_len);
        if matches!(next, Next::Close) || conn.outbox.is_closed() {
            return Next::Close;
        }
        if hello.as_deref().is_some_and(|accepted| *accepted) {
            return Next::Continue;
        }
    }
}

/// Whether the frame's op byte names an op only a server sends.
fn is_server_op(bytes: &[u8]) -> bool {
    bytes
        .get(4)
        .and_then(|&byte| shardbus_protocol::Op::from_u8(byte).ok())
        .is_some_and(shardbus_protocol::Op::is_server_to_client)
}

/// The op id of a frame that failed to decode, when its header is there to read it from.
fn op_id_of(bytes: &[u8]) -> u32 {
    bytes
        .get(HEADER_LEN - 4..HEADER_LEN)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, u32::from_le_bytes)
}

fn refuse(conn: &Conn, error: &ProtocolError, op_id: u32) {
    conn.error(error.code(), op_id, 0, &error.to_string());
}

/// Checks HELLO, registers the connection and answers WELCOME.
fn handshake(shard: &Rc<Shard>, conn: &Rc<Conn>, frame: &Frame<'_>) -> Next {
    let Fields::Hello { version, options } = frame.fields else {
        conn.fail(
            ErrorCode::HELLO_REQUIRED,
            frame.op_id,
            0,
            "the first frame must be HELLO",
        );
        return Next::Close;
    };
    if version != PROTOCOL_VERSION {
        conn.fail(
            ErrorCode::UNSUPPORTED_VERSION,
            frame.op_id,
            0,
            "this server speaks protocol version 1",
        );
        return Next::Close;
    }
    if shard.is_draining() {
        conn.fail(
            ErrorCode::SERVER_DRAINING,
            frame.op_id,
            0,
            "the server is shutting down",
        );
        return Next::Close;
    }
    let verified = conn.preauth.borrow_mut().take();
    let identity = match verified.unwrap_or_else(|| shard.auth().authenticate(&frame.headers)) {
        Ok(identity) => identity,
        Err(code) => {
            let why = if code == ErrorCode::AUTH_REQUIRED {
                "this server needs credentials in HELLO (token, or user and pass)"
            } else {
                "the credentials were not accepted"
            };
            shard.event(crate::events::EventKind::AuthFailure, || {
                auth_failure_fields(conn, code, frame)
            });
            conn.fail(code, frame.op_id, 0, why);
            return Next::Close;
        }
    };
    if let Some(expires) = identity.expires {
        close_at_expiry(conn, expires);
    }
    conn.set_identity(identity);
    *conn.rate.borrow_mut() = shard.rate.borrow().conn_buckets().map(Box::new);
    conn.options
        .set(HelloOptions(options.0 & HelloOptions::ALL.0));
    if let Some(name) = frame.headers.get("name") {
        name.clone_into(&mut conn.name.borrow_mut());
    }
    shard.register(Rc::clone(conn));
    if conn.remote.is_some() {
        shard.conn_opened_event(conn);
    }
    let settings = &shard.settings;
    let welcome = Welcome {
        version: PROTOCOL_VERSION,
        shard: shard.id,
        max_topic_len: settings.limits.max_topic_len,
        max_payload: settings.limits.max_payload,
        max_frame: settings.limits.max_frame,
        max_subscriptions: settings.max_subscriptions,
        ping_interval_ms: settings.ping_interval_ms,
        client_id: conn.id,
    };
    conn.send(&Outgoing {
        headers: shard.shared.welcome_headers(),
        ..Outgoing::bare(Fields::Welcome(welcome), frame.op_id)
    });
    Next::Continue
}

/// What an `auth_failure` event says: who tried, from where, and the code.
fn auth_failure_fields(
    conn: &Conn,
    code: ErrorCode,
    frame: &Frame<'_>,
) -> Vec<(String, shardbus_protocol::container::Value)> {
    use shardbus_protocol::container::Value;
    let claimed = frame
        .headers
        .get("user")
        .or_else(|| frame.headers.get("name"))
        .unwrap_or("");
    vec![
        (
            "remote".into(),
            Value::Str(conn.remote.map(|r| r.to_string()).unwrap_or_default()),
        ),
        ("code".into(), Value::Str(code.name().to_owned())),
        ("user".into(), Value::Str(claimed.to_owned())),
    ]
}
