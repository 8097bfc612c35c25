//! One WebSocket client connection: the same `Conn`, frame path and outbox as a TCP session,
//! with messages in place of a byte stream. One task both reads messages and writes the
//! outbox (whichever is ready first), so nothing is locked between a reader and a writer.
//! Close codes: 1002 protocol error, 1007 bad data (a closing protocol error such as
//! `BAD_FRAME`), 1008 policy (any other closing code), 1009 a message over `max_frame`,
//! 1001 when the server drains, 1011 an internal fault.
//!
//! A peer that stops reading is cut as a TCP one is: the batch being written counts towards
//! `max_pending` until written, and once the connection is failed (a slow consumer, a kick,
//! a drain) a write or close that the peer does not take within the linger is abandoned and
//! the socket dropped.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use bytes::Bytes;
use futures_lite::{StreamExt, future};
use futures_util::SinkExt;
use shardbus_protocol::{ErrorCode, next_frame};

use super::json;
use crate::metrics::Metric;
use crate::shard::Shard;
use crate::shard::conn::{CLOSE_LINGER, Conn};
use crate::shard::login::verify_password_in_hello;
use crate::shard::read_buffer::ReadBuffer;
use crate::shard::session::{Next, process_input};

/// What a WebSocket runs over (a socket, later a TLS stream).
pub(crate) trait Io: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin {}
impl<S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin> Io for S {}

/// How the connection's frames are written: as its first message came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Binary,
    Json,
}

enum Event {
    Message(Option<Result<Message, WsError>>),
    Outbox(Option<Vec<u8>>),
    HelloTimeout,
}

/// Serves one upgraded connection until either side closes it.
pub(crate) async fn serve<S: Io>(shard: Rc<Shard>, mut ws: WebSocketStream<S>, remote: SocketAddr) {
    if !shard.shared.try_add_connection() {
        shard.metrics.add(Metric::ConnectionsRefused, 1);
        shard.metrics.error(ErrorCode::MAX_CONNECTIONS);
        close(&mut ws, CloseCode::Again, ErrorCode::MAX_CONNECTIONS.name()).await;
        return;
    }
    shard.metrics.add(Metric::Connections, 1);
    shard.metrics.add(Metric::ConnectionsTotal, 1);
    let conn = Rc::new(Conn::new(
        shard.next_conn_id(),
        None,
        Some(remote),
        shard.settings.max_pending,
        shard.write_tick.clone(),
        Arc::clone(&shard.metrics),
    ));
    let (code, reason) = run(&shard, &conn, &mut ws).await;
    conn.outbox.close();
    shard.remove_conn(&conn);
    shard.metrics.sub(Metric::Connections, 1);
    shard.shared.remove_connection();
    if let Some(code) = code {
        future::or(
            close(&mut ws, code, reason),
            glommio::timer::sleep(CLOSE_LINGER),
        )
        .await;
    }
}

/// Echoes every data message until the peer closes (`/ws-echo`).
pub(crate) async fn echo<S: Io>(mut ws: WebSocketStream<S>) {
    while let Some(message) = ws.next().await {
        let message = match message {
            Ok(message @ (Message::Text(_) | Message::Binary(_))) => message,
            Ok(Message::Close(_)) => {
                finish_close(&mut ws).await;
                return;
            }
            Ok(_) => continue,
            Err(error) => {
                if let (Some(code), reason) = close_for(&error) {
                    close(&mut ws, code, reason).await;
                }
                return;
            }
        };
        if ws.send(message).await.is_err() {
            return;
        }
    }
}

/// After the peer's close frame: keeps reading so tungstenite sends the closing reply and the
/// close handshake completes (it ends when the peer closes the socket).
async fn finish_close<S: Io>(ws: &mut WebSocketStream<S>) {
    while let Some(Ok(_)) = ws.next().await {}
}

/// Sends a close frame (a failure just means the peer is gone).
async fn close<S: Io>(ws: &mut WebSocketStream<S>, code: CloseCode, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = ws.close(Some(frame)).await;
}

