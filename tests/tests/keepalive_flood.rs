//! A connection that floods the server must not starve the shard's timers: keepalive keeps its
//! cadence (the flooding client, which answers PINGs, is never closed as stale) and request
//! deadlines on the same shard still fire while it floods.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use shardbus_engine::metrics::Metric;
use shardbus_protocol::{
    Check, ErrorCode, Fields, Frame, HelloOptions, Limits, check, decode, encode,
};
use shardbus_tests::{PATIENCE, Raw, TestServer};

/// How long the flood lasts: many keepalive intervals.
const FLOOD: Duration = Duration::from_secs(3);

/// Answers the PINGs among what `stream` has to read now; returns how many, and the code of
/// an ERR if one came.
fn answer_pings(stream: &mut std::net::TcpStream, buf: &mut Vec<u8>) -> (u32, Option<ErrorCode>) {
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk) {
        Ok(n) => buf.extend_from_slice(&chunk[..n]),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        Err(_) => return (0, None),
    }
    let mut pong = Vec::new();
    encode(&Frame::new(Fields::Pong), &mut pong).unwrap();
    let mut pings = 0;
    while let Ok(Check::Complete { frame_len }) = check(buf, &Limits::default()) {
        let fields = decode(&buf[..frame_len], &Limits::default())
            .unwrap()
            .fields;
        buf.drain(..frame_len);
        match fields {
            Fields::Ping => {
                pings += 1;
                stream.write_all(&pong).unwrap();
            }
            Fields::Err { code, .. } => return (pings, Some(code)),
            _ => {}
        }
    }
    (pings, None)
}

/// A subscriber on the other shard that reads slowly: the server pauses the flooder for it
/// (backpressure), so the flooder's input, its PONGs among it, queues up in the sockets.
fn slow_subscriber(server: &TestServer, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let mut raw = Raw::hello_on(server.addr, 1, HelloOptions(0));
    raw.subscribe(1, "flood", "");
    let mut stream = raw.stream().try_clone().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(1)))
        .unwrap();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            answer_pings(&mut stream, &mut buf);
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(raw);
    });
}

#[test]
fn a_flooding_publisher_keeps_its_keepalive_and_the_shards_timers_keep_running() {
    let server = TestServer::with(|config| {
        config.limits.ping_interval_ms = 200;
        config.limits.max_pending = 4 << 20;
    });
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    slow_subscriber(&server, std::sync::Arc::clone(&stop));
    let flooder = Raw::hello_on(server.addr, 0, HelloOptions(0));
    let mut stream = flooder.stream().try_clone().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(1)))
        .unwrap();
    // A requester on the flooder's shard whose request nobody answers, asked before the flood:
    // its TIMEOUT must come while the flood goes on.
    let mut silent = Raw::hello_on(server.addr, 1, HelloOptions(0));
    silent.subscribe(1, "void", "");
    let mut requester = Raw::hello_on(server.addr, 0, HelloOptions(0));
    let req = Fields::Req {
        request_id: 1,
        timeout_ms: 50,
    };
    requester.send(req, b"void", b"?");
    let mut asking = requester.stream().try_clone().unwrap();
    asking
        .set_read_timeout(Some(Duration::from_millis(1)))
        .unwrap();
    let (mut asking_buf, mut timed_out) = (Vec::new(), None);

    let mut burst = Vec::new();
    let publish = Frame::new(Fields::Pub)
        .with_topic("flood")
        .with_payload(b"0123456789abcdef");
    for _ in 0..10_000 {
        encode(&publish, &mut burst).unwrap();
    }
    let (mut buf, mut pings) = (Vec::new(), 0);
    let started = Instant::now();
    while started.elapsed() < FLOOD {
        if stream.write_all(&burst).is_err() {
            panic!(
                "the server closed the flooder mid-flood (stale connections: {})",
                server.total(Metric::StaleConnections)
            );
        }
        let (answered, err) = answer_pings(&mut stream, &mut buf);
        assert_eq!(err, None, "the flooder got an ERR");
        pings += answered;
        if timed_out.is_none() {
            timed_out = answer_pings(&mut asking, &mut asking_buf).1;
        }
    }
    assert_eq!(
        timed_out,
        Some(ErrorCode::TIMEOUT),
        "the request's deadline did not fire during the flood"
    );
    assert!(pings >= 2, "{pings} PINGs reached the flooder in {FLOOD:?}");
    // Still open: a PING of its own gets its PONG, and no ERR came first.
    let mut ping = Vec::new();
    encode(&Frame::new(Fields::Ping).with_op_id(77), &mut ping).unwrap();
    stream.write_all(&ping).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    loop {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).unwrap_or(0);
        assert!(
            n > 0,
            "the server closed the flooder (stale: {})",
            server.total(Metric::StaleConnections)
        );
        buf.extend_from_slice(&chunk[..n]);
        let mut ponged = false;
        while let Ok(Check::Complete { frame_len }) = check(&buf, &Limits::default()) {
            let frame = decode(&buf[..frame_len], &Limits::default()).unwrap();
            assert!(
                !matches!(frame.fields, Fields::Err { .. }),
                "the flooder got {:?}",
                frame.fields
            );
            ponged |= frame.fields == Fields::Pong && frame.op_id == 77;
            buf.drain(..frame_len);
        }
        if ponged {
            break;
        }
    }
    eprintln!(
        "{pings} PINGs; msgs_in {}, publisher stalls {}, slow consumers {}",
        server.total(Metric::MsgsIn),
        server.total(Metric::PublisherStalls),
        server.total(Metric::SlowConsumers)
    );
    drop(flooder);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
}
