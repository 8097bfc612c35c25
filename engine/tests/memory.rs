//! What a held connection costs the server: the real `shardbus` binary (its own process, so its
//! resident memory is its own) holds thousands of idle subscribed connections, and the growth
//! of its RSS per connection must stay within a bound. The bound is loose (a debug build, a
//! noisy machine); it catches the kind of regression that made every connection's task 5 KB
//! (a TLS handshake's state kept inline in the session future). `shardbus-bench conns` gives
//! the release figure (`perf/RESULTS.md`).
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use shardbus_protocol::{
    Fields, Frame, HelloOptions, Limits, PROTOCOL_VERSION, encode, next_frame,
};

const BIN: &str = env!("CARGO_BIN_EXE_shardbus");
const WARM: usize = 500;
const MEASURED: usize = 2_500;
/// Bytes of server RSS per idle subscribed connection that fail the test (release: ~2.8 kB).
const BOUND: u64 = 5_000;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// A connection that said HELLO, subscribed to `subject`, and saw the PONG that follows (so
/// the server has handled all three).
fn device(addr: &str, subject: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut out = Vec::new();
    let hello = Frame::new(Fields::Hello {
        version: PROTOCOL_VERSION,
        options: HelloOptions(0),
    });
    encode(&hello, &mut out).unwrap();
    encode(
        &Frame::new(Fields::Sub { sid: 1 }).with_topic(subject),
        &mut out,
    )
    .unwrap();
    encode(&Frame::new(Fields::Ping), &mut out).unwrap();
    stream.write_all(&out).unwrap();
    let mut buf = Vec::new();
    loop {
        while let Some((frame, len)) = next_frame(&buf, &Limits::default()).unwrap() {
            assert!(
                !matches!(frame.fields, Fields::Err { .. }),
                "{:?}",
                frame.fields
            );
            if frame.fields == Fields::Pong {
                return stream;
            }
            buf.drain(..len);
        }
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "the server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn an_idle_subscribed_connection_costs_the_server_a_few_kilobytes() {
    // Both ends of 3,000 connections live in the test machine: the client ends need files.
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard);
    let child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .args(["--shards", "2"])
        .env("SHARDBUS_RUNTIME__IO_MEMORY", "65536")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let mut stderr = BufReader::new(server.0.stderr.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the server exited early"
        );
        if let Some(at) = line.find("listen=") {
            break line[at + 7..].split_whitespace().next().unwrap().to_owned();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));

    let pid = server.0.id();
    let mut held: Vec<TcpStream> = (0..WARM)
        .map(|i| device(&addr, &format!("devices.warm.{i}")))
        .collect();
    let before = rss_of(pid);
    held.extend((0..MEASURED).map(|i| device(&addr, &format!("devices.{i}"))));
    let after = rss_of(pid);
    let per_connection = after.saturating_sub(before) / MEASURED as u64;
    eprintln!("server RSS {before} -> {after} bytes: {per_connection} bytes per connection");
    assert!(
        per_connection < BOUND,
        "{per_connection} bytes of server memory per idle connection (bound {BOUND})"
    );
    drop(held);
}