/// The message and outbox loop; returns the close code to send, if any, and its reason.
async fn run<S: Io>(
    shard: &Rc<Shard>,
    conn: &Rc<Conn>,
    ws: &mut WebSocketStream<S>,
) -> (Option<CloseCode>, &'static str) {
    let mut form = None;
    let mut hello_done = false;
    let mut input = ReadBuffer::new(0);
    let hello_deadline = Instant::now() + shard.settings.hello_timeout;
    loop {
        let event = future::or(
            future::or(async { Event::Message(ws.next().await) }, async {
                Event::Outbox(conn.outbox.next_batch().await)
            }),
            async {
                if hello_done {
                    future::pending::<()>().await;
                }
                let left = hello_deadline.saturating_duration_since(Instant::now());
                glommio::timer::sleep(left).await;
                Event::HelloTimeout
            },
        )
        .await;
        match event {
            Event::Message(Some(Ok(message))) => {
                conn.heard.set(true);
                let bytes: Bytes = match message {
                    Message::Binary(bytes) => {
                        form.get_or_insert(Form::Binary);
                        bytes
                    }
                    Message::Text(text) => {
                        form.get_or_insert(Form::Json);
                        let mut frame = Vec::new();
                        match json::frame_from_json(&text, &shard.settings.limits, &mut frame) {
                            Ok(_) => Bytes::from(frame.split_off(4.min(frame.len()))),
                            Err((id, refusal)) => {
                                refuse_json(conn, hello_done, id, &refusal);
                                continue;
                            }
                        }
                    }
                    Message::Close(_) => {
                        finish_close(ws).await;
                        return (None, "");
                    }
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                };
                if !hello_done {
                    let mut whole = (bytes.len() as u32).to_le_bytes().to_vec();
                    whole.extend_from_slice(&bytes);
                    verify_password_in_hello(shard, conn, &whole).await;
                }
                handle_frame(shard, conn, &mut input, &mut hello_done, &bytes);
                shard.hold_back_own_answers(conn);
                shard.pause_reader().await;
            }
            Event::Message(None) => return (None, ""),
            Event::Message(Some(Err(error))) => return close_for(&error),
            Event::Outbox(Some(batch)) => {
                let writing = write_batch(ws, shard, form.unwrap_or(Form::Binary), &batch);
                let sent = future::or(writing, cut_after_close(conn)).await;
                conn.outbox.written(batch);
                if sent.is_err() {
                    return (None, "");
                }
            }
            Event::Outbox(None) => return close_for_code(conn.closed_with.get()),
            Event::HelloTimeout => conn.fail(
                ErrorCode::HELLO_TIMEOUT,
                0,
                0,
                "HELLO did not arrive in time",
            ),
        }
    }
}

/// Answers a JSON message that did not become a frame, as the binary protocol would: before
/// HELLO anything but a HELLO is `HELLO_REQUIRED` and closes; after it, the refusal's own code
/// (closing or not) with the message's id as `op_id`.
fn refuse_json(conn: &Conn, hello_done: bool, id: u32, refusal: &crate::http::reply::Refusal) {
    if !hello_done && !refusal.code.closes_connection() {
        conn.fail(
            ErrorCode::HELLO_REQUIRED,
            id,
            0,
            "the first message must be hello",
        );
        return;
    }
    conn.error(refusal.code, id, 0, &refusal.message);
}

/// Completes with an error `CLOSE_LINGER` after the connection was failed: a write still
/// pending then is one the peer will not take.
async fn cut_after_close(conn: &Conn) -> Result<(), WsError> {
    while !conn.outbox.is_closed() {
        conn.outbox.drained().await;
    }
    glommio::timer::sleep(CLOSE_LINGER).await;
    Err(WsError::ConnectionClosed)
}

/// Hands one message's frame (without its length prefix) to the shard. A message must hold
/// exactly one frame: one that leaves bytes behind is `BAD_FRAME`.
fn handle_frame(
    shard: &Rc<Shard>,
    conn: &Rc<Conn>,
    input: &mut ReadBuffer,
    hello_done: &mut bool,
    frame: &[u8],
) {
    let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
    input.append(&len.to_le_bytes());
    input.append(frame);
    if let Next::Close = process_input(shard, conn, input, hello_done) {
        return;
    }
    if !input.unread().is_empty() {
        input.clear();
        conn.fail(
            ErrorCode::BAD_FRAME,
            0,
            0,
            "a binary message must hold exactly one whole frame",
        );
    }
}

/// Writes every frame of an outbox batch as one message each, then flushes once. Binary
/// messages are slices of one copy of the batch: one allocation per batch, not per frame.
async fn write_batch<S: Io>(
    ws: &mut WebSocketStream<S>,
    shard: &Shard,
    form: Form,
    batch: &[u8],
) -> Result<(), WsError> {
    let limits = &shard.settings.limits;
    let shared = match form {
        Form::Binary => Bytes::copy_from_slice(batch),
        Form::Json => Bytes::new(),
    };
    let mut at = 0;
    while let Ok(Some((_, len))) = next_frame(batch.get(at..).unwrap_or_default(), limits) {
        let frame = at..at + len;
        at += len;
        let message = match form {
            Form::Binary => Message::Binary(shared.slice(frame.start + 4..frame.end)),
            Form::Json => match json::json_from_frame(batch.get(frame).unwrap_or_default(), limits)
            {
                Some(text) => Message::Text(text.into()),
                None => continue,
            },
        };
        ws.feed(message).await?;
    }
    ws.flush().await
}

fn close_for(error: &WsError) -> (Option<CloseCode>, &'static str) {
    match error {
        WsError::Capacity(_) => (Some(CloseCode::Size), "message too big"),
        WsError::Utf8(_) => (Some(CloseCode::Invalid), "invalid UTF-8"),
        WsError::Protocol(_) => (Some(CloseCode::Protocol), "protocol error"),
        _ => (None, ""),
    }
}

fn close_for_code(code: Option<ErrorCode>) -> (Option<CloseCode>, &'static str) {
    let Some(code) = code else {
        return (Some(CloseCode::Normal), "");
    };
    let close = match code {
        ErrorCode::BAD_FRAME | ErrorCode::FRAME_TOO_LARGE | ErrorCode::HELLO_REQUIRED => {
            CloseCode::Invalid
        }
        ErrorCode::SERVER_DRAINING => CloseCode::Away,
        ErrorCode::INTERNAL => CloseCode::Error,
        _ => CloseCode::Policy,
    };
    (Some(close), code.name())
}
