//! What requests can make a shard hold: a requester's pending requests end when it goes, the
//! server caps deadlines, and in-flight requests are capped per identity and per shard, so
//! reconnecting does not get round the per-connection cap.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use shardbus_engine::metrics::Metric;
use shardbus_protocol::{ErrorCode, Fields, HelloOptions};
use shardbus_tests::{Raw, TestServer, wait_until};

fn request(raw: &mut Raw, request_id: u64, subject: &[u8]) {
    raw.send(
        Fields::Req {
            request_id,
            timeout_ms: u32::MAX,
        },
        subject,
        b"?",
    );
}

#[test]
fn a_requester_that_leaves_ends_its_requests_and_a_later_answer_is_dropped() {
    let server = TestServer::start();
    // A live responder that reads every request and answers none until the end.
    let mut responder = Raw::hello_on(server.addr, 1, HelloOptions(0));
    responder.subscribe(1, "silent", "");
    for round in 0..100u64 {
        let mut requester = Raw::hello_on(server.addr, (round % 2) as u16, HelloOptions(0));
        for i in 0..50 {
            request(&mut requester, i, b"silent");
        }
        requester.flush();
        drop(requester);
    }
    let mut tokens = Vec::new();
    while tokens.len() < 5_000 {
        if let Fields::Msg { reply, .. } = responder.next_event().unwrap().fields {
            tokens.push(reply);
        }
    }
    wait_until("every abandoned request to end", || {
        server.total(Metric::RequestsPending) == 0
            && server.total(Metric::RequestsAbandoned) == 5_000
    });
    for &reply in tokens.iter().take(10) {
        responder.send(Fields::Resp { id: reply }, b"", b"late");
    }
    wait_until("the answers to be counted late", || {
        server.total(Metric::LateResponses) == 10
    });
}

#[test]
fn a_deadline_past_the_servers_maximum_is_shortened_to_it() {
    let server = TestServer::with(|config| config.limits.max_request_timeout_ms = 50);
    let mut responder = Raw::hello_on(server.addr, 0, HelloOptions(0));
    responder.subscribe(1, "silent", "");
    let mut requester = Raw::hello_on(server.addr, 1, HelloOptions(0));
    request(&mut requester, 9, b"silent");
    assert_eq!(requester.expect_err().err_code(), Some(ErrorCode::TIMEOUT));
}

#[test]
fn one_identity_cannot_get_round_the_cap_with_more_connections() {
    let server = TestServer::with(|config| {
        config.limits.max_inflight_requests = 100;
        config.limits.max_inflight_requests_per_identity = 10;
    });
    let mut responder = Raw::hello_on(server.addr, 0, HelloOptions(0));
    responder.subscribe(1, "silent", "");
    let mut first = Raw::hello_on(server.addr, 0, HelloOptions(0));
    for i in 0..6 {
        request(&mut first, i, b"silent");
    }
    first.flush();
    let mut second = Raw::hello_on(server.addr, 0, HelloOptions(0));
    for i in 0..4 {
        request(&mut second, i, b"silent");
    }
    second.flush();
    request(&mut second, 99, b"silent");
    let err = second.expect_err();
    assert_eq!(err.err_code(), Some(ErrorCode::TOO_MANY_REQUESTS));
    assert!(matches!(err.fields, Fields::Err { ref_id: 99, .. }));
    drop(first);
    wait_until("the first connection's requests to end", || {
        server.total(Metric::RequestsAbandoned) == 6
    });
    request(&mut second, 100, b"silent");
    second.flush();
    assert_eq!(server.errors(ErrorCode::TOO_MANY_REQUESTS), 1);
}

#[test]
fn a_shard_caps_its_requests_in_all() {
    let server = TestServer::with(|config| config.limits.max_inflight_requests_per_shard = 5);
    let mut responder = Raw::hello_on(server.addr, 1, HelloOptions(0));
    responder.subscribe(1, "silent", "");
    let mut requester = Raw::hello_on(server.addr, 0, HelloOptions(0));
    for i in 0..5 {
        request(&mut requester, i, b"silent");
    }
    request(&mut requester, 5, b"silent");
    assert_eq!(
        requester.expect_err().err_code(),
        Some(ErrorCode::TOO_MANY_REQUESTS)
    );
}
