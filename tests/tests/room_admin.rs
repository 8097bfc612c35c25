//! Server-side membership over HTTP (`POST /api/v1/rooms/{room}/members`, `DELETE
//! .../members/{user}`), against the real server: every connection of the user, on both shards,
//! over TCP and WebSocket, is joined with a sid of the server's (announced by a JOIN with op id
//! 0), receives the room, and is told by LEAVE when taken out; only admins may do it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::json;
use shardbus_engine::rooms::RoomConfig;
use shardbus_protocol::Fields;
use shardbus_tests::raw::Raw;
use shardbus_tests::{PATIENCE, TestServer, http_request_as, token_config as token, wait_until};
use tungstenite::Message;
use tungstenite::stream::MaybeTlsStream;

fn call(
    http: std::net::SocketAddr,
    method: &str,
    path: &str,
    secret: &str,
    body: Option<serde_json::Value>,
) -> shardbus_tests::HttpResponse {
    http_request_as(http, method, path, secret, body.as_ref())
}

/// The next frame that is not a MEMBER event (others joining or leaving).
fn past_members(raw: &mut Raw) -> shardbus_tests::raw::Owned {
    loop {
        let frame = raw.next_event().unwrap();
        if !matches!(frame.fields, Fields::Member(_)) {
            return frame;
        }
    }
}

/// A server with a backend's token, Alice's, and rooms `team.>`.
fn server(join_leave: bool) -> TestServer {
    TestServer::with(|config| {
        config.auth.http_open = false;
        config.auth.tokens = vec![
            token("backend", "backend-secret", "admin"),
            token("alice", "alice-secret", "user"),
        ];
        config.rooms = vec![RoomConfig {
            pattern: "team.>".into(),
            join_leave,
            ..RoomConfig::default()
        }];
    })
}

fn alice_on(server: &TestServer, shard: u16) -> Raw {
    for _ in 0..1000 {
        let (raw, fields) = Raw::hello_with(server.addr, &[("token", "alice-secret")]);
        match fields {
            Fields::Welcome(w) if w.shard == shard => return raw,
            Fields::Welcome(_) => {}
            other => panic!("{other:?}"),
        }
    }
    panic!("no connection on shard {shard}");
}

