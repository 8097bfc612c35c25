//! Rooms across the nodes of a cluster over a real redis-server: a room's members on every
//! node are in its JOIN counts, its presence pages and its MEMBER events, wherever they are
//! asked; a node that never had a member of the room answers presence with the others'; a
//! member that leaves leaves everywhere.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::time::Duration;

use shardbus_protocol::client::{Client, ClientOptions, MemberEvent, Room};
use shardbus_protocol::container::Value;
use shardbus_tests::cluster::{node_with, nodes_seen};
use shardbus_tests::redis::RedisServer;
use shardbus_tests::{
    PATIENCE, TestServer, http_request, http_request_as, token_config, wait_until,
};

fn rooms(config: &mut shardbus_engine::config::Config) {
    config.rooms = vec![shardbus_engine::rooms::RoomConfig {
        pattern: "chat.>".into(),
        presence: true,
        join_leave: true,
        ..Default::default()
    }];
}

/// Three nodes that see each other.
fn three_nodes(redis: &RedisServer) -> [TestServer; 3] {
    let nodes = [
        node_with(redis, "ra", rooms),
        node_with(redis, "rb", rooms),
        node_with(redis, "rc", rooms),
    ];
    for node in &nodes {
        wait_until("every node to see the two others", || {
            nodes_seen(node.http).len() == 2
        });
    }
    nodes
}

fn field<'a>(member: &'a Value, key: &str) -> &'a str {
    match member.get(key) {
        Some(Value::Str(text)) => text,
        other => panic!("{key}: {other:?} in {member:?}"),
    }
}

/// The nodes of a presence page's members.
fn nodes_of(members: &[Value]) -> BTreeSet<String> {
    members
        .iter()
        .map(|m| field(m, "node").to_owned())
        .collect()
}

fn next_event(room: &Room) -> MemberEvent {
    room.next_event(PATIENCE).expect("a MEMBER event")
}

#[test]
fn members_on_every_node_are_counted_listed_and_announced_wherever_asked() {
    let redis = RedisServer::start();
    let [a, b, c] = three_nodes(&redis);
    let (on_a, on_b, on_c) = (a.client_on(0), b.client_on(1), c.client_on(0));

    let first = on_a.join("chat.lobby").unwrap();
    assert_eq!(first.joined().clients, 1);
    // The second node's first op on the room waits for the others' members: its JOIN counts
    // the member on the first node.
    let second = on_b.join("chat.lobby").unwrap();
    assert_eq!(second.joined().clients, 2);
    let event = next_event(&first);
    assert!(event.joined);
    assert_eq!(field(&event.member, "node"), "rb");
    let third = on_c.join("chat.lobby").unwrap();
    assert_eq!(third.joined().clients, 3);
    for earlier in [&first, &second] {
        let event = next_event(earlier);
        assert!(event.joined);
        assert_eq!(field(&event.member, "node"), "rc");
    }

    // Presence from any node lists every node's member; pages follow the cursor across them.
    for client in [&on_a, &on_b, &on_c] {
        let page = client.presence("chat.lobby", 0, 0).unwrap();
        assert_eq!(page.clients, 3);
        assert_eq!(
            nodes_of(&page.members),
            ["ra", "rb", "rc"].map(String::from).into()
        );
    }
    let mut seen = Vec::new();
    let mut cursor = 0;
    loop {
        let page = on_a.presence("chat.lobby", cursor, 1).unwrap();
        seen.extend(page.members);
        match page.cursor {
            Some(next) => cursor = next,
            None => break,
        }
    }
    assert_eq!(seen.len(), 3);
    assert_eq!(nodes_of(&seen).len(), 3);
    let http = http_request(c.http, "GET", "/api/v1/rooms/chat.lobby/presence", None).json();
    assert_eq!(http["clients"], 3, "{http}");

    // A member that leaves leaves on every node: events, presence.
    second.leave().unwrap();
    for other in [&first, &third] {
        let event = next_event(other);
        assert!(!event.joined);
        assert_eq!(field(&event.member, "node"), "rb");
    }
    for client in [&on_a, &on_b, &on_c] {
        wait_until("presence without the member that left", || {
            client.presence("chat.lobby", 0, 0).unwrap().clients == 2
        });
    }
    // A connection that goes leaves too.
    drop(third);
    drop(on_c);
    let event = next_event(&first);
    assert!(!event.joined);
    assert_eq!(field(&event.member, "node"), "rc");
}

