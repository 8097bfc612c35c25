//! Memory a peer can make the real binary hold: never more than what it has sent, within a
//! configured bound. Each case measures the server process's resident memory around many
//! hostile connections (the server is its own process, so its RSS is its own).
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use shardbus_protocol::{
    ErrorCode, Fields, Frame, HelloOptions, Limits, PROTOCOL_VERSION, encode, next_frame,
};
use support::{Server, rss_of, start};

/// Connections each case opens.
const PEERS: usize = 200;
/// What the server may hold for each, beyond what it sent (its session, its socket).
const PER_PEER: u64 = 32 << 10;

/// A length prefix announcing the largest frame the default limits accept, and one byte of it.
fn announce_max_frame() -> Vec<u8> {
    let mut bytes = (Limits::default().max_frame - 4).to_le_bytes().to_vec();
    bytes.push(0x10);
    bytes
}

fn hello() -> Vec<u8> {
    let mut out = Vec::new();
    let hello = Frame::new(Fields::Hello {
        version: PROTOCOL_VERSION,
        options: HelloOptions(0),
    });
    encode(&hello, &mut out).unwrap();
    encode(&Frame::new(Fields::Ping), &mut out).unwrap();
    out
}

/// Reads frames until `until` accepts one; panics if the server closes first.
fn read_until(stream: &mut TcpStream, mut until: impl FnMut(&Fields) -> bool) -> Fields {
    let mut buf = Vec::new();
    loop {
        while let Some((frame, len)) = next_frame(&buf, &Limits::default()).unwrap() {
            if until(&frame.fields) {
                return frame.fields;
            }
            buf.drain(..len);
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "the server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn server() -> (Server, String) {
    let (server, addr, _) = server_with(&[]);
    (server, addr)
}

/// The binary with extra `SHARDBUS_*` settings: the server, its address, its HTTP address.
fn server_with(envs: &[(&str, &str)]) -> (Server, String, String) {
    let mut all = vec![("SHARDBUS_RUNTIME__IO_MEMORY", "65536")];
    all.extend_from_slice(envs);
    let (child, mut stderr, addr) = start(&["--shards", "2"], &all);
    let mut line = String::new();
    let http = loop {
        line.clear();
        assert!(std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0);
        if let Some(at) = line.find("http=") {
            break line[at + 5..].split_whitespace().next().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (Server(child), addr, http)
}

fn frame(fields: Fields, topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode(
        &Frame::new(fields).with_topic(topic).with_payload(payload),
        &mut out,
    )
    .unwrap();
    out
}

fn connect(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream
}

#[test]
fn an_announced_frame_before_hello_is_refused_and_costs_nothing() {
    let (server, addr) = server();
    let before = rss_of(server.0.id());
    let held: Vec<TcpStream> = (0..PEERS)
        .map(|_| {
            let mut stream = connect(&addr);
            stream.write_all(&announce_max_frame()).unwrap();
            let err = read_until(&mut stream, |f| matches!(f, Fields::Err { .. }));
            assert!(
                matches!(err, Fields::Err { code, .. } if code == ErrorCode::FRAME_TOO_LARGE),
                "{err:?}"
            );
            stream
        })
        .collect();
    let grown = rss_of(server.0.id()).saturating_sub(before);
    eprintln!("{PEERS} announced 1 MiB frames before HELLO: server RSS +{grown} bytes");
    assert!(
        grown < PEERS as u64 * PER_PEER,
        "server RSS grew {grown} bytes"
    );
    drop(held);
}

#[test]
fn an_announced_frame_after_hello_costs_what_arrived_not_what_was_announced() {
    let (server, addr) = server();
    let before = rss_of(server.0.id());
    let held: Vec<TcpStream> = (0..PEERS)
        .map(|_| {
            let mut stream = connect(&addr);
            stream.write_all(&hello()).unwrap();
            read_until(&mut stream, |f| *f == Fields::Pong);
            stream.write_all(&announce_max_frame()).unwrap();
            stream
        })
        .collect();
    // A PING on one more connection of each shard: each shard has read what came before it
    // (the kernel spreads connections, so settle with several).
    for _ in 0..8 {
        let mut probe = connect(&addr);
        probe.write_all(&hello()).unwrap();
        read_until(&mut probe, |f| *f == Fields::Pong);
    }
    let grown = rss_of(server.0.id()).saturating_sub(before);
    eprintln!("{PEERS} announced 1 MiB frames after HELLO: server RSS +{grown} bytes");
    assert!(
        grown < PEERS as u64 * PER_PEER,
        "server RSS grew {grown} bytes"
    );
    drop(held);
}

#[test]
fn requests_abandoned_by_reconnecting_requesters_are_not_kept() {
    let (server, addr) = server();
    // A live responder that reads every request and answers none.
    let mut responder = connect(&addr);
    responder.write_all(&hello()).unwrap();
    read_until(&mut responder, |f| *f == Fields::Pong);
    responder
        .write_all(&frame(Fields::Sub { sid: 1 }, "silent", b""))
        .unwrap();
    let drain = std::thread::spawn(move || {
        let mut sink = vec![0u8; 64 << 10];
        while matches!(responder.read(&mut sink), Ok(n) if n > 0) {}
    });
    let request = |i: u64| {
        frame(
            Fields::Req {
                request_id: i,
                timeout_ms: u32::MAX,
            },
            "silent",
            b"?",
        )
    };
    let round = || {
        let mut requester = connect(&addr);
        let mut out = hello();
        for i in 0..50 {
            out.extend_from_slice(&request(i));
        }
        encode(&Frame::new(Fields::Ping).with_op_id(7), &mut out).unwrap();
        requester.write_all(&out).unwrap();
        read_until(&mut requester, |f| *f == Fields::Pong);
    };
    for _ in 0..100 {
        round();
    }
    let before = rss_of(server.0.id());
    for _ in 0..1_000 {
        round();
    }
    let grown = rss_of(server.0.id()).saturating_sub(before);
    eprintln!("50,000 abandoned requests: server RSS +{grown} bytes");
    // Kept, 50,000 requests with their indexes and tokens held ~10 MB.
    assert!(grown < 4 << 20, "server RSS grew {grown} bytes");
    drop(server);
    let _ = drain.join();
}

#[test]
fn websocket_subscribers_that_never_read_hold_no_more_than_max_pending() {
    let (server, addr, http) = server_with(&[("SHARDBUS_LIMITS__MAX_PENDING", "2097152")]);
    let idle: Vec<_> = (0..3)
        .map(|_| {
            let (mut ws, _) = tungstenite::connect(format!("ws://{http}/ws")).unwrap();
            let mut hello = Vec::new();
            let frame = Frame::new(Fields::Hello {
                version: PROTOCOL_VERSION,
                options: HelloOptions(0),
            });
            encode(&frame, &mut hello).unwrap();
            encode(
                &Frame::new(Fields::Sub { sid: 1 }).with_topic("bulk"),
                &mut hello,
            )
            .unwrap();
            encode(&Frame::new(Fields::Ping), &mut hello).unwrap();
            // One frame per binary message, without the length prefix.
            let mut at = 0;
            while let Some((_, len)) = next_frame(&hello[at..], &Limits::default()).unwrap() {
                let message = hello[at + 4..at + len].to_vec();
                ws.send(tungstenite::Message::Binary(message.into()))
                    .unwrap();
                at += len;
            }
            loop {
                if let tungstenite::Message::Binary(bytes) = ws.read().unwrap()
                    && bytes.first() == Some(&0x04)
                {
                    break ws;
                }
            }
        })
        .collect();
    let before = rss_of(server.0.id());
    let mut publisher = connect(&addr);
    publisher.write_all(&hello()).unwrap();
    read_until(&mut publisher, |f| *f == Fields::Pong);
    let payload = vec![7u8; 16 << 10];
    for _ in 0..800 {
        publisher
            .write_all(&frame(Fields::Pub, "bulk", &payload))
            .unwrap();
    }
    encode_ping_and_wait(&mut publisher);
    let grown = rss_of(server.0.id()).saturating_sub(before);
    eprintln!("3 never-reading WebSockets, 12.8 MB published to each: server RSS +{grown} bytes");
    // Each is cut at max_pending (2 MiB): until then it may hold its queue, the batch in
    // flight (counted in max_pending) and the WebSocket layer's copy of that batch, under
    // 6 × max_pending; without the cut they stayed, each holding it for good.
    assert!(grown < 3 * 6 * (2 << 20), "server RSS grew {grown} bytes");
    drop(idle);
}

#[test]
fn stalled_http_bodies_are_cut_and_cost_little() {
    let (server, _, http) = server_with(&[
        ("SHARDBUS_HTTP__BODY_TIMEOUT_MS", "300"),
        ("SHARDBUS_AUTH__HTTP_OPEN", "true"),
    ]);
    let before = rss_of(server.0.id());
    let mut stalled: Vec<TcpStream> = (0..PEERS)
        .map(|_| {
            let mut stream = connect(&http);
            stream
                .write_all(
                    b"POST /api/v1/publish HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{\"topic\"",
                )
                .unwrap();
            stream
        })
        .collect();
    for stream in &mut stalled {
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        assert!(
            answer.starts_with(b"HTTP/1.1 408"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }
    let grown = rss_of(server.0.id()).saturating_sub(before);
    eprintln!("{PEERS} stalled HTTP bodies: server RSS +{grown} bytes");
    // An HTTP connection in progress holds hyper's buffers (~24 kB measured) until its 408.
    assert!(
        grown < 2 * PEERS as u64 * PER_PEER,
        "server RSS grew {grown} bytes"
    );
}

/// PING, then wait for its PONG: the server has handled everything sent before.
fn encode_ping_and_wait(stream: &mut TcpStream) {
    let mut ping = Vec::new();
    encode(&Frame::new(Fields::Ping), &mut ping).unwrap();
    stream.write_all(&ping).unwrap();
    read_until(stream, |f| *f == Fields::Pong);
}
