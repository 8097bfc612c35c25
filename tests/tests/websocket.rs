//! The WebSocket edge against the real server: binary frames and the JSON mapping, both
//! interoperating with binary TCP clients on the same topics across shards; refusals with
//! their codes and close codes.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::TcpStream;

use serde_json::{Value as Json, json};
use shardbus_protocol::container::{ContainerLimits, Value};
use shardbus_protocol::{
    Fields, Flags, Frame, HelloOptions, Limits, PROTOCOL_VERSION, decode, encode,
};
use shardbus_tests::{PATIENCE, TestServer, http_request};
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

fn connect(server: &TestServer) -> Ws {
    let (ws, response) = tungstenite::connect(format!("ws://{}/ws", server.http)).unwrap();
    assert_eq!(response.status(), 101);
    if let MaybeTlsStream::Plain(stream) = ws.get_ref() {
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
    }
    ws
}

/// A frame as a binary message: encoded, without its 4-byte length prefix.
fn binary(frame: &Frame<'_>) -> Message {
    let mut bytes = Vec::new();
    encode(frame, &mut bytes).unwrap();
    Message::Binary(bytes.split_off(4).into())
}

/// The next binary message as a decoded frame's parts.
fn next_frame(ws: &mut Ws) -> (Fields, Flags, String, Vec<u8>) {
    loop {
        match ws.read().unwrap() {
            Message::Binary(bytes) => {
                let mut whole = (bytes.len() as u32).to_le_bytes().to_vec();
                whole.extend_from_slice(&bytes);
                let frame = decode(&whole, &Limits::default()).unwrap();
                return (
                    frame.fields,
                    frame.flags,
                    frame.topic_str().to_owned(),
                    frame.payload.to_vec(),
                );
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a binary message, got {other:?}"),
        }
    }
}

fn next_json(ws: &mut Ws) -> Json {
    loop {
        match ws.read().unwrap() {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

fn send_json(ws: &mut Ws, value: Json) {
    ws.send(Message::Text(value.to_string().into())).unwrap();
}

/// Reads until the server's close frame; returns it.
fn close_frame(ws: &mut Ws) -> Option<CloseFrame> {
    loop {
        match ws.read() {
            Ok(Message::Close(frame)) => return frame,
            Ok(_) => continue,
            Err(error) => panic!("no close frame: {error}"),
        }
    }
}

fn hello_binary(ws: &mut Ws) -> u16 {
    let hello = Frame::new(Fields::Hello {
        version: PROTOCOL_VERSION,
        options: HelloOptions::HEADERS,
    });
    ws.send(binary(&hello)).unwrap();
    match next_frame(ws).0 {
        Fields::Welcome(welcome) => welcome.shard,
        other => panic!("expected WELCOME, got {other:?}"),
    }
}

#[test]
fn binary_frames_interoperate_with_tcp_clients_on_both_shards() {
    let server = TestServer::start();
    let mut ws = connect(&server);
    hello_binary(&mut ws);
    ws.send(binary(
        &Frame::new(Fields::Sub { sid: 9 }).with_topic("ws.>"),
    ))
    .unwrap();
    ws.send(binary(&Frame::new(Fields::Ping).with_op_id(2)))
        .unwrap();
    assert!(
        matches!(next_frame(&mut ws).0, Fields::Pong),
        "the SUB is in effect everywhere"
    );
    for shard in [0, 1] {
        let client = server.client_on(shard);
        client
            .publish("ws.in", format!("from {shard}").as_bytes())
            .unwrap();
        client.flush().unwrap();
        let (fields, _, topic, payload) = next_frame(&mut ws);
        assert!(matches!(fields, Fields::Msg { sid: 9, .. }), "{fields:?}");
        assert_eq!(
            (topic.as_str(), payload),
            ("ws.in", format!("from {shard}").into_bytes())
        );
    }
    let listener = server.client_on(1);
    let sub = listener.subscribe("ws.out").unwrap();
    listener.flush().unwrap();
    ws.send(binary(
        &Frame::new(Fields::Pub)
            .with_topic("ws.out")
            .with_payload(b"hi tcp"),
    ))
    .unwrap();
    assert_eq!(sub.recv_timeout(PATIENCE).unwrap().payload(), b"hi tcp");
}

#[test]
fn the_json_mapping_interoperates_with_binary_clients_through_containers() {
    let server = TestServer::start();
    let mut ws = connect(&server);
    send_json(&mut ws, json!({"op": "hello", "name": "browser", "id": 1}));
    let welcome = next_json(&mut ws);
    assert_eq!(
        (welcome["op"].clone(), welcome["id"].clone()),
        ("welcome".into(), 1.into())
    );
    assert!(
        welcome["client_id"].is_string(),
        "64-bit ids travel as strings: {welcome}"
    );
    send_json(&mut ws, json!({"op": "sub", "topic": "room.*", "sid": 3}));
    send_json(&mut ws, json!({"op": "ping", "id": 4}));
    assert_eq!(next_json(&mut ws), json!({"op": "pong", "id": 4}));

    // A binary client publishes a container: the browser gets JSON.
    let binary_client = server.client_on(0);
    let value = Value::Map(vec![
        ("temp".into(), Value::F64(21.5)),
        ("ok".into(), Value::Bool(true)),
    ]);
    binary_client.publish_value("room.kitchen", &value).unwrap();
    binary_client.flush().unwrap();
    let msg = next_json(&mut ws);
    assert_eq!(msg["op"], "msg");
    assert_eq!(
        (msg["topic"].clone(), msg["sid"].clone()),
        ("room.kitchen".into(), 3.into())
    );
    assert_eq!(msg["data"], json!({"temp": 21.5, "ok": true}));

    // Plain text stays text.
    binary_client.publish("room.hall", b"just text").unwrap();
    binary_client.flush().unwrap();
    assert_eq!(next_json(&mut ws)["text"], "just text");

    // The browser publishes JSON: the binary client gets a container.
    let sub = binary_client.subscribe("from.browser").unwrap();
    binary_client.flush().unwrap();
    send_json(
        &mut ws,
        json!({"op": "pub", "topic": "from.browser", "data": {"n": [1, 2, 3]}}),
    );
    let got = sub.recv_timeout(PATIENCE).unwrap();
    assert!(got.flags().contains(Flags::CONTAINER));
    let value = got.value(&ContainerLimits::default()).unwrap();
    assert!(value.get("n").is_some(), "{value:?}");
}

#[test]
fn a_json_client_makes_and_answers_requests() {
    let server = TestServer::start();
    let mut responder = connect(&server);
    send_json(&mut responder, json!({"op": "hello"}));
    next_json(&mut responder);
    send_json(
        &mut responder,
        json!({"op": "sub", "topic": "svc.add", "sid": 1}),
    );
    send_json(&mut responder, json!({"op": "ping", "id": 2}));
    next_json(&mut responder);

    let requester = server.client_on(1);
    let asking = std::thread::spawn(move || {
        let reply = requester.request("svc.add", b"2+2", PATIENCE).unwrap();
        reply.payload().to_vec()
    });
    let request = next_json(&mut responder);
    assert_eq!(
        (request["op"].clone(), request["text"].clone()),
        ("msg".into(), "2+2".into())
    );
    let reply = request["reply"]
        .as_str()
        .expect("a reply token string")
        .to_owned();
    send_json(
        &mut responder,
        json!({"op": "resp", "reply": reply, "text": "4"}),
    );
    assert_eq!(asking.join().unwrap(), b"4");

    send_json(
        &mut responder,
        json!({"op": "req", "topic": "svc.nobody", "request_id": 7, "id": 8}),
    );
    let err = next_json(&mut responder);
    assert_eq!(
        (err["op"].clone(), err["name"].clone()),
        ("err".into(), "NO_RESPONDERS".into())
    );
    assert_eq!(err["ref"], "7");
}

#[test]
fn refusals_keep_or_close_the_connection_with_the_right_codes() {
    let server = TestServer::with(|c| c.limits.max_payload = 1024);
    let mut ws = connect(&server);
    send_json(&mut ws, json!({"op": "hello"}));
    next_json(&mut ws);
    send_json(&mut ws, json!({"op": "dance", "id": 5}));
    let err = next_json(&mut ws);
    assert_eq!(
        (err["name"].clone(), err["code"].clone(), err["id"].clone()),
        ("UNKNOWN_OP".into(), 3.into(), 5.into())
    );
    // 600 bytes of JSON, a container of several kilobytes: over max_payload, and the
    // connection stays.
    let zeros = vec![0; 300];
    send_json(
        &mut ws,
        json!({"op": "pub", "id": 8, "topic": "a", "data": zeros}),
    );
    let err = next_json(&mut ws);
    assert_eq!(
        (err["name"].clone(), err["id"].clone()),
        ("PAYLOAD_TOO_LARGE".into(), 8.into())
    );
    send_json(&mut ws, json!({"op": "pub", "topic": "a..b", "text": "x"}));
    assert_eq!(next_json(&mut ws)["name"], "INVALID_TOPIC");
    send_json(&mut ws, json!({"op": "ping", "id": 6}));
    assert_eq!(next_json(&mut ws)["op"], "pong", "still open");
    ws.send(Message::Text("{not json".into())).unwrap();
    assert_eq!(next_json(&mut ws)["name"], "BAD_FRAME");
    let close = close_frame(&mut ws).unwrap();
    assert_eq!(
        (close.code, close.reason.as_str()),
        (CloseCode::Invalid, "BAD_FRAME")
    );

    // Bigger than max_frame: 1009.
    let mut big = connect(&server);
    hello_binary(&mut big);
    big.send(Message::Binary(vec![0u8; 100_000].into()))
        .unwrap();
    assert_eq!(close_frame(&mut big).unwrap().code, CloseCode::Size);

    // A truncated frame in a binary message: BAD_FRAME, then 1007.
    let mut short = connect(&server);
    hello_binary(&mut short);
    short.send(Message::Binary(vec![1u8, 2, 3].into())).unwrap();
    let (fields, ..) = next_frame(&mut short);
    assert!(matches!(fields, Fields::Err { .. }), "{fields:?}");
    assert_eq!(close_frame(&mut short).unwrap().code, CloseCode::Invalid);
}

#[test]
fn an_unknown_op_before_hello_is_hello_required_and_closes() {
    let server = TestServer::start();
    let mut ws = connect(&server);
    send_json(&mut ws, json!({"op": "bogus", "id": 4}));
    let err = next_json(&mut ws);
    assert_eq!(
        (err["name"].clone(), err["id"].clone()),
        ("HELLO_REQUIRED".into(), 4.into())
    );
    assert_eq!(close_frame(&mut ws).unwrap().code, CloseCode::Invalid);
}

#[test]
fn no_hello_in_time_closes_with_policy_violation() {
    let server = TestServer::with(|c| c.limits.hello_timeout_ms = 100);
    let mut ws = connect(&server);
    let close = close_frame(&mut ws).unwrap();
    assert_eq!(
        (close.code, close.reason.as_str()),
        (CloseCode::Policy, "HELLO_TIMEOUT")
    );
}

#[test]
fn a_plain_get_or_another_version_is_refused_over_http() {
    let server = TestServer::start();
    let plain = http_request(server.http, "GET", "/ws", None);
    assert_eq!(
        (plain.status, plain.error_name()),
        (400, "BAD_FRAME".to_owned())
    );
    let old = shardbus_tests::http::exchange(
        server.http,
        b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
          Connection: close\r\n\r\n",
    );
    assert_eq!(
        (old.status, old.header("sec-websocket-version")),
        (426, Some("13"))
    );
}

#[test]
fn a_push_api_publish_reaches_a_websocket_subscriber() {
    let server = TestServer::start();
    let mut ws = connect(&server);
    send_json(&mut ws, json!({"op": "hello"}));
    next_json(&mut ws);
    send_json(&mut ws, json!({"op": "sub", "topic": "alerts.>", "sid": 1}));
    send_json(&mut ws, json!({"op": "ping", "id": 2}));
    next_json(&mut ws);
    let body = r#"{"topic": "alerts.fire", "data": {"floor": 3}, "headers": {"from": "http"}}"#;
    let answer = http_request(server.http, "POST", "/api/v1/publish", Some(body));
    assert_eq!(answer.status, 200, "{}", answer.text());
    let msg = next_json(&mut ws);
    assert_eq!(
        (msg["topic"].clone(), msg["data"].clone()),
        ("alerts.fire".into(), json!({"floor": 3}))
    );
    assert_eq!(msg["headers"], json!({"from": "http"}));
}
