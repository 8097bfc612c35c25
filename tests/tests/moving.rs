//! A requester answered on another shard moves to that shard (`runtime.move_requester_after`),
//! against the real server: every request is answered, in order, before, across and after the
//! move; the connection is listed once, on its new shard; it goes on publishing, subscribing
//! and pinging there; it is kicked by its new id; and when it closes nothing of it is left on
//! either shard. A connection that holds something on its shard (a subscription) stays.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use shardbus_engine::metrics::Metric;
use shardbus_protocol::client::{Client, ClientOptions};
use shardbus_tests::{PATIENCE, TestServer, http_request, reversing_responder, wait_until};

const AFTER: u32 = 8;

fn server() -> TestServer {
    TestServer::with(|config| config.runtime.move_requester_after = AFTER)
}

/// The listed connections named `name`, as (id, shard).
fn listed(server: &TestServer, name: &str) -> Vec<(u64, u64)> {
    let page = http_request(server.http, "GET", "/api/v1/connections", None).json();
    page["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == name)
        .map(|c| (c["id"].as_u64().unwrap(), c["shard"].as_u64().unwrap()))
        .collect()
}

fn ask(requester: &Client, i: u32) {
    let payload = i.to_be_bytes();
    let response = requester.request("svc.echo", &payload, PATIENCE).unwrap();
    let mut expected = payload.to_vec();
    expected.reverse();
    assert_eq!(response.payload(), expected, "the answer to request {i}");
}

#[test]
fn a_requester_answered_on_another_shard_moves_there_and_keeps_working() {
    let server = server();
    let _responder = reversing_responder(server.client_on(1), "svc.echo");
    let options = ClientOptions::new().no_reconnect().name("mover");
    let requester = server.client_on_with(0, options);
    wait_until("the connections that landed elsewhere to leave", || {
        listed(&server, "mover").len() == 1
    });
    let (first_id, first_shard) = listed(&server, "mover")[0];
    assert_eq!(first_shard, 0);

    for i in 0..200 {
        ask(&requester, i);
    }
    assert_eq!(server.total(Metric::ConnectionsMovedIn), 1);
    assert_eq!(server.shard_metric(1, Metric::ConnectionsMovedIn), 1);
    let now = listed(&server, "mover");
    assert_eq!(now.len(), 1, "listed once: {now:?}");
    assert_eq!(now[0].1, 1, "on the responder's shard");
    assert_ne!(now[0].0, first_id, "under the new shard's id");
    // (Tries that landed elsewhere, unnamed, may still be leaving.)
    wait_until("shard 0 to hold nothing and shard 1 both", || {
        (
            server.shard_metric(0, Metric::Connections),
            server.shard_metric(1, Metric::Connections),
        ) == (0, 2)
    });

    // Everything else goes on from the new shard.
    let news = requester.subscribe("mover.news").unwrap();
    requester.flush().unwrap();
    let publisher = server.client_on(0);
    publisher.publish("mover.news", b"still here").unwrap();
    publisher.flush().unwrap();
    assert_eq!(
        news.recv_timeout(PATIENCE).unwrap().payload(),
        b"still here"
    );
    ask(&requester, 1000);

    requester.close();
    publisher.close();
    wait_until("the moved connection to be gone", || {
        server.total(Metric::Connections) == 1 && listed(&server, "mover").is_empty()
    });
    assert_eq!(
        server.total(Metric::Subscriptions),
        1,
        "the responder's only"
    );
}

#[test]
fn a_requester_that_subscribes_stays_on_its_shard() {
    let server = server();
    let _responder = reversing_responder(server.client_on(1), "svc.echo");
    let options = ClientOptions::new().no_reconnect().name("stayer");
    let requester = server.client_on_with(0, options);
    let _sub = requester.subscribe("stayer.news").unwrap();
    requester.flush().unwrap();
    for i in 0..100 {
        ask(&requester, i);
    }
    assert_eq!(server.total(Metric::ConnectionsMovedIn), 0);
    wait_until("the connections that landed elsewhere to leave", || {
        listed(&server, "stayer").len() == 1
    });
    assert_eq!(listed(&server, "stayer")[0].1, 0);
}

#[test]
fn with_moving_off_a_requester_stays() {
    let server = TestServer::with(|config| config.runtime.move_requester_after = 0);
    let _responder = reversing_responder(server.client_on(1), "svc.echo");
    let requester = server.client_on(0);
    for i in 0..100 {
        ask(&requester, i);
    }
    assert_eq!(server.total(Metric::ConnectionsMovedIn), 0);
    wait_until("the tries that landed elsewhere to leave", || {
        server.total(Metric::Connections) == 2
    });
    assert_eq!(server.shard_metric(0, Metric::Connections), 1);
}

#[test]
fn a_moved_connection_is_kicked_by_its_new_id() {
    let server = server();
    let _responder = reversing_responder(server.client_on(1), "svc.echo");
    let options = ClientOptions::new().no_reconnect().name("kicked");
    let requester = server.client_on_with(0, options);
    for i in 0..50 {
        ask(&requester, i);
    }
    assert_eq!(server.total(Metric::ConnectionsMovedIn), 1);
    wait_until("the tries that landed elsewhere to leave", || {
        listed(&server, "kicked").len() == 1
    });
    let (id, shard) = listed(&server, "kicked")[0];
    assert_eq!(shard, 1);
    let path = format!("/api/v1/connections/{id}");
    let answer = http_request(server.http, "DELETE", &path, None);
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["kicked"], id);
    wait_until("the kicked connection to be gone", || {
        listed(&server, "kicked").is_empty()
    });
    assert!(requester.request("svc.echo", b"?", PATIENCE).is_err());
}
