//! Rate limits against the real server: a flooding connection is held to its rate while
//! another keeps its own; the disconnect policy; payload bytes; a topic pattern's limit; the
//! accept rate. Each flood is sent at once, far faster than the limits refill, and every
//! assertion allows for the refill over however long the run takes.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Instant;

use shardbus_engine::config::{RateLimitPolicy, TopicRateLimit};
use shardbus_protocol::{ErrorCode, Fields, Frame, HelloOptions, encode};
use shardbus_tests::{PATIENCE, Raw, TestServer, http_request, wait_until};

/// Sends `n` PUBs to `subject` in one write, then a PING; returns how many were refused
/// (RATE_LIMITED) before the PONG, and the retry hints they carried.
fn flood(raw: &mut Raw, subject: &str, n: usize, payload: &[u8]) -> (usize, Vec<u32>) {
    for _ in 0..n {
        raw.publish(subject, payload);
    }
    let ping = raw.send(Fields::Ping, b"", b"");
    let mut refused = 0;
    let mut hints = Vec::new();
    loop {
        let frame = raw.next_frame().expect("the PONG");
        match frame.fields {
            Fields::Pong if frame.op_id == ping => return (refused, hints),
            Fields::Err {
                code,
                retry_after_ms,
                ..
            } => {
                assert_eq!(code, ErrorCode::RATE_LIMITED);
                refused += 1;
                hints.push(retry_after_ms);
            }
            _ => {}
        }
    }
}

#[test]
fn a_flooding_connection_is_held_to_its_rate_while_another_keeps_its_own() {
    let server = TestServer::with(|c| c.rate_limits.conn_msgs_per_sec = 10);
    let listener = server.client_on(1);
    let flood_sub = listener.subscribe("flood.x").unwrap();
    let calm_sub = listener.subscribe("calm.x").unwrap();
    listener.flush().unwrap();
    let mut flooder = Raw::hello_on(server.addr, 0, HelloOptions(0));
    let mut calm = Raw::hello_on(server.addr, 0, HelloOptions(0));
    let started = Instant::now();
    let (refused, hints) = flood(&mut flooder, "flood.x", 200, b"x");
    let allowance = 10 + (started.elapsed().as_secs_f64() * 10.0).ceil() as usize;
    let accepted = 200 - refused;
    assert!(
        (10..=allowance).contains(&accepted),
        "{accepted} accepted, allowance {allowance}"
    );
    assert!(hints.iter().all(|&ms| ms > 0 && ms <= 1_000), "{hints:?}");
    let (calm_refused, _) = flood(&mut calm, "calm.x", 10, b"y");
    assert_eq!(calm_refused, 0, "the calm connection has its own bucket");
    for _ in 0..accepted {
        flood_sub.recv_timeout(PATIENCE).unwrap();
    }
    for _ in 0..10 {
        calm_sub.recv_timeout(PATIENCE).unwrap();
    }
    assert!(
        flood_sub.try_recv().unwrap().is_none(),
        "refused messages were not delivered"
    );
    assert_eq!(server.errors(ErrorCode::RATE_LIMITED), refused as u64);
}

#[test]
fn the_disconnect_policy_closes_after_the_refusal() {
    let server = TestServer::with(|c| {
        c.rate_limits.conn_msgs_per_sec = 5;
        c.rate_limits.policy = RateLimitPolicy::Disconnect;
    });
    let mut raw = Raw::hello_on(server.addr, 0, HelloOptions(0));
    // In one write: the server closes after the refusal, and a client still writing frame by
    // frame would get a broken pipe instead of reading the ERR.
    let mut burst = Vec::new();
    for _ in 0..50 {
        let frame = Frame::new(Fields::Pub).with_topic("x.y").with_payload(b"1");
        encode(&frame, &mut burst).unwrap();
    }
    raw.send_bytes(&burst);
    let frames = raw.until_closed();
    let last = frames.last().expect("an ERR before the close");
    assert_eq!(last.err_code(), Some(ErrorCode::RATE_LIMITED));
}

#[test]
fn payload_bytes_and_topic_patterns_have_limits_of_their_own() {
    let server = TestServer::with(|c| {
        c.rate_limits.conn_bytes_per_sec = 1_000;
        c.rate_limits.topics = vec![TopicRateLimit {
            pattern: "chat.>".into(),
            msgs_per_sec: 5,
        }];
    });
    let mut raw = Raw::hello_on(server.addr, 0, HelloOptions(0));
    let started = Instant::now();
    let (refused, _) = flood(&mut raw, "big.x", 20, &[0u8; 500]);
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        20 - refused <= 2 + (seconds * 2.0).ceil() as usize,
        "{refused} of 20 refused"
    );

    let mut other = Raw::hello_on(server.addr, 0, HelloOptions(0));
    let started = Instant::now();
    let (chat_refused, _) = flood(&mut other, "chat.room", 30, b"hi");
    let allowance = 5 + (started.elapsed().as_secs_f64() * 5.0).ceil() as usize;
    assert!(
        30 - chat_refused <= allowance,
        "{chat_refused} of 30 refused"
    );
    let (news_refused, _) = flood(&mut other, "news.x", 30, b"hi");
    assert_eq!(news_refused, 0, "other topics are not limited");
}

#[test]
fn connections_over_the_accept_rate_are_refused_with_rate_limited() {
    let server = TestServer::with(|c| c.rate_limits.accept_per_sec = 3);
    let mut refused = 0;
    for _ in 0..40 {
        let mut raw = Raw::connect(server.addr);
        raw.send(
            Fields::Hello {
                version: shardbus_protocol::PROTOCOL_VERSION,
                options: HelloOptions(0),
            },
            b"",
            b"",
        );
        if raw.next_frame().and_then(|f| f.err_code()) == Some(ErrorCode::RATE_LIMITED) {
            refused += 1;
        }
    }
    assert!(refused > 0, "no connection was refused");
    wait_until("the refusals are counted", || {
        server.errors(ErrorCode::RATE_LIMITED) == refused
    });
}

#[test]
fn the_push_api_answers_429_with_retry_after_when_a_topic_is_over_its_limit() {
    let server = TestServer::with(|c| {
        c.rate_limits.topics = vec![TopicRateLimit {
            pattern: "alerts.>".into(),
            msgs_per_sec: 1,
        }];
    });
    let body = r#"{"topic": "alerts.fire", "text": "!"}"#;
    let started = Instant::now();
    let answers: Vec<_> = (0..20)
        .map(|_| http_request(server.http, "POST", "/api/v1/publish", Some(body)))
        .collect();
    // Each shard has its own bucket (the requests land on either), refilling once a second.
    let allowance = 2 + 2 * started.elapsed().as_secs().saturating_add(1) as usize;
    let accepted = answers.iter().filter(|a| a.status == 200).count();
    assert!(accepted <= allowance, "{accepted} of 20 accepted");
    let limited: Vec<_> = answers.iter().filter(|a| a.status == 429).collect();
    assert_eq!(accepted + limited.len(), 20, "{answers:?}");
    for answer in limited {
        let seconds: u32 = answer.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=2).contains(&seconds), "{answer:?}");
        let error = &answer.json()["error"];
        assert_eq!(error["name"], "RATE_LIMITED", "{answer:?}");
        assert!(error["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0));
    }
}
