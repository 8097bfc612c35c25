//! The first request head of an HTTP connection, read before hyper sees it, to tell a valid
//! WebSocket handshake on `/ws` (handed to tungstenite: hyper's own upgrades need a `Send`
//! socket, which glommio's is not) from everything else (handed to hyper, which reads the same
//! bytes again). Anything short of a valid handshake goes to hyper, whose `/ws` route explains
//! what is wrong with it.

use std::time::Duration;

use futures_lite::{AsyncRead, AsyncReadExt, future};

/// How a connection's first bytes read.
pub(crate) enum Head {
    /// A valid WebSocket handshake for `/ws`.
    WebSocket(Vec<u8>),
    /// A valid WebSocket handshake for `/ws-echo` (when it is enabled).
    WebSocketEcho(Vec<u8>),
    /// Anything else, possibly incomplete (hyper will judge it).
    Http(Vec<u8>),
    /// `max` bytes arrived without the end of the head.
    TooLarge,
    /// Part of a head arrived, not all of it, within the time allowed (slowloris).
    TimedOut,
    /// Nothing arrived in time, or the peer left.
    Gone,
}

/// Reads until the end of the first request head, `max` bytes, end of stream or `timeout`.
pub(crate) async fn read<S: AsyncRead + Unpin>(
    stream: &mut S,
    max: usize,
    timeout: Duration,
    echo_enabled: bool,
) -> Head {
    let mut head = Vec::with_capacity(1024);
    let reading = async {
        let mut chunk = [0u8; 1024];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return !head.is_empty(),
                Ok(n) => head.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            }
            if head.windows(4).any(|w| w == b"\r\n\r\n") || head.len() >= max {
                return true;
            }
        }
    };
    let timed_out = async {
        glommio::timer::sleep(timeout).await;
        false
    };
    if !future::or(reading, timed_out).await {
        return if head.is_empty() {
            Head::Gone
        } else {
            Head::TimedOut
        };
    }
    if head.len() >= max && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        return Head::TooLarge;
    }
    match websocket_path(&head) {
        Some("/ws") => Head::WebSocket(head),
        Some("/ws-echo") if echo_enabled => Head::WebSocketEcho(head),
        _ => Head::Http(head),
    }
}

/// The path of a valid WebSocket handshake: `GET` with `Upgrade: websocket`,
/// `Connection: upgrade`, version 13 and a well-formed key.
fn websocket_path(head: &[u8]) -> Option<&str> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    if !matches!(request.parse(head), Ok(httparse::Status::Complete(_))) {
        return None;
    }
    let path = request.path.unwrap_or("");
    let path = path.split('?').next().unwrap_or("");
    if request.method != Some("GET") {
        return None;
    }
    let headers: Vec<(&str, &str)> = request
        .headers
        .iter()
        .filter_map(|h| Some((h.name, std::str::from_utf8(h.value).ok()?)))
        .collect();
    let value = |name: &'static str| {
        headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    let has_token = |name: &'static str, token: &str| {
        value(name).any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    let key_ok = value("sec-websocket-key").any(|k| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(k.trim())
            .is_ok_and(|key| key.len() == 16)
    });
    let valid = has_token("upgrade", "websocket")
        && has_token("connection", "upgrade")
        && value("sec-websocket-version").any(|v| v.trim() == "13")
        && key_ok;
    valid.then_some(path)
}
