//! Nodes over Redis (`[cluster] redis_url`): three brokers and one real redis-server. A
//! publication reaches subscribers on every node and is sent only to the nodes that want it; a
//! queue group spread over nodes gets each message once; interest that leaves stops the
//! traffic; subscribers on the publisher's own node get a publication once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::time::Duration;

use shardbus_engine::metrics::Metric;
use shardbus_protocol::ErrorCode;
use shardbus_protocol::client::{Client, ClientOptions};
use shardbus_tests::cluster::{node, node_with, wait_for_interest};
use shardbus_tests::redis::RedisServer;
use shardbus_tests::{
    PATIENCE, TestServer, http_request, http_request_as, token_config, wait_until,
};

#[test]
fn publications_reach_every_node_with_interest_and_no_other() {
    let redis = RedisServer::start();
    let (a, b, c) = (node(&redis, "a"), node(&redis, "b"), node(&redis, "c"));
    let on_b = b.client_on(1);
    let orders = on_b.subscribe("orders.>").unwrap();
    let on_a = a.client_on(0);
    let local = on_a.subscribe("orders.*").unwrap();
    wait_for_interest(a.http, "b", 1);
    wait_for_interest(c.http, "a", 1);

    let publisher = a.client_on(1);
    for i in 0..200u32 {
        publisher.publish("orders.new", &i.to_le_bytes()).unwrap();
    }
    for i in 0..200u32 {
        assert_eq!(
            orders.recv_timeout(PATIENCE).unwrap().payload(),
            &i.to_le_bytes()
        );
        assert_eq!(
            local.recv_timeout(PATIENCE).unwrap().payload(),
            &i.to_le_bytes()
        );
    }
    // Once each: nothing came back through Redis to the publisher's node.
    assert!(local.recv_timeout(Duration::from_millis(200)).is_err());
    assert!(orders.recv_timeout(Duration::from_millis(10)).is_err());
    assert_eq!(a.total(Metric::ClusterIn), 0);
    assert_eq!(c.total(Metric::ClusterIn), 0, "node c has no interest");
    assert_eq!(b.total(Metric::ClusterIn), 200);

    // Interest that leaves stops the traffic to that node.
    drop(orders);
    on_b.flush().unwrap();
    wait_for_interest(a.http, "b", 0);
    let sent = || {
        let cluster = http_request(a.http, "GET", "/api/v1/cluster", None).json();
        cluster["sent"].as_u64().unwrap()
    };
    let before = sent();
    assert!(before >= 200, "{before}");
    publisher.publish("orders.new", b"after").unwrap();
    assert_eq!(local.recv_timeout(PATIENCE).unwrap().payload(), b"after");
    // Nothing went to another node for it: a request that does go out, after it from the same
    // connection, is the only record counted since.
    let _echo = responder(&b, 0, "svc.count", b"ok");
    wait_for_interest(a.http, "b", 1);
    publisher.request("svc.count", b"", PATIENCE).unwrap();
    assert_eq!(sent(), before + 1);
}

#[test]
fn a_queue_group_spread_over_nodes_gets_each_message_once() {
    let redis = RedisServer::start();
    let (a, b, c) = (node(&redis, "qa"), node(&redis, "qb"), node(&redis, "qc"));
    let clients = [b.client_on(0), b.client_on(1), c.client_on(0)];
    let members: Vec<_> = clients
        .iter()
        .map(|client| client.queue_subscribe("jobs.*", "workers").unwrap())
        .collect();
    let watcher = c.client_on(1);
    let all = watcher.subscribe("jobs.>").unwrap();
    wait_for_interest(a.http, "qb", 1);
    wait_for_interest(a.http, "qc", 2);

    let publisher = a.client_on(0);
    for i in 0..300u32 {
        publisher.publish("jobs.run", &i.to_le_bytes()).unwrap();
    }
    // The plain subscriber on another node gets every one.
    for i in 0..300u32 {
        assert_eq!(
            all.recv_timeout(PATIENCE).unwrap().payload(),
            &i.to_le_bytes()
        );
    }
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut per_member = Vec::new();
    let mut total = 0;
    while total < 300 {
        let mut progress = false;
        per_member.clear();
        for member in &members {
            let mut n = 0;
            while let Ok(message) = member.recv_timeout(Duration::from_millis(50)) {
                *seen.entry(message.payload().to_vec()).or_default() += 1;
                n += 1;
            }
            per_member.push(n);
            total += n;
            progress |= n > 0;
        }
        assert!(progress || total >= 300, "stuck at {total} of 300");
    }
    assert_eq!(total, 300);
    assert_eq!(seen.len(), 300, "each message to one member");
    assert!(seen.values().all(|&n| n == 1));
    assert!(b.total(Metric::ClusterIn) > 0 && c.total(Metric::ClusterIn) > 0);
}

