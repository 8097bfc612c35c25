//! Request/response through the real server: local and cross-shard responders, no responders,
//! timeouts, late responses, and the in-flight limit.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use shardbus_engine::metrics::Metric;
use shardbus_protocol::client::ClientError;
use shardbus_protocol::{ErrorCode, Fields, HelloOptions};
use shardbus_tests::{PATIENCE, Raw, TestServer, reversing_responder, wait_until};

/// Answers every request on `subject` with the request's payload reversed.
fn responder(server: &TestServer, shard: u16, subject: &str) -> std::thread::JoinHandle<()> {
    reversing_responder(server.client_on(shard), subject)
}

#[test]
fn requests_get_answers_from_responders_on_either_shard() {
    let server = TestServer::start();
    let _local = responder(&server, 0, "svc.local");
    let _remote = responder(&server, 1, "svc.remote");
    let requester = server.client_on(0);
    for subject in ["svc.local", "svc.remote"] {
        for i in 0..50u8 {
            let response = requester.request(subject, &[i, 1], PATIENCE).unwrap();
            assert_eq!(response.payload(), [1, i]);
        }
    }
}

#[test]
fn a_request_nobody_listens_to_fails_at_once_with_no_responders() {
    let server = TestServer::start();
    let requester = server.client_on(1);
    let error = requester
        .request("nobody.home", b"?", PATIENCE)
        .unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::NO_RESPONDERS));
    assert_eq!(server.total(Metric::RequestsNoResponders), 1);
}

#[test]
fn an_unanswered_request_times_out_and_a_late_response_is_dropped_and_counted() {
    let server = TestServer::start();
    let mut responder = Raw::hello_on(server.addr, 1, HelloOptions(0));
    responder.subscribe(1, "slow", "");
    let mut requester = Raw::hello_on(server.addr, 0, HelloOptions(0));
    let op_id = requester.send(
        Fields::Req {
            request_id: 77,
            timeout_ms: 50,
        },
        b"slow",
        b"q",
    );
    let request = responder.next_event().unwrap();
    let Fields::Msg { reply, .. } = request.fields else {
        panic!("{:?}", request.fields);
    };
    assert_ne!(reply, 0);
    let err = requester.expect_err();
    assert_eq!(err.err_code(), Some(ErrorCode::TIMEOUT));
    assert_eq!(err.op_id, op_id);
    let Fields::Err { ref_id, .. } = err.fields else {
        unreachable!()
    };
    assert_eq!(ref_id, 77);
    // Answer after the deadline: dropped, counted, and the requester hears nothing more.
    responder.send(Fields::Resp { id: reply }, b"", b"too late");
    wait_until("the late response to be counted", || {
        server.total(Metric::LateResponses) == 1
    });
    requester.flush();
    assert_eq!(server.total(Metric::RequestsTimedOut), 1);
    assert_eq!(server.total(Metric::RequestsPending), 0);
}

#[test]
fn the_client_library_sees_a_timeout_as_the_server_code() {
    let server = TestServer::start();
    let silent = server.client_on(1);
    let _sub = silent.subscribe("void").unwrap();
    silent.flush().unwrap();
    let requester = server.client_on(0);
    // The client waits a little past the deadline, so the server's TIMEOUT decides.
    match requester.request("void", b"", Duration::from_millis(30)) {
        Err(error @ ClientError::Server { .. }) => {
            assert_eq!(error.code(), Some(ErrorCode::TIMEOUT));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn in_flight_requests_per_connection_are_limited() {
    let server = TestServer::with(|c| c.limits.max_inflight_requests = 2);
    let mut responder = Raw::hello_on(server.addr, 0, HelloOptions(0));
    responder.subscribe(1, "busy", "");
    let mut requester = Raw::hello_on(server.addr, 0, HelloOptions(0));
    for request_id in 1..=3 {
        requester.send(
            Fields::Req {
                request_id,
                timeout_ms: 60_000,
            },
            b"busy",
            b"",
        );
    }
    let err = requester.expect_err();
    assert_eq!(err.err_code(), Some(ErrorCode::TOO_MANY_REQUESTS));
    let Fields::Err { ref_id, .. } = err.fields else {
        unreachable!()
    };
    assert_eq!(ref_id, 3);
    // Answering one frees a slot.
    let first = responder.next_event().unwrap();
    let Fields::Msg { reply, .. } = first.fields else {
        panic!()
    };
    responder.send(Fields::Resp { id: reply }, b"", b"done");
    let response = requester.next_event().unwrap();
    assert!(matches!(response.fields, Fields::Resp { id: 1 }));
    requester.send(
        Fields::Req {
            request_id: 4,
            timeout_ms: 60_000,
        },
        b"busy",
        b"",
    );
    requester.flush();
    assert_eq!(server.errors(ErrorCode::TOO_MANY_REQUESTS), 1);
}