#[test]
fn a_node_with_no_member_answers_presence_with_the_other_nodes_members() {
    let redis = RedisServer::start();
    let [a, b, c] = three_nodes(&redis);
    let members: Vec<(Client, Room)> = [&a, &a, &b]
        .iter()
        .map(|node| {
            let client = node.client_on(1);
            let room = client.join("chat.quiet").unwrap();
            (client, room)
        })
        .collect();
    // The third node never had a member of the room: its first look asks the others.
    let asker = c.client_on(0);
    let page = asker.presence("chat.quiet", 0, 0).unwrap();
    assert_eq!(page.clients, 3);
    assert_eq!(
        nodes_of(&page.members),
        ["ra", "rb"].map(String::from).into()
    );
    // Its own listing names only the nodes with members.
    let listing = http_request(c.http, "GET", "/api/v1/rooms", None).json();
    let nodes: BTreeSet<String> = listing["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["room"] == "chat.quiet")
        .map(|r| r["node"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(nodes, ["ra", "rb"].map(String::from).into(), "{listing}");
    drop(members);
    wait_until("presence empty once every member went", || {
        asker.presence("chat.quiet", 0, 0).unwrap().clients == 0
    });
}

fn history_rooms(redis: &RedisServer) -> impl Fn(&mut shardbus_engine::config::Config) + '_ {
    move |config| {
        config.history.backend = shardbus_engine::config::HistoryBackend::Redis;
        config.redis.url = redis.url();
        config.rooms = vec![shardbus_engine::rooms::RoomConfig {
            pattern: "log.>".into(),
            history_size: 2_000,
            recover: true,
            ..Default::default()
        }];
    }
}

/// The offset and payload of each of the next `n` publications of `room`.
fn offsets(room: &Room, n: usize) -> Vec<(u64, Vec<u8>)> {
    (0..n)
        .map(|_| {
            let message = room.recv_timeout(PATIENCE).unwrap();
            let offset = message.headers().get("sb-offset").unwrap().parse().unwrap();
            (offset, message.payload().to_vec())
        })
        .collect()
}

#[test]
fn publications_from_two_nodes_reach_every_member_in_the_rooms_one_order() {
    let redis = RedisServer::start();
    let nodes = [
        node_with(&redis, "oa", history_rooms(&redis)),
        node_with(&redis, "ob", history_rooms(&redis)),
        node_with(&redis, "oc", history_rooms(&redis)),
    ];
    for node in &nodes {
        wait_until("every node to see the two others", || {
            nodes_seen(node.http).len() == 2
        });
    }
    let [a, b, c] = &nodes;
    let members: Vec<(Client, Room)> = [a, b, c, c]
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let client = node.client_on(i as u16 % 2);
            let room = client.join("log.shared").unwrap();
            (client, room)
        })
        .collect();
    for node in [a, b] {
        wait_until("interest of every node", || {
            nodes_seen(node.http).iter().all(|(_, n)| *n >= 1)
        });
    }
    const EACH: usize = 300;
    let publishers: Vec<_> = [a, b]
        .iter()
        .enumerate()
        .map(|(who, node)| {
            let client = node.client_on(who as u16);
            std::thread::spawn(move || {
                for n in 0..EACH {
                    client
                        .publish("log.shared", format!("{who}-{n}").as_bytes())
                        .unwrap();
                    if n % 16 == 0 {
                        client.flush().unwrap();
                    }
                }
                client.flush().unwrap();
                client
            })
        })
        .collect();
    let publishers: Vec<Client> = publishers.into_iter().map(|p| p.join().unwrap()).collect();
    // Every member, on every node, sees offsets 1, 2, 3 ... once each, with the same
    // publication at each offset, and each publisher's publications in its order.
    let first = offsets(&members[0].1, 2 * EACH);
    assert_eq!(
        first.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        (1..=2 * EACH as u64).collect::<Vec<_>>()
    );
    for who in 0..2 {
        let sent: Vec<String> = first
            .iter()
            .map(|(_, p)| String::from_utf8(p.clone()).unwrap())
            .filter(|p| p.starts_with(&format!("{who}-")))
            .collect();
        let expected: Vec<String> = (0..EACH).map(|n| format!("{who}-{n}")).collect();
        assert_eq!(sent, expected);
    }
    for (_, room) in &members[1..] {
        assert_eq!(offsets(room, 2 * EACH), first);
    }
    drop(publishers);
}

#[test]
fn a_backend_joins_and_removes_a_users_connections_on_every_node() {
    let redis = RedisServer::start();
    let node = |name: &str| {
        node_with(&redis, name, |config| {
            rooms(config);
            config.auth.tokens = vec![
                token_config("backend", "backend-secret", "admin"),
                token_config("alice", "alice-secret", "user"),
            ];
        })
    };
    let nodes = [node("ja"), node("jb")];
    for node in &nodes {
        wait_until("each node to see the other", || {
            nodes_seen(node.http).len() == 1
        });
    }
    let alice: Vec<Client> = nodes
        .iter()
        .map(|node| {
            node.client_on_with(0, ClientOptions::new().no_reconnect().token("alice-secret"))
        })
        .collect();
    // Server-side joins are kept for a client once it asks for them.
    for client in &alice {
        assert!(client.server_room(Duration::from_millis(1)).is_err());
    }
    let body = serde_json::json!({"user": "alice"});
    let path = "/api/v1/rooms/chat.team/members";
    let answer = http_request_as(nodes[0].http, "POST", path, "backend-secret", Some(&body));
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["changed"], 2);
    let rooms: Vec<Room> = alice
        .iter()
        .map(|client| client.server_room(PATIENCE).unwrap())
        .collect();
    wait_until("both memberships in presence", || {
        alice[0].presence("chat.team", 0, 0).unwrap().clients == 2
    });
    let removed = http_request_as(
        nodes[1].http,
        "DELETE",
        "/api/v1/rooms/chat.team/members/alice",
        "backend-secret",
        None,
    );
    assert_eq!(removed.json()["changed"], 2, "{}", removed.text());
    wait_until("presence empty", || {
        alice[1].presence("chat.team", 0, 0).unwrap().clients == 0
    });
    drop(rooms);
}