/// Answers every request on `subject` with `answer`, from a client of `server`'s shard `shard`.
fn responder(server: &TestServer, shard: u16, subject: &str, answer: &'static [u8]) -> Client {
    let client = server.client_on(shard);
    let sub = client.subscribe(subject).unwrap();
    client.flush().unwrap();
    let answering = client.clone();
    std::thread::spawn(move || {
        while let Ok(request) = sub.recv_timeout(PATIENCE) {
            if answering.respond(&request, answer).is_err() {
                return;
            }
        }
    });
    client
}

#[test]
fn requests_reach_a_responder_on_another_node_and_prefer_their_own() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis, "ra"), node(&redis, "rb"));
    let _far = responder(&b, 0, "svc.echo", b"from b");
    let _far_other_shard = responder(&b, 1, "svc.both", b"from b");
    wait_for_interest(a.http, "rb", 2);
    let requester = a.client_on(1);
    for _ in 0..50 {
        let answer = requester.request("svc.echo", b"hi", PATIENCE).unwrap();
        assert_eq!(answer.payload(), b"from b");
    }
    // Both shards of the requester's node, and a responder on either shard of the other.
    let other = a.client_on(0);
    assert_eq!(
        other.request("svc.both", b"", PATIENCE).unwrap().payload(),
        b"from b"
    );
    // A responder on the requester's own node is preferred.
    let _near = responder(&a, 0, "svc.both", b"from a");
    for _ in 0..20 {
        assert_eq!(
            requester
                .request("svc.both", b"", PATIENCE)
                .unwrap()
                .payload(),
            b"from a"
        );
    }
    // Nobody anywhere: NO_RESPONDERS at once, as on one node.
    let refused = requester.request("svc.nobody", b"", PATIENCE).unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::NO_RESPONDERS));
    assert_eq!(b.total(Metric::RequestsPending), 0, "no proxy left behind");
}

#[test]
fn a_request_to_a_silent_responder_on_another_node_times_out_and_leaves_nothing() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis, "ta"), node(&redis, "tb"));
    let silent = b.client_on(0);
    let _sub = silent.subscribe("svc.silent").unwrap();
    silent.flush().unwrap();
    wait_for_interest(a.http, "tb", 1);
    let requester = a.client_on(0);
    let timed_out = requester
        .request("svc.silent", b"", Duration::from_millis(300))
        .unwrap_err();
    assert_eq!(timed_out.code(), Some(ErrorCode::TIMEOUT), "{timed_out:?}");
    wait_until("the proxy to expire", || {
        b.total(Metric::RequestsPending) == 0
    });
    assert_eq!(a.total(Metric::RequestsPending), 0);
}

#[test]
fn a_push_to_a_user_reaches_their_connections_on_every_node_and_counts_them_all() {
    let redis = RedisServer::start();
    let tokens = || {
        vec![
            token_config("backend", "backend-secret", "admin"),
            token_config("alice", "alice-secret", "user"),
        ]
    };
    let node = |name: &str| node_with(&redis, name, |config| config.auth.tokens = tokens());
    let (a, b, c) = (node("ua"), node("ub"), node("uc"));
    wait_until("ua to see the others", || {
        let seen = http_request(a.http, "GET", "/api/v1/cluster", None).json();
        seen["nodes"].as_array().unwrap().len() == 2
    });
    let alice = |server: &TestServer, shard| {
        server.client_on_with(
            shard,
            ClientOptions::new().no_reconnect().token("alice-secret"),
        )
    };
    let connections = [alice(&a, 0), alice(&b, 0), alice(&b, 1), alice(&c, 1)];
    let pushes: Vec<_> = connections.iter().map(|c| c.pushes().unwrap()).collect();
    let body = serde_json::json!({"user": "alice", "text": "hello everywhere"});
    let answer = http_request_as(
        a.http,
        "POST",
        "/api/v1/publish",
        "backend-secret",
        Some(&body),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["recipients"], 4);
    for push in &pushes {
        assert_eq!(
            push.recv_timeout(PATIENCE).unwrap().payload(),
            b"hello everywhere"
        );
    }
}

