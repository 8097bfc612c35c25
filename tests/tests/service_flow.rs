//! Flow control per service against the real server: `max_concurrent` slots over every
//! requester and instance, a FIFO wait queue behind them with its timeout, `SERVICE_BUSY` with
//! a retry-after past both, a rate over all requesters; the gate's depth in the services
//! report; a requester that goes while queued leaves nothing behind.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use shardbus_engine::services::ServiceConfig;
use shardbus_protocol::{ErrorCode, Fields, HelloOptions};
use shardbus_tests::raw::Raw;
use shardbus_tests::{TestServer, http_request, wait_until};

fn server(config: ServiceConfig) -> TestServer {
    TestServer::with(|c| c.services = vec![config])
}

/// An instance of `name` on `shard` that answers only when told.
fn instance(server: &TestServer, shard: u16, name: &str) -> Raw {
    let mut raw = Raw::hello_on(server.addr, shard, HelloOptions::default());
    raw.register(name, &[(&format!("{name}.ask"), 1)], 60_000);
    raw
}

/// The next request an instance got: its reply token and payload.
fn next_request(raw: &mut Raw) -> (u64, Vec<u8>) {
    loop {
        let frame = raw.next_event().unwrap();
        if let Fields::Msg { reply, .. } = frame.fields
            && reply != 0
        {
            return (reply, frame.payload);
        }
    }
}

fn answer(raw: &mut Raw, token: u64) {
    raw.send(Fields::Resp { id: token }, b"", b"done");
}

fn ask(raw: &mut Raw, subject: &str, id: u64) {
    raw.send(
        Fields::Req {
            request_id: id,
            timeout_ms: 60_000,
        },
        subject.as_bytes(),
        id.to_string().as_bytes(),
    );
}

/// The next answer a requester got: its request id and ERR code (`None`: a RESP), with the
/// retry-after.
fn outcome(raw: &mut Raw) -> (u64, Option<ErrorCode>, u32) {
    loop {
        let frame = raw.next_event().unwrap();
        match frame.fields {
            Fields::Resp { id } => return (id, None, 0),
            Fields::Err {
                code,
                ref_id,
                retry_after_ms,
            } => return (ref_id, Some(code), retry_after_ms),
            _ => {}
        }
    }
}

fn gate(server: &TestServer, name: &str) -> serde_json::Value {
    let service = http_request(
        server.http,
        "GET",
        &format!("/api/v1/services/{name}"),
        None,
    );
    service.json()["gate"].clone()
}

#[test]
fn slots_then_a_fifo_queue_then_busy_across_shards() {
    let server = server(ServiceConfig {
        name: "slow".into(),
        max_concurrent: 2,
        queue_limit: 2,
        queue_timeout_ms: 60_000,
        ..ServiceConfig::default()
    });
    let mut worker = instance(&server, 0, "slow");
    let mut near = Raw::hello_on(server.addr, 0, HelloOptions::default());
    let mut far = Raw::hello_on(server.addr, 1, HelloOptions::default());
    wait_until("the instance everywhere", || {
        http_request(server.http, "GET", "/api/v1/services/slow", None).status == 200
    });
    ask(&mut near, "slow.ask", 1);
    ask(&mut far, "slow.ask", 2);
    let first = next_request(&mut worker);
    let second = next_request(&mut worker);
    // Both slots are taken: the next two wait, in order, and the fifth is refused at once.
    ask(&mut near, "slow.ask", 3);
    near.flush();
    ask(&mut far, "slow.ask", 4);
    far.flush();
    wait_until("two waiting", || gate(&server, "slow")["queue_depth"] == 2);
    assert_eq!(gate(&server, "slow")["in_flight"], 2);
    ask(&mut near, "slow.ask", 5);
    let (id, code, retry) = outcome(&mut near);
    assert_eq!((id, code), (5, Some(ErrorCode::SERVICE_BUSY)));
    assert!(retry > 0, "SERVICE_BUSY carries a retry-after");
    // A slot freed goes to the first waiter.
    answer(&mut worker, first.0);
    let third = next_request(&mut worker);
    assert_eq!(third.1, b"3");
    answer(&mut worker, second.0);
    let fourth = next_request(&mut worker);
    assert_eq!(fourth.1, b"4");
    answer(&mut worker, third.0);
    answer(&mut worker, fourth.0);
    let mut answered: Vec<u64> = Vec::new();
    for _ in 0..2 {
        let (id, code, _) = outcome(&mut near);
        assert_eq!(code, None);
        answered.push(id);
    }
    for _ in 0..2 {
        let (id, code, _) = outcome(&mut far);
        assert_eq!(code, None);
        answered.push(id);
    }
    answered.sort_unstable();
    assert_eq!(answered, [1, 2, 3, 4]);
    wait_until("the gate idle", || gate(&server, "slow")["in_flight"] == 0);
    assert!(server.errors(ErrorCode::SERVICE_BUSY) >= 1);
}

