//! A WebSocket client speaking the JSON mapping (PROTOCOL.md §9.1), over tungstenite: connect,
//! say hello, send objects, read the next one (answering the server's pings on the way).

use std::net::TcpStream;

use serde_json::Value as Json;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::{PATIENCE, TestServer};

/// A JSON WebSocket connection.
pub type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

/// Connects to `/ws`, sends `hello` (a `hello` op) and waits for `welcome`.
pub fn connect(server: &TestServer, hello: Json) -> Ws {
    let (mut ws, _) = tungstenite::connect(format!("ws://{}/ws", server.http)).unwrap();
    if let MaybeTlsStream::Plain(stream) = ws.get_ref() {
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
    }
    send(&mut ws, hello);
    assert_eq!(next(&mut ws)["op"], "welcome");
    ws
}

/// Sends one JSON object.
pub fn send(ws: &mut Ws, value: Json) {
    ws.send(Message::Text(value.to_string().into())).unwrap();
}

/// The next JSON object that is not a `ping` (answered with a `pong`).
pub fn next(ws: &mut Ws) -> Json {
    loop {
        match ws.read().unwrap() {
            Message::Text(text) => {
                let value: Json = serde_json::from_str(&text).unwrap();
                if value["op"] != "ping" {
                    return value;
                }
                send(ws, serde_json::json!({"op": "pong"}));
            }
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}
