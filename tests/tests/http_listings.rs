//! The HTTP edge's listings, gathered from both shards over the mesh: connections (paged, with
//! their traffic) and topics (subscriber counts merged across shards).
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use shardbus_protocol::client::ClientOptions;
use shardbus_tests::{TestServer, http_request, wait_until};

fn get(server: &TestServer, path: &str) -> serde_json::Value {
    let answer = http_request(server.http, "GET", path, None);
    assert_eq!(answer.status, 200, "{path}: {}", answer.text());
    answer.json()
}

#[test]
fn connections_from_every_shard_are_listed_and_paged() {
    let server = TestServer::start();
    let named = |name: &str| ClientOptions::new().no_reconnect().name(name);
    let alpha = server.client_on_with(0, named("alpha"));
    let beta = server.client_on_with(1, named("beta"));
    let gamma = server.client_on_with(1, named("gamma"));
    let _subs = [
        beta.subscribe("l.a").unwrap(),
        beta.subscribe("l.b").unwrap(),
    ];
    beta.flush().unwrap();
    for _ in 0..3 {
        alpha.publish("l.a", b"12345").unwrap();
    }
    alpha.flush().unwrap();
    gamma.flush().unwrap();

    // Connections that `client_on` tried and closed leave as the server notices.
    wait_until("exactly the three clients are listed", || {
        get(&server, "/api/v1/connections")["total"] == 3
    });
    wait_until("beta has received the three messages", || {
        get(&server, "/api/v1/connections")["connections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "beta" && c["msgs_out"] == 3)
    });
    let page = get(&server, "/api/v1/connections");
    assert_eq!(page["complete"], true);
    let list = page["connections"].as_array().unwrap();
    let by_name = |name: &str| list.iter().find(|c| c["name"] == name).unwrap().clone();
    let (a, b) = (by_name("alpha"), by_name("beta"));
    assert_eq!(
        (a["shard"].clone(), b["shard"].clone()),
        (0.into(), 1.into())
    );
    assert_eq!(
        (a["msgs_in"].clone(), a["bytes_in"].clone()),
        (3.into(), 15.into())
    );
    assert_eq!(
        (b["subscriptions"].clone(), b["bytes_out"].clone()),
        (2.into(), 15.into())
    );
    assert!(a["remote"].as_str().unwrap().starts_with("127.0.0.1:"));
    let ids: Vec<u64> = list.iter().map(|c| c["id"].as_u64().unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ordered by id: {ids:?}"
    );

    let second = get(&server, "/api/v1/connections?offset=1&limit=1");
    assert_eq!(
        (second["total"].clone(), second["limit"].clone()),
        (3.into(), 1.into())
    );
    assert_eq!(second["connections"][0]["id"], ids[1]);
    let bad = http_request(server.http, "GET", "/api/v1/connections?limit=many", None);
    assert_eq!(
        (bad.status, bad.error_name()),
        (400, "BAD_PARAMETER".to_owned())
    );
}

#[test]
fn topics_merge_subscriber_counts_over_shards() {
    let server = TestServer::start();
    let near = server.client_on(0);
    let far = server.client_on(1);
    let _subs = [
        near.subscribe("t.>").unwrap(),
        far.subscribe("t.>").unwrap(),
        far.subscribe("t.x").unwrap(),
        near.queue_subscribe("jobs", "workers").unwrap(),
        far.queue_subscribe("jobs", "workers").unwrap(),
    ];
    near.flush().unwrap();
    far.flush().unwrap();
    let topics = get(&server, "/api/v1/topics");
    assert_eq!(topics["complete"], true);
    let expected = serde_json::json!([
        { "pattern": "jobs", "queue": "workers", "subscribers": 2 },
        { "pattern": "t.>", "queue": null, "subscribers": 2 },
        { "pattern": "t.x", "queue": null, "subscribers": 1 },
    ]);
    assert_eq!(topics["topics"], expected);
}

#[test]
fn an_admin_kicks_a_connection_on_any_shard() {
    let server = TestServer::start();
    for shard in [0, 1] {
        let mut raw =
            shardbus_tests::Raw::hello_on(server.addr, shard, shardbus_protocol::HelloOptions(0));
        let id = raw.welcome.unwrap().client_id;
        let answer = http_request(
            server.http,
            "DELETE",
            &format!("/api/v1/connections/{id}"),
            None,
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.json()["kicked"], id);
        let frames = raw.until_closed();
        let code = frames.iter().find_map(|f| f.err_code());
        assert_eq!(
            code,
            Some(shardbus_protocol::ErrorCode::KICKED),
            "shard {shard}"
        );
    }
    let missing = http_request(server.http, "DELETE", "/api/v1/connections/12345", None);
    assert_eq!(
        (missing.status, missing.error_name()),
        (404, "UNKNOWN_CONNECTION".to_owned())
    );
}
