//! Every configured limit is enforced and answered with its PROTOCOL.md code, and counted.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use shardbus_engine::metrics::Metric;
use shardbus_protocol::{ErrorCode, Fields, HeadersBuilder, HelloOptions};
use shardbus_tests::{Raw, TestServer, wait_until};

fn last_code(raw: &mut Raw) -> Option<ErrorCode> {
    raw.until_closed().last().and_then(|f| f.err_code())
}

#[test]
fn payload_topic_and_headers_limits_answer_their_codes_and_keep_the_connection() {
    let server = TestServer::with(|c| {
        c.limits.max_payload = 100;
        c.limits.max_topic_len = 10;
        c.limits.max_headers_len = 32;
        c.limits.max_pending = 64 << 10;
    });
    let mut raw = Raw::hello(server.addr, HelloOptions(0));
    assert_eq!(raw.welcome.unwrap().max_payload, 100);
    raw.publish("ok", &[0; 100]);
    raw.publish("ok", &[0; 101]);
    assert_eq!(
        raw.expect_err().err_code(),
        Some(ErrorCode::PAYLOAD_TOO_LARGE)
    );
    raw.publish("abcdefghij", b"");
    raw.publish("abcdefghijk", b"");
    assert_eq!(raw.expect_err().err_code(), Some(ErrorCode::INVALID_TOPIC));
    let mut headers = HeadersBuilder::new();
    headers.insert("k", &"v".repeat(40)).unwrap();
    raw.send_with(Fields::Pub, b"ok", headers.headers(), b"");
    assert_eq!(raw.expect_err().err_code(), Some(ErrorCode::BAD_HEADERS));
    raw.flush();
    assert_eq!(server.errors(ErrorCode::PAYLOAD_TOO_LARGE), 1);
    assert_eq!(server.errors(ErrorCode::INVALID_TOPIC), 1);
    assert_eq!(server.errors(ErrorCode::BAD_HEADERS), 1);
}

#[test]
fn a_frame_over_max_frame_closes_the_connection() {
    let server = TestServer::with(|c| {
        c.limits.max_payload = 100;
        c.limits.max_pending = 64 << 10;
    });
    let mut raw = Raw::hello(server.addr, HelloOptions(0));
    let max_frame = raw.welcome.unwrap().max_frame;
    let mut header = (max_frame - 3).to_le_bytes().to_vec();
    header.extend_from_slice(&[0x10; 12]);
    raw.send_bytes(&header);
    assert_eq!(last_code(&mut raw), Some(ErrorCode::FRAME_TOO_LARGE));
}

#[test]
fn subscriptions_per_connection_are_limited() {
    let server = TestServer::with(|c| c.limits.max_subscriptions = 3);
    let mut raw = Raw::hello(server.addr, HelloOptions(0));
    for sid in 1..=4 {
        raw.send(Fields::Sub { sid }, format!("s.{sid}").as_bytes(), b"");
    }
    let err = raw.expect_err();
    assert_eq!(err.err_code(), Some(ErrorCode::TOO_MANY_SUBSCRIPTIONS));
    assert!(matches!(err.fields, Fields::Err { ref_id: 4, .. }));
    raw.send(Fields::Sub { sid: 2 }, b"again", b"");
    assert_eq!(
        raw.expect_err().err_code(),
        Some(ErrorCode::DUPLICATE_SUBSCRIPTION)
    );
    raw.send(Fields::Sub { sid: 9 }, b"q", b"two.tokens");
    assert_eq!(
        raw.expect_err().err_code(),
        Some(ErrorCode::INVALID_QUEUE_GROUP)
    );
    raw.flush();
    assert_eq!(server.total(Metric::Subscriptions), 3);
}

#[test]
fn connections_past_the_limit_are_refused_with_max_connections() {
    let server = TestServer::with(|c| c.limits.max_connections = 3);
    let _held: Vec<Raw> = (0..3)
        .map(|_| Raw::hello(server.addr, HelloOptions(0)))
        .collect();
    let mut refused = Raw::connect(server.addr);
    assert_eq!(last_code(&mut refused), Some(ErrorCode::MAX_CONNECTIONS));
    assert_eq!(server.total(Metric::ConnectionsRefused), 1);
}

#[test]
fn a_silent_connection_gets_hello_timeout() {
    let server = TestServer::with(|c| c.limits.hello_timeout_ms = 100);
    let mut raw = Raw::connect(server.addr);
    assert_eq!(last_code(&mut raw), Some(ErrorCode::HELLO_TIMEOUT));
}

#[test]
fn a_client_that_leaves_two_pings_unanswered_is_stale() {
    let server = TestServer::with(|c| c.limits.ping_interval_ms = 50);
    let mut raw = Raw::hello(server.addr, HelloOptions(0));
    let frames = raw.until_closed();
    let pings = frames
        .iter()
        .filter(|f| matches!(f.fields, Fields::Ping))
        .count();
    assert_eq!(pings, 2);
    assert_eq!(
        frames.last().and_then(|f| f.err_code()),
        Some(ErrorCode::STALE_CONNECTION)
    );
    wait_until("the stale close to be counted", || {
        server.total(Metric::StaleConnections) == 1
    });
}

#[test]
fn a_client_answering_pings_stays_connected() {
    let server = TestServer::with(|c| c.limits.ping_interval_ms = 20);
    let mut raw = Raw::hello(server.addr, HelloOptions(0));
    let mut pings = 0;
    while pings < 5 {
        let frame = raw.next_frame().expect("still connected");
        if matches!(frame.fields, Fields::Ping) {
            pings += 1;
            raw.send(Fields::Pong, b"", b"");
        }
    }
    raw.flush();
}

#[test]
fn a_slow_consumer_is_cut_while_the_others_keep_receiving() {
    const MESSAGES: u32 = 40_000;
    let server = TestServer::with(|c| {
        c.limits.max_payload = 1024;
        c.limits.max_pending = 64 << 10;
    });
    let mut slow = Raw::hello_on(server.addr, 1, HelloOptions(0));
    slow.subscribe(1, "firehose", "");
    let mut healthy = Raw::hello_on(server.addr, 1, HelloOptions(0));
    healthy.subscribe(1, "firehose", "");
    let addr = server.addr;
    // The publisher stays at most 16 messages (16 KiB) ahead of the healthy subscriber, so
    // only the one that never reads can reach max_pending.
    let received = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let progress = std::sync::Arc::clone(&received);
    let publisher = std::thread::spawn(move || {
        let mut publisher = Raw::hello_on(addr, 0, HelloOptions(0));
        for i in 0..MESSAGES {
            while i >= progress.load(std::sync::atomic::Ordering::Acquire) + 16 {
                std::thread::yield_now();
            }
            let mut payload = [0u8; 1024];
            payload[..4].copy_from_slice(&i.to_le_bytes());
            publisher.publish("firehose", &payload);
        }
        publisher.flush();
    });
    // The slow one reads nothing until it has been cut.
    for i in 0..MESSAGES {
        let frame = healthy
            .next_event()
            .expect("the healthy subscriber keeps receiving");
        assert_eq!(frame.payload[..4], i.to_le_bytes());
        received.store(i + 1, std::sync::atomic::Ordering::Release);
    }
    publisher.join().unwrap();
    assert_eq!(server.total(Metric::SlowConsumers), 1);
    assert_eq!(server.errors(ErrorCode::SLOW_CONSUMER), 1);
    let frames = slow.until_closed();
    assert!(
        frames.len() < MESSAGES as usize,
        "the slow consumer did not get everything"
    );
}
