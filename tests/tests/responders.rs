//! Who may answer a request: only the connection the request was delivered to (a reply token
//! passed to or guessed by another connection is refused), and only an identity with the
//! `respond` permission on the subject (a subscribe-only guest receives requests it may not
//! answer).
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use shardbus_engine::auth::{Permissions, Rule, TokenConfig};
use shardbus_engine::metrics::Metric;
use shardbus_protocol::{ErrorCode, Fields, HelloOptions};
use shardbus_tests::{Raw, TestServer, sha256_hex};

/// The reply token of the next request `responder` receives.
fn next_request(responder: &mut Raw) -> u64 {
    match responder.next_event().unwrap().fields {
        Fields::Msg { reply, .. } if reply != 0 => reply,
        other => panic!("{other:?}"),
    }
}

fn ask(requester: &mut Raw, subject: &[u8], timeout_ms: u32) {
    let req = Fields::Req {
        request_id: 5,
        timeout_ms,
    };
    requester.send(req, subject, b"?");
}

#[test]
fn only_the_connection_a_request_went_to_may_answer_it() {
    let server = TestServer::start();
    // The thief beside the responder is told so; one on another shard, where the token was
    // never issued, is dropped like a late answer. Either way the genuine answer wins.
    for (responder_shard, thief_shard) in [(0, 0), (1, 1), (1, 0)] {
        let subject = format!("svc.{responder_shard}.{thief_shard}");
        let mut responder = Raw::hello_on(server.addr, responder_shard, HelloOptions(0));
        responder.subscribe(1, &subject, "");
        let mut thief = Raw::hello_on(server.addr, thief_shard, HelloOptions(0));
        let mut requester = Raw::hello_on(server.addr, 0, HelloOptions(0));
        ask(&mut requester, subject.as_bytes(), 30_000);
        let token = next_request(&mut responder);
        let late = server.total(Metric::LateResponses);
        thief.send(Fields::Resp { id: token }, b"", b"forged");
        if responder_shard == thief_shard {
            let err = thief.expect_err();
            assert_eq!(err.err_code(), Some(ErrorCode::PERMISSION_DENIED));
        } else {
            thief.flush();
            assert_eq!(server.total(Metric::LateResponses), late + 1);
        }
        responder.send(Fields::Resp { id: token }, b"", b"genuine");
        let answer = requester.next_event().unwrap();
        assert!(
            matches!(answer.fields, Fields::Resp { id: 5 }),
            "{:?}",
            answer.fields
        );
        assert_eq!(answer.payload, b"genuine");
    }
    assert_eq!(server.total(Metric::ResponsesRefused), 2);
}

#[test]
fn a_guest_receives_requests_but_may_not_answer_them() {
    let server = TestServer::with(|config| {
        config.auth.anonymous_role = "guest".into();
        config.auth.tokens = vec![TokenConfig {
            name: "app".into(),
            sha256: sha256_hex("app-secret"),
            role: "user".into(),
            permissions: None,
        }];
    });
    let mut guest = Raw::hello_on(server.addr, 1, HelloOptions(0));
    guest.subscribe(1, "svc", "");
    let (mut requester, welcome) = Raw::hello_with(server.addr, &[("token", "app-secret")]);
    assert!(matches!(welcome, Fields::Welcome(_)));
    ask(&mut requester, b"svc", 200);
    let token = next_request(&mut guest);
    guest.send(Fields::Resp { id: token }, b"", b"from a guest");
    assert_eq!(
        guest.expect_err().err_code(),
        Some(ErrorCode::PERMISSION_DENIED)
    );
    assert_eq!(requester.expect_err().err_code(), Some(ErrorCode::TIMEOUT));
}

#[test]
fn the_respond_permission_is_separate_from_publish() {
    let server = TestServer::with(|config| {
        config.auth.anonymous_role = "worker".into();
        config.auth.roles.insert(
            "worker".into(),
            Permissions {
                subscribe: Rule::all(),
                request: Rule::all(),
                respond: Some(Rule {
                    allow: vec!["jobs.>".into()],
                    deny: vec![],
                }),
                ..Permissions::default()
            },
        );
    });
    let mut worker = Raw::hello_on(server.addr, 1, HelloOptions(0));
    worker.subscribe(1, "jobs.resize", "");
    let mut requester = Raw::hello_on(server.addr, 0, HelloOptions(0));
    ask(&mut requester, b"jobs.resize", 30_000);
    let token = next_request(&mut worker);
    worker.send(Fields::Resp { id: token }, b"", b"done");
    let answer = requester.next_event().unwrap();
    assert_eq!(answer.payload, b"done");
    // Publishing is still not allowed.
    worker.publish("jobs.resize", b"x");
    assert_eq!(
        worker.expect_err().err_code(),
        Some(ErrorCode::PERMISSION_DENIED)
    );
}
