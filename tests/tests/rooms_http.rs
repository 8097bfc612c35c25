//! Rooms over the HTTP edge, against the real server: a push to a room answers with its
//! recipients and reaches members on both shards; the rooms listing, presence and history
//! endpoints; refusals with their codes and statuses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::json;
use shardbus_engine::rooms::RoomConfig;
use shardbus_protocol::{Fields, HelloOptions, RoomFields};
use shardbus_tests::raw::Raw;
use shardbus_tests::{TestServer, http_request, wait_until};

fn server() -> TestServer {
    TestServer::with(|config| {
        config.rooms = vec![
            RoomConfig {
                pattern: "chat.>".into(),
                history_size: 20,
                ..RoomConfig::default()
            },
            RoomConfig {
                pattern: "quiet.>".into(),
                presence: false,
                ..RoomConfig::default()
            },
        ];
    })
}

fn member(server: &TestServer, shard: u16, room: &str) -> Raw {
    let mut raw = Raw::hello_on(server.addr, shard, HelloOptions::HEADERS);
    raw.send(
        Fields::Join(RoomFields {
            sid: 1,
            ..RoomFields::default()
        }),
        room.as_bytes(),
        b"",
    );
    let answer = raw.next_event().unwrap();
    assert!(matches!(answer.fields, Fields::Join(_)), "{answer:?}");
    raw
}

#[test]
fn a_push_to_a_room_reaches_its_members_and_counts_them() {
    let server = server();
    let mut members = vec![
        member(&server, 0, "chat.lobby"),
        member(&server, 1, "chat.lobby"),
        member(&server, 1, "chat.lobby"),
    ];
    let body = json!({"room": "chat.lobby", "data": {"text": "hello"}}).to_string();
    let pushed = http_request(server.http, "POST", "/api/v1/publish", Some(&body));
    assert_eq!(pushed.status, 200, "{}", pushed.text());
    assert_eq!(pushed.json(), json!({"ok": true, "recipients": 3}));
    for member in &mut members {
        let msg = member.next_event().unwrap();
        assert!(matches!(msg.fields, Fields::Msg { sid: 1, .. }), "{msg:?}");
    }

    let listed = http_request(server.http, "GET", "/api/v1/rooms", None).json();
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["rooms"][0]["room"], "chat.lobby");
    assert_eq!(listed["rooms"][0]["clients"], 3);

    let presence = http_request(
        server.http,
        "GET",
        "/api/v1/rooms/chat.lobby/presence",
        None,
    );
    assert_eq!(presence.status, 200, "{}", presence.text());
    let presence = presence.json();
    assert_eq!(
        (presence["clients"].clone(), presence["users"].clone()),
        (json!(3), json!(1))
    );
    assert_eq!(presence["members"].as_array().unwrap().len(), 3);
    let page = http_request(
        server.http,
        "GET",
        "/api/v1/rooms/chat.lobby/presence?limit=2",
        None,
    )
    .json();
    assert_eq!(page["members"].as_array().unwrap().len(), 2);
    let cursor = page["cursor"].as_str().unwrap();
    let rest = http_request(
        server.http,
        "GET",
        &format!("/api/v1/rooms/chat.lobby/presence?limit=2&cursor={cursor}"),
        None,
    )
    .json();
    assert_eq!(rest["members"].as_array().unwrap().len(), 1);
    assert!(rest.get("cursor").is_none());

    drop(members);
    wait_until("the room to empty", || {
        http_request(server.http, "GET", "/api/v1/rooms", None).json()["total"] == 0
    });
    let body = json!({"room": "chat.lobby", "text": "anyone?"}).to_string();
    let pushed = http_request(server.http, "POST", "/api/v1/publish", Some(&body)).json();
    assert_eq!(pushed["recipients"], 0);
}

#[test]
fn history_over_http_lists_publications_with_their_offsets() {
    let server = server();
    for i in 0..5 {
        let body = json!({"topic": "chat.log", "data": {"n": i}, "headers": {"trace": "x"}});
        let pushed = http_request(
            server.http,
            "POST",
            "/api/v1/publish",
            Some(&body.to_string()),
        );
        assert_eq!(pushed.status, 200);
    }
    // A push's 200 means routed: the room's home (maybe another shard than the one this
    // request lands on) keeps the last one a moment later.
    wait_until("the room's home to keep the fifth publication", || {
        http_request(server.http, "GET", "/api/v1/history/chat.log?limit=0", None).json()["offset"]
            == 5
    });
    let history = http_request(server.http, "GET", "/api/v1/history/chat.log?limit=3", None);
    assert_eq!(history.status, 200, "{}", history.text());
    let history = history.json();
    assert_eq!(history["offset"], 5);
    let publications = history["publications"].as_array().unwrap();
    let offsets: Vec<u64> = publications
        .iter()
        .map(|p| p["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, vec![3, 4, 5]);
    assert_eq!(publications[0]["data"], json!({"n": 2}));
    assert_eq!(publications[0]["headers"], json!({"trace": "x"}));
    let epoch = history["epoch"].as_str().unwrap();
    let newer = http_request(
        server.http,
        "GET",
        &format!("/api/v1/history/chat.log?since=3&epoch={epoch}&reverse=true"),
        None,
    )
    .json();
    let offsets: Vec<u64> = newer["publications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, vec![5, 4]);
}

#[test]
fn room_refusals_have_their_codes_and_statuses() {
    let server = server();
    let cases = [
        (
            "GET",
            "/api/v1/rooms/orders.new/presence",
            None,
            404,
            "NOT_A_ROOM",
        ),
        (
            "GET",
            "/api/v1/rooms/quiet.x/presence",
            None,
            409,
            "NOT_AVAILABLE",
        ),
        ("GET", "/api/v1/history/quiet.x", None, 409, "NOT_AVAILABLE"),
        (
            "GET",
            "/api/v1/history/chat.x?limit=100000",
            None,
            400,
            "LIMIT_TOO_LARGE",
        ),
        (
            "GET",
            "/api/v1/history/chat.x?limit=lots",
            None,
            400,
            "BAD_PARAMETER",
        ),
        (
            "POST",
            "/api/v1/publish",
            Some(json!({"room": "orders.new", "text": "x"}).to_string()),
            404,
            "NOT_A_ROOM",
        ),
        (
            "POST",
            "/api/v1/publish",
            Some(json!({"room": "chat.a", "topic": "chat.a", "text": "x"}).to_string()),
            400,
            "BAD_FRAME",
        ),
    ];
    for (method, path, body, status, name) in cases {
        let answer = http_request(server.http, method, path, body.as_deref());
        assert_eq!(
            (answer.status, answer.error_name()),
            (status, name.to_owned()),
            "{method} {path}: {}",
            answer.text()
        );
    }
    // A room without presence still publishes; it cannot count its members.
    let body = json!({"room": "quiet.x", "text": "x"}).to_string();
    let pushed = http_request(server.http, "POST", "/api/v1/publish", Some(&body)).json();
    assert_eq!(pushed, json!({"ok": true, "recipients": null}));
}
