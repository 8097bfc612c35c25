//! The WebSocket edge: `GET /ws` on the HTTP listener upgrades to a WebSocket
//! (async-tungstenite over the upgraded connection) whose messages are a client connection's
//! frames: binary messages carry protocol frames without their length prefix, text messages
//! the JSON mapping of the same ops (`json.rs`, PROTOCOL.md §9). A connection answers in the
//! form of its first message.

pub(crate) mod json;
mod session;

use std::net::SocketAddr;
use std::rc::Rc;

use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use futures_lite::{AsyncRead, AsyncWrite};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, SEC_WEBSOCKET_VERSION};
use hyper::{Request, Response, StatusCode};
use shardbus_protocol::ErrorCode;

use crate::http::reply::{self, Body};
use crate::shard::Shard;

/// Bytes tungstenite reads at once per connection (its default, 128 KiB, is a lot for ten
/// thousand browsers).
const READ_BUFFER: usize = 8 << 10;

/// The `/ws` route for what is not a valid handshake (valid ones never reach hyper: see
/// `http::head`): 426 for another WebSocket version, else 400.
pub(crate) fn refuse(request: &Request<Incoming>) -> Response<Body> {
    let version = request.headers().get(SEC_WEBSOCKET_VERSION);
    if version.is_some_and(|v| v.as_bytes() != b"13") {
        let mut refusal = reply::error(
            StatusCode::UPGRADE_REQUIRED,
            ErrorCode::UNSUPPORTED_VERSION,
            "WebSocket version 13 only",
        );
        refusal
            .headers_mut()
            .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return refusal;
    }
    reply::error(
        StatusCode::BAD_REQUEST,
        ErrorCode::BAD_FRAME,
        "not a WebSocket handshake: GET /ws with Upgrade: websocket, Connection: upgrade, \
         Sec-WebSocket-Version: 13 and a Sec-WebSocket-Key",
    )
}

fn config(shard: &Shard) -> WebSocketConfig {
    let max_frame = shard.settings.limits.max_frame as usize;
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(max_frame))
        .max_frame_size(Some(max_frame))
}

/// `/ws-echo` (conformance testing, `http.websocket_echo`): the same handshake, limits and
/// close codes as `/ws`, every data message sent back as it came.
pub(crate) async fn echo<S>(shard: &Shard, io: S)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match async_tungstenite::accept_async_with_config(io, Some(config(shard))).await {
        Ok(stream) => session::echo(stream).await,
        Err(error) => tracing::debug!(%error, "WebSocket handshake failed"),
    }
}

/// Completes the handshake on `io` (whose first bytes are the request head) and serves the
/// WebSocket connection.
pub(crate) async fn accept<S>(shard: Rc<Shard>, io: S, remote: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match async_tungstenite::accept_async_with_config(io, Some(config(&shard))).await {
        Ok(stream) => session::serve(shard, stream, remote).await,
        Err(error) => tracing::debug!(%error, "WebSocket handshake failed"),
    }
}
