//! Rooms through the WebSocket JSON mapping (PROTOCOL.md §9.1), against the real server: two
//! JSON clients in a room see each other join and leave and list each other in presence; a
//! publication carries its position as `epoch` and `offset`; a client that comes back recovers
//! what it missed; `history` answers with `msg`s and a closing `history`.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{Value as Json, json};
use shardbus_engine::rooms::RoomConfig;
use shardbus_tests::TestServer;
use shardbus_tests::json_ws::{self, Ws, next, send};

fn connect(server: &TestServer, name: &str) -> Ws {
    json_ws::connect(server, json!({"op": "hello", "name": name}))
}

fn server() -> TestServer {
    TestServer::with(|config| {
        config.rooms = vec![RoomConfig {
            pattern: "chat.>".into(),
            join_leave: true,
            history_size: 10,
            recover: true,
            ..RoomConfig::default()
        }];
    })
}

/// The next message whose op is `op` (MEMBER events of earlier connections may come first).
fn next_op(ws: &mut Ws, op: &str) -> Json {
    loop {
        let value = next(ws);
        if value["op"] == op {
            return value;
        }
        assert_eq!(value["op"], "member", "expected {op}, got {value}");
    }
}

#[test]
fn json_clients_join_see_each_other_and_recover_what_they_missed() {
    let server = server();
    let mut ann = connect(&server, "ann");
    send(
        &mut ann,
        json!({"op": "join", "id": 1, "topic": "chat.lobby", "sid": 1, "info": {"colour": "red"}}),
    );
    let joined = next(&mut ann);
    assert_eq!(joined["op"], "join", "{joined}");
    assert_eq!(joined["id"], 1);
    assert_eq!(joined["recovered"], false);
    assert_eq!(joined["data"], json!({"clients": 1, "users": 1}));
    let epoch = joined["epoch"].as_str().unwrap().to_owned();

    let mut bob = connect(&server, "bob");
    send(
        &mut bob,
        json!({"op": "join", "id": 2, "topic": "chat.lobby", "sid": 5}),
    );
    assert_eq!(next(&mut bob)["data"]["clients"], 2);
    let event = next(&mut ann);
    assert_eq!(event["op"], "member", "{event}");
    assert_eq!(event["event"], "join");
    assert_eq!(event["sid"], 1);
    assert_eq!(event["data"]["name"], "bob");

    send(
        &mut bob,
        json!({"op": "presence", "id": 3, "topic": "chat.lobby"}),
    );
    let presence = next(&mut bob);
    assert_eq!(presence["op"], "presence", "{presence}");
    assert_eq!(presence["count"], 2);
    let names: Vec<&str> = presence["data"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(
        names.contains(&"ann") && names.contains(&"bob"),
        "{names:?}"
    );
    let ann_info = presence["data"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "ann")
        .unwrap();
    assert_eq!(ann_info["info"], json!({"colour": "red"}));
    send(
        &mut bob,
        json!({"op": "presence_stats", "id": 4, "topic": "chat.lobby"}),
    );
    let stats = next(&mut bob);
    assert_eq!(stats["data"], json!({"clients": 2, "users": 1}));

    send(
        &mut ann,
        json!({"op": "pub", "topic": "chat.lobby", "data": {"text": "hi"}}),
    );
    for ws in [&mut ann, &mut bob] {
        let msg = next_op(ws, "msg");
        assert_eq!(msg["data"], json!({"text": "hi"}));
        assert_eq!(
            (msg["epoch"].as_str(), &msg["offset"]),
            (Some(&*epoch), &json!(1))
        );
        assert!(msg.get("headers").is_none(), "{msg}");
    }

    // Bob goes; Ann hears it; two messages are published while he is away.
    drop(bob);
    let event = next_op(&mut ann, "member");
    assert_eq!(
        (event["event"].as_str(), event["data"]["name"].as_str()),
        (Some("leave"), Some("bob"))
    );
    send(
        &mut ann,
        json!({"op": "pub", "topic": "chat.lobby", "text": "two"}),
    );
    send(
        &mut ann,
        json!({"op": "pub", "topic": "chat.lobby", "text": "three"}),
    );
    assert_eq!(next_op(&mut ann, "msg")["offset"], 2);
    assert_eq!(next_op(&mut ann, "msg")["offset"], 3);

    let mut bob = connect(&server, "bob");
    send(
        &mut bob,
        json!({"op": "join", "id": 9, "topic": "chat.lobby", "sid": 5, "epoch": epoch, "offset": 1}),
    );
    let joined = next(&mut bob);
    assert_eq!(joined["recovered"], true, "{joined}");
    assert_eq!(joined["count"], 2);
    let texts: Vec<Json> = (0..2)
        .map(|_| next_op(&mut bob, "msg")["text"].clone())
        .collect();
    assert_eq!(texts, vec![json!("two"), json!("three")]);

    send(
        &mut bob,
        json!({"op": "history", "id": 10, "topic": "chat.lobby", "sid": 77, "limit": 2, "reverse": true}),
    );
    let first = next_op(&mut bob, "msg");
    let second = next_op(&mut bob, "msg");
    assert_eq!(
        (first["sid"].clone(), first["offset"].clone()),
        (json!(77), json!(3))
    );
    assert_eq!(second["offset"], 2);
    let end = next_op(&mut bob, "history");
    assert_eq!(
        (end["id"].clone(), end["count"].clone()),
        (json!(10), json!(2))
    );
    assert_eq!(end["epoch"].as_str(), Some(&*epoch));

    send(
        &mut bob,
        json!({"op": "leave", "id": 11, "topic": "chat.nowhere"}),
    );
    let err = next_op(&mut bob, "err");
    assert_eq!(err["name"], "NOT_A_MEMBER");
}
