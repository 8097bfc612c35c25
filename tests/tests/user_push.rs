//! Pushes to a user over HTTP (`POST /api/v1/publish` with `user`), against the real server:
//! every connection of that identity, on both shards, over TCP and WebSocket, gets the push as
//! MSG sid 0; the answer counts them; anonymous connections are nobody; only admins may push.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::TcpStream;

use serde_json::json;
use shardbus_protocol::client::ClientOptions;
use shardbus_tests::{PATIENCE, TestServer, http_request_as, token_config as token, wait_until};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

fn bearer(
    http: std::net::SocketAddr,
    secret: &str,
    body: &serde_json::Value,
) -> shardbus_tests::HttpResponse {
    http_request_as(http, "POST", "/api/v1/publish", secret, Some(body))
}

#[test]
fn a_push_reaches_every_connection_of_the_user_and_counts_them() {
    let server = TestServer::with(|config| {
        config.auth.http_open = false;
        config.auth.tokens = vec![
            token("backend", "backend-secret", "admin"),
            token("alice", "alice-secret", "user"),
            token("bob", "bob-secret", "user"),
        ];
    });
    let alice = |shard| {
        server.client_on_with(
            shard,
            ClientOptions::new().no_reconnect().token("alice-secret"),
        )
    };
    let (alice0, alice1) = (alice(0), alice(1));
    let bob = server.client_on_with(1, ClientOptions::new().no_reconnect().token("bob-secret"));
    let anonymous = server.client_on(0);
    let pushes: Vec<_> = [&alice0, &alice1, &bob, &anonymous]
        .iter()
        .map(|c| c.pushes().unwrap())
        .collect();
    // And a browser of Alice's, over the WebSocket JSON mapping.
    let (mut ws, _) = tungstenite::connect(format!("ws://{}/ws", server.http)).unwrap();
    if let MaybeTlsStream::Plain(stream) = ws.get_ref() {
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
    }
    let send = |ws: &mut WebSocket<MaybeTlsStream<TcpStream>>, v: serde_json::Value| {
        ws.send(Message::Text(v.to_string().into())).unwrap();
    };
    send(&mut ws, json!({"op": "hello", "token": "alice-secret"}));
    let welcome: serde_json::Value =
        serde_json::from_str(ws.read().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(welcome["op"], "welcome");

    let push = json!({"user": "alice", "topic": "notes.new", "data": {"text": "hi"}});
    let mut answer = bearer(server.http, "backend-secret", &push);
    // A connection counts once HELLO is through everywhere; retry until the browser's is.
    wait_until("all three of Alice's connections reached", || {
        if answer.json()["recipients"] == 3 {
            return true;
        }
        answer = bearer(server.http, "backend-secret", &push);
        false
    });
    assert_eq!(answer.status, 200);
    for received in &pushes[..2] {
        let message = received.recv_timeout(PATIENCE).unwrap();
        assert_eq!((message.sid(), message.topic()), (0, "notes.new"));
    }
    let browser: serde_json::Value = loop {
        let text = ws.read().unwrap();
        let value: serde_json::Value = serde_json::from_str(text.to_text().unwrap()).unwrap();
        if value["op"] == "msg" {
            break value;
        }
    };
    assert_eq!(
        (browser["sid"].clone(), browser["data"].clone()),
        (json!(0), json!({"text": "hi"}))
    );

    // Without a topic the subject is `$user.<name>`; Bob's connection, and nobody else's.
    let answer = bearer(
        server.http,
        "backend-secret",
        &json!({"user": "bob", "text": "yo"}),
    )
    .json();
    assert_eq!(answer, json!({"ok": true, "recipients": 1}));
    assert_eq!(
        pushes[2].recv_timeout(PATIENCE).unwrap().topic(),
        "$user.bob"
    );
    for not_bob in [&pushes[0], &pushes[1], &pushes[3]] {
        assert!(not_bob.try_recv().unwrap().is_none());
    }
    let answer = bearer(
        server.http,
        "backend-secret",
        &json!({"user": "carol", "text": "?"}),
    )
    .json();
    assert_eq!(answer["recipients"], 0);
    assert_eq!(
        bearer(
            server.http,
            "backend-secret",
            &json!({"user": "anonymous", "text": "?"})
        )
        .json()["recipients"],
        0
    );
    // Users may not push to users.
    let refused = bearer(
        server.http,
        "alice-secret",
        &json!({"user": "bob", "text": "spam"}),
    );
    assert_eq!(
        (refused.status, refused.error_name()),
        (403, "PERMISSION_DENIED".to_owned())
    );
    // A user who left is no longer counted.
    drop(pushes);
    alice0.close();
    wait_until("Alice's first connection gone", || {
        bearer(
            server.http,
            "backend-secret",
            &json!({"user": "alice", "text": "."}),
        )
        .json()["recipients"]
            == 2
    });
}
