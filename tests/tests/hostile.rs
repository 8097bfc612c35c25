//! The hostile-input suite: each attack gets its coded answer, costs a bystander
//! nothing, and — the attack run twice, the first to warm the allocator — the server's memory
//! comes back near where it was. One test, so nothing else runs in this process while it
//! reads its resident memory. Other hostile inputs have their own files: rate floods
//! (`rate_limits.rs`), JWT attacks (`jwt.rs`), denied wildcard and queue subscriptions
//! (`auth.rs`), HTTP slowloris and oversized heads (`http.rs`), random bytes (`malformed.rs`).
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::net::TcpStream;

use shardbus_engine::metrics::Metric;
use shardbus_protocol::client::Subscription;
use shardbus_protocol::{ErrorCode, Fields, HeadersBuilder, HelloOptions, PROTOCOL_VERSION};
use shardbus_tests::{PATIENCE, Raw, TestServer, wait_until};

const MAX_CONNECTIONS: u32 = 400;

/// This process's resident memory, bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

fn hello_fields() -> Fields {
    Fields::Hello {
        version: PROTOCOL_VERSION,
        options: HelloOptions(0),
    }
}

/// A frame's first ERR code, then the connection must close.
fn closes_with(raw: &mut Raw, code: ErrorCode, what: &str) {
    let frames = raw.until_closed();
    let first = frames.iter().find_map(|f| f.err_code());
    assert_eq!(first, Some(code), "{what}: {frames:?}");
}

fn length_and_early_ops(server: &TestServer) {
    let mut raw = Raw::connect(server.addr);
    raw.send_bytes(&[0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0]);
    closes_with(
        &mut raw,
        ErrorCode::FRAME_TOO_LARGE,
        "a 0xFFFFFFFF length before HELLO",
    );
    for fields in [
        Fields::Pub,
        Fields::Sub { sid: 1 },
        Fields::Unsub {
            sid: 1,
            max_msgs: 0,
        },
        Fields::Req {
            request_id: 1,
            timeout_ms: 10,
        },
        Fields::Resp { id: 1 },
        Fields::Ping,
        Fields::Pong,
        Fields::Status,
        Fields::Ok,
    ] {
        let topic: &[u8] = match fields {
            Fields::Pub | Fields::Sub { .. } | Fields::Req { .. } => b"t",
            _ => b"",
        };
        let mut raw = Raw::connect(server.addr);
        raw.send(fields, topic, b"");
        closes_with(
            &mut raw,
            ErrorCode::HELLO_REQUIRED,
            &format!("{fields:?} before HELLO"),
        );
    }
}

fn oversized_sections(server: &TestServer) {
    let mut raw = Raw::hello(server.addr, HelloOptions(0));
    let long = "t".repeat(300);
    raw.send(Fields::Pub, long.as_bytes(), b"x");
    assert_eq!(raw.expect_err().err_code(), Some(ErrorCode::INVALID_TOPIC));
    let mut headers = HeadersBuilder::new();
    headers.insert("big", &"v".repeat(5000)).unwrap();
    raw.send_with(Fields::Pub, b"ok", headers.headers(), b"x");
    assert_eq!(raw.expect_err().err_code(), Some(ErrorCode::BAD_HEADERS));
    raw.publish("still.open", b"yes");
    raw.flush();
}

fn partial_frame_then_silence(server: &TestServer) {
    let mut raw = Raw::connect(server.addr);
    raw.send_bytes(&[40, 0, 0, 0, 0x01]);
    closes_with(
        &mut raw,
        ErrorCode::HELLO_TIMEOUT,
        "half a HELLO, then silence",
    );
}