#[test]
fn a_push_to_a_room_reaches_its_members_on_every_node_and_counts_them_all() {
    let redis = RedisServer::start();
    let rooms = |config: &mut shardbus_engine::config::Config| {
        config.rooms = vec![shardbus_engine::rooms::RoomConfig {
            pattern: "chat.>".into(),
            ..Default::default()
        }];
    };
    let (a, b, c) = (
        node_with(&redis, "pa", rooms),
        node_with(&redis, "pb", rooms),
        node_with(&redis, "pc", rooms),
    );
    let clients = [
        a.client_on(0),
        b.client_on(0),
        b.client_on(1),
        c.client_on(1),
    ];
    let members: Vec<_> = clients
        .iter()
        .map(|c| c.join("chat.lobby").unwrap())
        .collect();
    for client in &clients {
        client.flush().unwrap();
    }
    wait_for_interest(a.http, "pb", 1);
    wait_for_interest(a.http, "pc", 1);
    let body = serde_json::json!({"room": "chat.lobby", "text": "to everyone"});
    let answer = http_request(a.http, "POST", "/api/v1/publish", Some(&body.to_string()));
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["recipients"], 4);
    for member in &members {
        assert_eq!(
            member.recv_timeout(PATIENCE).unwrap().payload(),
            b"to everyone"
        );
    }
    // The rooms listing: one entry per node the room has members on, each naming its node.
    let listing = http_request(a.http, "GET", "/api/v1/rooms", None).json();
    let entries: Vec<(String, u64)> = listing["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["room"] == "chat.lobby")
        .map(|r| {
            (
                r["node"].as_str().unwrap().to_owned(),
                r["clients"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        vec![("pa".into(), 1), ("pb".into(), 2), ("pc".into(), 1)],
        "{listing}"
    );
}

#[test]
fn the_admin_listings_cover_every_node_and_a_kick_reaches_the_node_that_has_the_connection() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis, "la"), node(&redis, "lb"));
    let named = |server: &TestServer, name: &str| {
        server.client_on_with(0, ClientOptions::new().no_reconnect().name(name))
    };
    let near = named(&a, "near");
    let far = named(&b, "far");
    let _sub = far.subscribe("inventory.>").unwrap();
    far.flush().unwrap();
    wait_for_interest(a.http, "lb", 1);

    let listing = http_request(a.http, "GET", "/api/v1/connections", None).json();
    assert_eq!(listing["complete"], true, "{listing}");
    let connections = listing["connections"].as_array().unwrap();
    let find = |name: &str| {
        connections
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {listing}"))
            .clone()
    };
    assert_eq!(find("near")["node"], "la");
    let remote = find("far");
    assert_eq!(remote["node"], "lb");
    // Topics are merged over every shard of every node: node lb's subscription counts here.
    let topics = http_request(a.http, "GET", "/api/v1/topics", None).json();
    assert!(
        topics["topics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["pattern"] == "inventory.>" && t["subscribers"] == 1),
        "{topics}"
    );

    // Connection ids are each node's own: the kick names the node.
    let id = remote["id"].as_u64().unwrap();
    let path = format!("/api/v1/connections/{id}?node=lb");
    let kicked = http_request(a.http, "DELETE", &path, None);
    assert_eq!(kicked.status, 200, "{}", kicked.text());
    wait_until("the far client to be kicked", || !far.is_connected());
    assert!(near.flush().is_ok(), "the near client is untouched");
    let again = http_request(a.http, "DELETE", &path, None);
    assert_eq!(again.json()["error"]["name"], "UNKNOWN_CONNECTION");
}
