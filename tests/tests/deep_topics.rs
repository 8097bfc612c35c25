//! Topics as deep as the configuration allows, and deeper. Routing walks one trie level per
//! token (insert, match, remove, the interest replica, dropping a node), so a 9,000-token
//! pattern once overflowed a shard's stack and aborted the process; `max_topic_tokens` bounds
//! the depth and is refused with its own code, keeping the connection.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use shardbus_protocol::{ErrorCode, Fields, HelloOptions, MAX_TOPIC_TOKENS_CEILING};
use shardbus_tests::{Raw, TestServer};

/// `count` tokens of `token`, dot-separated.
fn deep(token: &str, count: usize) -> String {
    vec![token; count].join(".")
}

/// The largest limits the configuration accepts.
fn deepest() -> TestServer {
    TestServer::with(|config| {
        config.limits.max_topic_len = u16::MAX;
        config.limits.max_topic_tokens = MAX_TOPIC_TOKENS_CEILING;
    })
}

#[test]
fn the_deepest_allowed_patterns_route_across_shards_and_leave_cleanly() {
    let server = deepest();
    let max = usize::from(MAX_TOPIC_TOKENS_CEILING);
    let subject = deep("a", max);
    let mut subscriber = Raw::hello_on(server.addr, 1, HelloOptions(0));
    subscriber.subscribe(1, &subject, "");
    subscriber.subscribe(2, &deep("*", max), "");
    subscriber.subscribe(3, &format!("{}.>", deep("*", max - 1)), "");
    let mut publisher = Raw::hello_on(server.addr, 0, HelloOptions(0));
    publisher.publish(&subject, b"deep");
    publisher.flush();
    let mut sids: Vec<u64> = (0..3)
        .map(|_| match subscriber.next_event().unwrap().fields {
            Fields::Msg { sid, .. } => sid,
            other => panic!("{other:?}"),
        })
        .collect();
    sids.sort_unstable();
    assert_eq!(sids, [1, 2, 3]);
    subscriber.unsubscribe(1, 0);
    subscriber.flush();
    // Leaving with the rest still subscribed drops their trie paths on both shards.
    drop(subscriber);
    let mut again = Raw::hello_on(server.addr, 1, HelloOptions(0));
    again.subscribe(4, &subject, "");
    publisher.publish(&subject, b"still");
    assert!(matches!(
        again.next_event().unwrap().fields,
        Fields::Msg { sid: 4, .. }
    ));
}

#[test]
fn one_token_too_many_is_refused_with_its_code_and_the_connection_stays() {
    let server = deepest();
    let max = usize::from(MAX_TOPIC_TOKENS_CEILING);
    let mut client = Raw::hello(server.addr, HelloOptions(0));
    client.send(Fields::Sub { sid: 1 }, deep("a", max + 1).as_bytes(), b"");
    assert_eq!(
        client.expect_err().err_code(),
        Some(ErrorCode::TOO_MANY_TOKENS)
    );
    // The deepest topic that fits max_topic_len: 32,768 one-byte tokens.
    let widest = deep("a", usize::from(u16::MAX).div_ceil(2));
    client.send(Fields::Pub, widest.as_bytes(), b"x");
    assert_eq!(
        client.expect_err().err_code(),
        Some(ErrorCode::TOO_MANY_TOKENS)
    );
    client.send(Fields::Sub { sid: 2 }, widest.as_bytes(), b"");
    assert_eq!(
        client.expect_err().err_code(),
        Some(ErrorCode::TOO_MANY_TOKENS)
    );
    client.flush();
    assert_eq!(server.errors(ErrorCode::TOO_MANY_TOKENS), 3);
}

#[test]
fn the_default_depth_is_64_tokens() {
    let server = TestServer::start();
    let mut client = Raw::hello(server.addr, HelloOptions(0));
    client.subscribe(1, &deep("b", 64), "");
    client.send(Fields::Sub { sid: 2 }, deep("b", 65).as_bytes(), b"");
    assert_eq!(
        client.expect_err().err_code(),
        Some(ErrorCode::TOO_MANY_TOKENS)
    );
}