#[test]
fn a_waiter_past_its_queue_timeout_is_busy_and_one_that_goes_leaves_nothing() {
    let server = server(ServiceConfig {
        name: "slow".into(),
        max_concurrent: 1,
        queue_limit: 4,
        queue_timeout_ms: 100,
        ..ServiceConfig::default()
    });
    let mut worker = instance(&server, 1, "slow");
    let mut requester = Raw::hello_on(server.addr, 0, HelloOptions::default());
    wait_until("the instance everywhere", || {
        http_request(server.http, "GET", "/api/v1/services/slow", None).status == 200
    });
    ask(&mut requester, "slow.ask", 1);
    let held = next_request(&mut worker);
    ask(&mut requester, "slow.ask", 2);
    let (id, code, _) = outcome(&mut requester);
    assert_eq!(
        (id, code),
        (2, Some(ErrorCode::SERVICE_BUSY)),
        "waited its queue_timeout"
    );
    // A requester that goes while waiting: its place is dropped, its slot never taken.
    let mut leaving = Raw::hello_on(server.addr, 1, HelloOptions::default());
    ask(&mut leaving, "slow.ask", 3);
    leaving.flush();
    drop(leaving);
    answer(&mut worker, held.0);
    assert_eq!(outcome(&mut requester), (1, None, 0));
    wait_until("the gate idle", || {
        let g = gate(&server, "slow");
        g["in_flight"] == 0 && g["queue_depth"] == 0
    });
    ask(&mut requester, "slow.ask", 4);
    let next = next_request(&mut worker);
    assert_eq!(next.1, b"4");
    answer(&mut worker, next.0);
    assert_eq!(outcome(&mut requester), (4, None, 0));
}

#[test]
fn a_rate_holds_over_every_requester() {
    let server = server(ServiceConfig {
        name: "metered".into(),
        rate_per_sec: 5,
        ..ServiceConfig::default()
    });
    let host = server.client_on(0);
    let service = host
        .register(
            "metered",
            &shardbus_protocol::client::ServiceSpec::new("1.0.0").endpoint("metered.ask"),
        )
        .unwrap();
    let answering = host.clone();
    std::thread::spawn(move || {
        while let Ok(request) = service
            .requests()
            .recv_timeout(std::time::Duration::from_secs(60))
        {
            if answering.respond(&request, b"ok").is_err() {
                return;
            }
        }
    });
    let mut requester = Raw::hello_on(server.addr, 1, HelloOptions::default());
    wait_until("the instance everywhere", || {
        http_request(server.http, "GET", "/api/v1/services/metered", None).status == 200
    });
    for id in 1..=20 {
        ask(&mut requester, "metered.ask", id);
    }
    let (mut busy, mut served) = (0, 0);
    for _ in 0..20 {
        match outcome(&mut requester) {
            (_, Some(ErrorCode::SERVICE_BUSY), retry) => {
                assert!(retry > 0);
                busy += 1;
            }
            (_, None, _) => served += 1,
            other => panic!("{other:?}"),
        }
    }
    assert!(
        (5..=10).contains(&served),
        "five a second (and what refilled): {served}"
    );
    assert_eq!(busy + served, 20);
}

#[test]
fn waiters_of_a_service_whose_last_instance_goes_hear_no_responders() {
    let server = server(ServiceConfig {
        name: "slow".into(),
        max_concurrent: 1,
        queue_limit: 4,
        queue_timeout_ms: 600_000,
        ..ServiceConfig::default()
    });
    let mut worker = instance(&server, 0, "slow");
    let mut requester = Raw::hello_on(server.addr, 1, HelloOptions::default());
    wait_until("the instance everywhere", || {
        http_request(server.http, "GET", "/api/v1/services/slow", None).status == 200
    });
    ask(&mut requester, "slow.ask", 1);
    next_request(&mut worker);
    ask(&mut requester, "slow.ask", 2);
    ask(&mut requester, "slow.ask", 3);
    requester.flush();
    wait_until("two waiting", || gate(&server, "slow")["queue_depth"] == 2);
    drop(worker);
    let mut heard: Vec<(u64, Option<ErrorCode>)> = (0..2)
        .map(|_| outcome(&mut requester))
        .map(|(id, code, _)| (id, code))
        .collect();
    heard.sort_unstable_by_key(|(id, _)| *id);
    assert_eq!(
        heard,
        [
            (2, Some(ErrorCode::NO_RESPONDERS)),
            (3, Some(ErrorCode::NO_RESPONDERS))
        ],
        "the waiters are not left to their request timeout"
    );
}