/// 10,000 malformed frames (unknown ops: answered, connection kept) from 50 connections.
fn malformed_storm(server: &TestServer) {
    let mut attackers: Vec<Raw> = (0..50)
        .map(|_| Raw::hello(server.addr, HelloOptions(0)))
        .collect();
    let frame = [12, 0, 0, 0, 0x7e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let burst: Vec<u8> = frame
        .iter()
        .copied()
        .cycle()
        .take(frame.len() * 200)
        .collect();
    for attacker in &mut attackers {
        attacker.send_bytes(&burst);
    }
    for attacker in &mut attackers {
        for _ in 0..200 {
            assert_eq!(
                attacker.expect_err().err_code(),
                Some(ErrorCode::UNKNOWN_OP)
            );
        }
    }
}

fn connections_over_the_limit(server: &TestServer, open: usize) {
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..(MAX_CONNECTIONS as usize + 100 - open) {
        let mut stream = TcpStream::connect(server.addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut raw_hello = Vec::new();
        let frame = shardbus_protocol::Frame::new(hello_fields());
        shardbus_protocol::encode(&frame, &mut raw_hello).unwrap();
        stream.write_all(&raw_hello).unwrap();
        held.push(stream);
    }
    // Every connection stays open until all have their answer: a slot freed early would let
    // a later one in.
    let mut raws: Vec<Raw> = held.into_iter().map(Raw::from_stream).collect();
    for raw in &mut raws {
        let first = raw.next_frame().unwrap();
        match first.fields {
            Fields::Welcome(_) => {}
            Fields::Err { code, .. } => {
                assert_eq!(code, ErrorCode::MAX_CONNECTIONS);
                refused += 1;
            }
            other => panic!("expected WELCOME or MAX_CONNECTIONS, got {other:?}"),
        }
    }
    assert_eq!(
        refused,
        100,
        "exactly the connections over max_connections are refused (server count {}, refused total {})",
        server.total(Metric::Connections),
        server.total(Metric::ConnectionsRefused)
    );
}

/// Everything above once, while a publisher and a subscriber on both shards keep talking.
fn attack_round(server: &TestServer, feed: &Subscription, round: u32) {
    let publisher = server.client_on(1);
    length_and_early_ops(server);
    oversized_sections(server);
    partial_frame_then_silence(server);
    malformed_storm(server);
    for i in 0..100u32 {
        publisher
            .publish("bystander.feed", &i.to_le_bytes())
            .unwrap();
    }
    publisher.flush().unwrap();
    for i in 0..100u32 {
        let got = feed.recv_timeout(PATIENCE).unwrap();
        assert_eq!(
            got.payload(),
            i.to_le_bytes(),
            "round {round}: the bystander's stream"
        );
    }
    // The bystander and the publisher; the attackers' connections are gone first.
    wait_until("the attackers have left", || {
        server.total(Metric::Connections) == 2
    });
    connections_over_the_limit(server, 2);
    drop(publisher);
}

#[test]
fn hostile_inputs_get_their_codes_cost_bystanders_nothing_and_leave_no_memory_behind() {
    let server = TestServer::with(|c| {
        c.limits.max_connections = MAX_CONNECTIONS;
        c.limits.hello_timeout_ms = 300;
    });
    let bystander = server.client_on(0);
    let feed = bystander.subscribe("bystander.feed").unwrap();
    bystander.flush().unwrap();
    let settle = || {
        wait_until("only the bystander is left", || {
            server.total(Metric::Connections) == 1
        });
    };
    attack_round(&server, &feed, 1);
    settle();
    let before = rss();
    attack_round(&server, &feed, 2);
    settle();
    let after = rss();
    let grown = after.saturating_sub(before);
    eprintln!(
        "resident memory: {before} bytes after the first attack round, {after} after the second"
    );
    assert!(
        grown < 16 << 20,
        "resident memory grew by {grown} bytes over a repeated attack ({before} -> {after})"
    );
    assert!(server.errors(ErrorCode::UNKNOWN_OP) >= 20_000);
    assert_eq!(server.errors(ErrorCode::MAX_CONNECTIONS), 200);
    assert!(bystander.is_connected());
}
