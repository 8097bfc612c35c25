//! WebSocket clients that stop reading are cut as TCP ones are: `max_pending` counts what is
//! queued and what is being written, the slow consumer is closed after the linger whether or
//! not it reads, and an administrator's kick closes a WebSocket too.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::TcpStream;

use shardbus_engine::metrics::Metric;
use shardbus_protocol::{Fields, Frame, HelloOptions, Limits, PROTOCOL_VERSION, decode, encode};
use shardbus_tests::{TestServer, http_request, wait_until};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

fn binary(frame: &Frame<'_>) -> Message {
    let mut bytes = Vec::new();
    encode(frame, &mut bytes).unwrap();
    Message::Binary(bytes.split_off(4).into())
}

/// A binary WebSocket client that said HELLO and subscribed to `subject`; returns it and its
/// connection id (WELCOME's `client_id`).
fn subscriber(server: &TestServer, subject: &str) -> (Ws, u64) {
    let (mut ws, _) = tungstenite::connect(format!("ws://{}/ws", server.http)).unwrap();
    ws.send(binary(&Frame::new(Fields::Hello {
        version: PROTOCOL_VERSION,
        options: HelloOptions(0),
    })))
    .unwrap();
    let id = loop {
        if let Message::Binary(bytes) = ws.read().unwrap() {
            let mut whole = (bytes.len() as u32).to_le_bytes().to_vec();
            whole.extend_from_slice(&bytes);
            if let Fields::Welcome(w) = decode(&whole, &Limits::default()).unwrap().fields {
                break w.client_id;
            }
        }
    };
    ws.send(binary(
        &Frame::new(Fields::Sub { sid: 1 }).with_topic(subject),
    ))
    .unwrap();
    ws.send(binary(&Frame::new(Fields::Ping))).unwrap();
    loop {
        if let Message::Binary(bytes) = ws.read().unwrap()
            && bytes.first() == Some(&0x04)
        {
            break;
        }
    }
    (ws, id)
}

#[test]
fn websocket_subscribers_that_never_read_are_cut_and_leave_the_listing() {
    let server = TestServer::with(|config| config.limits.max_pending = 2 << 20);
    // Held open and never read from again.
    let idle: Vec<(Ws, u64)> = (0..4).map(|_| subscriber(&server, "flood")).collect();
    let publisher = server.client_on(0);
    let payload = vec![7u8; 16 << 10];
    for _ in 0..800 {
        publisher.publish("flood", &payload).unwrap();
    }
    publisher.flush().unwrap();
    wait_until("every idle WebSocket to be cut", || {
        server.total(Metric::SlowConsumers) >= 4 && server.total(Metric::Connections) == 1
    });
    let listing = http_request(server.http, "GET", "/api/v1/connections", None).json();
    let ids: Vec<u64> = listing["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_u64().unwrap())
        .collect();
    assert!(idle.iter().all(|(_, id)| !ids.contains(id)), "{listing}");
    drop(idle);
}

#[test]
fn a_kick_closes_a_websocket_that_does_not_read() {
    let server = TestServer::start();
    let (ws, id) = subscriber(&server, "flood");
    // More than the sockets' buffers hold, less than max_pending: a write is pending when the
    // kick comes.
    let publisher = server.client_on(0);
    let payload = vec![7u8; 16 << 10];
    for _ in 0..1200 {
        publisher.publish("flood", &payload).unwrap();
    }
    publisher.flush().unwrap();
    let answer = http_request(
        server.http,
        "DELETE",
        &format!("/api/v1/connections/{id}"),
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    wait_until("the kicked WebSocket to be gone", || {
        server.total(Metric::Connections) == 1
    });
    drop(ws);
}
