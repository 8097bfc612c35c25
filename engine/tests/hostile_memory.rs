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
    let (child, mut stderr, addr) = start(
        &["--shards", "2"],
        &[("SHARDBUS_RUNTIME__IO_MEMORY", "65536")],
    );
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (Server(child), addr)
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
