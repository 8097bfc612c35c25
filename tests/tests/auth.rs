//! Authentication and topic permissions against the real server:
//! static tokens naming roles, anonymous access off, PERMISSION_DENIED for publishes,
//! subscriptions (plain and queue) and requests outside a role, and a wildcard subscriber that
//! never receives a denied subject.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use shardbus_engine::auth::{Permissions, Rule, TokenConfig};
use shardbus_engine::config::Config;
use shardbus_protocol::client::{Client, ClientError, ClientOptions};
use shardbus_protocol::{ErrorCode, Fields};
use shardbus_tests::{PATIENCE, Raw, TestServer, sha256_hex};

fn token(name: &str, secret: &str, role: &str) -> TokenConfig {
    TokenConfig {
        name: name.into(),
        sha256: sha256_hex(secret),
        role: role.into(),
        permissions: None,
    }
}

fn secured(config: &mut Config) {
    config.auth.anonymous = false;
    config.auth.tokens = vec![
        token("operator", "op-secret", "admin"),
        token("sensor-7", "sensor-secret", "sensors"),
    ];
    config.auth.roles.insert(
        "sensors".into(),
        Permissions {
            publish: Rule {
                allow: vec!["sensors.>".into()],
                deny: vec![],
            },
            subscribe: Rule {
                allow: vec![">".into()],
                deny: vec!["secret.>".into()],
            },
            request: Rule::default(),
            respond: None,
            admin: false,
        },
    );
}

fn as_token(server: &TestServer, secret: &str) -> Result<Client, ClientError> {
    Client::connect_with(
        server.addr,
        ClientOptions::new().no_reconnect().token(secret),
    )
}

/// A raw connection whose HELLO carries `key: value` (nothing when `key` is empty).
fn raw_hello(server: &TestServer, key: &str, value: &str) -> (Raw, Fields) {
    let headers: &[(&str, &str)] = if key.is_empty() { &[] } else { &[(key, value)] };
    Raw::hello_with(server.addr, headers)
}

type Ws = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

/// A WebSocket to `/ws` that has sent `hello` (a JSON text message).
fn ws_hello(server: &TestServer, hello: &str) -> Ws {
    let (mut ws, _) = tungstenite::connect(format!("ws://{}/ws", server.http)).unwrap();
    ws.send(tungstenite::Message::Text(hello.into())).unwrap();
    ws
}

/// The next message, as text.
fn ws_text(ws: &mut Ws) -> String {
    ws.read().unwrap().to_text().unwrap().to_owned()
}

#[test]
fn without_anonymous_access_only_a_known_token_connects() {
    let server = TestServer::with(secured);
    for (key, value, code) in [
        ("", "", ErrorCode::AUTH_REQUIRED),
        ("token", "guess", ErrorCode::AUTH_FAILED),
        ("user", "alice", ErrorCode::AUTH_FAILED),
        ("jwt", "e30.e30.", ErrorCode::AUTH_FAILED),
    ] {
        let (mut raw, answer) = raw_hello(&server, key, value);
        match answer {
            Fields::Err { code: got, .. } => assert_eq!(got, code, "{key}={value}"),
            other => panic!("{key}={value}: expected ERR, got {other:?}"),
        }
        assert!(
            raw.until_closed().is_empty(),
            "the connection closes after {code:?}"
        );
    }
    let (_raw, answer) = raw_hello(&server, "token", "sensor-secret");
    assert!(matches!(answer, Fields::Welcome(_)), "{answer:?}");
    assert!(as_token(&server, "op-secret").is_ok());
    assert_eq!(server.errors(ErrorCode::AUTH_FAILED), 3);
    assert_eq!(server.errors(ErrorCode::AUTH_REQUIRED), 1);
}

#[test]
fn a_role_limits_publish_subscribe_and_request_and_the_connection_stays() {
    let server = TestServer::with(secured);
    let (mut sensor, _) = raw_hello(&server, "token", "sensor-secret");
    sensor.publish("sensors.kitchen.temp", b"21");
    for (fields, topic, payload) in [
        (Fields::Pub, "orders.new", ""),
        (Fields::Sub { sid: 1 }, "secret.*", ""),
        (Fields::Sub { sid: 2 }, "secret.>", "workers"),
        (
            Fields::Req {
                request_id: 9,
                timeout_ms: 1000,
            },
            "svc.time",
            "",
        ),
    ] {
        sensor.send(fields, topic.as_bytes(), payload.as_bytes());
        let err = sensor.expect_err();
        assert_eq!(
            err.err_code(),
            Some(ErrorCode::PERMISSION_DENIED),
            "{topic}"
        );
    }
    sensor.flush();
    assert_eq!(server.errors(ErrorCode::PERMISSION_DENIED), 4);
}

#[test]
fn a_wildcard_subscriber_never_receives_a_denied_subject() {
    let server = TestServer::with(secured);
    let sensor = as_token(&server, "sensor-secret").unwrap();
    let everything = sensor.subscribe(">").unwrap();
    sensor.flush().unwrap();
    let operator = as_token(&server, "op-secret").unwrap();
    operator.publish("secret.plan", b"hidden").unwrap();
    operator.publish("public.news", b"seen").unwrap();
    operator.flush().unwrap();
    let first = everything.recv_timeout(PATIENCE).unwrap();
    assert_eq!(
        (first.topic(), first.payload()),
        ("public.news", &b"seen"[..])
    );
    assert!(everything.try_recv().unwrap().is_none());
}

#[test]
fn a_websocket_json_client_authenticates_with_its_token() {
    let server = TestServer::with(secured);
    let mut ws = ws_hello(&server, r#"{"op":"hello","token":"sensor-secret"}"#);
    assert!(ws_text(&mut ws).contains(r#""op":"welcome""#));
    ws.send(tungstenite::Message::Text(
        r#"{"op":"pub","topic":"orders.x","id":3}"#.into(),
    ))
    .unwrap();
    let err = ws_text(&mut ws);
    assert!(err.contains("PERMISSION_DENIED"), "{err}");

    let mut anonymous = ws_hello(&server, r#"{"op":"hello"}"#);
    let refused = ws_text(&mut anonymous);
    assert!(refused.contains("AUTH_REQUIRED"), "{refused}");
}

#[test]
fn users_log_in_with_a_password_checked_against_its_argon2_hash() {
    let server = TestServer::with(|config| {
        secured(config);
        config.auth.users = vec![shardbus_engine::auth::password::UserConfig {
            name: "alice".into(),
            password_hash: shardbus_engine::auth::password::hash("wonderland").unwrap(),
            role: "guest".into(),
            permissions: None,
        }];
    });
    let login =
        |user: &str, pass: &str| Raw::hello_with(server.addr, &[("user", user), ("pass", pass)]);
    let (mut alice, welcome) = login("alice", "wonderland");
    assert!(matches!(welcome, Fields::Welcome(_)), "{welcome:?}");
    alice.publish("any.topic", b"x");
    assert_eq!(
        alice.expect_err().err_code(),
        Some(ErrorCode::PERMISSION_DENIED),
        "a guest"
    );
    for (user, pass) in [("alice", "looking-glass"), ("mallory", "wonderland")] {
        let (_, answer) = login(user, pass);
        match answer {
            Fields::Err { code, .. } => assert_eq!(code, ErrorCode::AUTH_FAILED, "{user}"),
            other => panic!("{user}: expected AUTH_FAILED, got {other:?}"),
        }
    }
    let mut ws = ws_hello(
        &server,
        r#"{"op":"hello","user":"alice","pass":"wonderland"}"#,
    );
    assert!(ws_text(&mut ws).contains(r#""op":"welcome""#));
}