#[test]
fn a_backend_joins_and_removes_every_connection_of_a_user() {
    let server = server(true);
    let mut tcp = [alice_on(&server, 0), alice_on(&server, 1)];
    let (mut ws, _) = tungstenite::connect(format!("ws://{}/ws", server.http)).unwrap();
    if let MaybeTlsStream::Plain(stream) = ws.get_ref() {
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
    }
    ws.send(Message::Text(
        json!({"op": "hello", "token": "alice-secret"})
            .to_string()
            .into(),
    ))
    .unwrap();
    let mut next_json = || -> serde_json::Value {
        loop {
            let text = ws.read().unwrap();
            let value: serde_json::Value = serde_json::from_str(text.to_text().unwrap()).unwrap();
            if value["op"] != "ping" {
                return value;
            }
        }
    };
    assert_eq!(next_json()["op"], "welcome");

    let path = "/api/v1/rooms/team.red/members";
    let body = json!({"user": "alice", "info": {"added_by": "backend"}});
    let mut joined = call(
        server.http,
        "POST",
        path,
        "backend-secret",
        Some(body.clone()),
    );
    assert_eq!(joined.status, 200, "{}", joined.text());
    let mut total = joined.json()["changed"].as_u64().unwrap();
    // The browser's HELLO may still be on its way: join again until all three are in (the
    // ones already in are not joined twice).
    wait_until("all three of Alice's connections joined", || {
        if total >= 3 {
            return true;
        }
        joined = call(
            server.http,
            "POST",
            path,
            "backend-secret",
            Some(body.clone()),
        );
        total += joined.json()["changed"].as_u64().unwrap();
        false
    });
    assert_eq!(total, 3);
    let mut sids = Vec::new();
    for raw in &mut tcp {
        let frame = raw.next_event().unwrap();
        let Fields::Join(fields) = frame.fields else {
            panic!("{frame:?}")
        };
        assert_eq!((frame.op_id, frame.topic.as_slice()), (0, &b"team.red"[..]));
        assert!(fields.sid >= 1 << 52);
        sids.push(fields.sid);
    }
    let announced = loop {
        let value = next_json();
        if value["op"] == "join" {
            break value;
        }
    };
    assert_eq!(announced["id"], 0);
    assert!(announced["sid"].as_u64().unwrap() >= 1 << 52);

    let presence = call(
        server.http,
        "GET",
        "/api/v1/rooms/team.red/presence",
        "backend-secret",
        None,
    )
    .json();
    assert_eq!(presence["clients"], 3);
    assert_eq!(presence["users"], 1);
    assert_eq!(
        presence["members"][0]["info"],
        json!({"added_by": "backend"})
    );

    let pushed = call(
        server.http,
        "POST",
        "/api/v1/publish",
        "backend-secret",
        Some(json!({"room": "team.red", "text": "standup"})),
    )
    .json();
    assert_eq!(pushed["recipients"], 3);
    for (raw, sid) in tcp.iter_mut().zip(&sids) {
        let frame = past_members(raw);
        assert!(
            matches!(frame.fields, Fields::Msg { sid: s, .. } if s == *sid),
            "{frame:?}"
        );
    }
    let msg = loop {
        let value = next_json();
        if value["op"] == "msg" {
            break value;
        }
    };
    assert_eq!(
        (msg["text"].clone(), msg["sid"].clone()),
        (json!("standup"), announced["sid"].clone())
    );

    // A user may not do it; the backend takes Alice out again.
    let refused = call(
        server.http,
        "DELETE",
        "/api/v1/rooms/team.red/members/alice",
        "alice-secret",
        None,
    );
    assert_eq!(refused.status, 403);
    let removed = call(
        server.http,
        "DELETE",
        "/api/v1/rooms/team.red/members/alice",
        "backend-secret",
        None,
    );
    assert_eq!(removed.json(), json!({"ok": true, "changed": 3}));
    for (raw, sid) in tcp.iter_mut().zip(&sids) {
        let frame = past_members(raw);
        assert!(
            matches!(frame.fields, Fields::Leave(f) if f.sid == *sid),
            "{frame:?}"
        );
    }
    let left = loop {
        let value = next_json();
        if value["op"] == "leave" {
            break value;
        }
    };
    assert_eq!(left["sid"], announced["sid"]);
    wait_until("the room to empty", || {
        call(server.http, "GET", "/api/v1/rooms", "backend-secret", None).json()["total"] == 0
    });
    let unknown = call(
        server.http,
        "POST",
        "/api/v1/rooms/plain.topic/members",
        "backend-secret",
        Some(json!({"user": "alice"})),
    );
    assert_eq!(
        (unknown.status, unknown.error_name()),
        (404, "NOT_A_ROOM".to_owned())
    );
}

#[test]
fn the_rust_client_takes_a_backends_join_as_a_room() {
    let server = server(false);
    let options = shardbus_protocol::client::ClientOptions::new().token("alice-secret");
    let alice = shardbus_protocol::client::Client::connect_with(server.addr, options).unwrap();
    // Asking once starts keeping them.
    assert!(alice.server_room(std::time::Duration::ZERO).is_err());
    let joined = call(
        server.http,
        "POST",
        "/api/v1/rooms/team.blue/members",
        "backend-secret",
        Some(json!({"user": "alice"})),
    );
    assert_eq!(joined.json()["changed"], 1);
    let room = alice.server_room(PATIENCE).unwrap();
    assert_eq!((room.name(), room.joined().clients), ("team.blue", 1));
    assert!(room.sid() >= 1 << 52);
    let body = json!({"room": "team.blue", "text": "hello"});
    call(
        server.http,
        "POST",
        "/api/v1/publish",
        "backend-secret",
        Some(body),
    );
    assert_eq!(room.recv_timeout(PATIENCE).unwrap().payload(), b"hello");
    call(
        server.http,
        "DELETE",
        "/api/v1/rooms/team.blue/members/alice",
        "backend-secret",
        None,
    );
    // Taken out: the room's messages end.
    assert!(matches!(
        room.recv_timeout(PATIENCE),
        Err(shardbus_protocol::client::ClientError::Closed)
    ));
}
