//! Built-in commands (`$sys.cmd.<name>`, PROTOCOL.md §3.14) against the real server: over the
//! binary protocol, the WebSocket JSON mapping and `POST /api/v1/cmd/{name}`, with the same
//! answers; each command's role; unknown commands and bad parameters refused with codes naming
//! them; commands rate limited and counted like requests.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::json;
use shardbus_engine::metrics::Metric;
use shardbus_protocol::ErrorCode;
use shardbus_protocol::client::{Client, ClientError, ClientOptions, ServiceSpec};
use shardbus_protocol::container::Value;
use shardbus_tests::json_ws;
use shardbus_tests::{TestServer, http_request, token_config, wait_until};

fn server() -> TestServer {
    TestServer::with(|config| {
        config.auth.tokens = vec![
            token_config("ops", "ops-secret", "admin"),
            token_config("mon", "mon-secret", "monitor"),
        ];
        config
            .auth
            .roles
            .insert("monitor".into(), shardbus_engine::auth::Permissions::user());
        config
            .commands
            .0
            .insert("connections".into(), vec!["monitor".into()]);
    })
}

fn code(error: &ClientError) -> Option<ErrorCode> {
    match error {
        ClientError::Server { code, .. } => Some(*code),
        _ => None,
    }
}

fn map(entries: &[(&str, Value)]) -> Value {
    Value::Map(
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}

fn list_len(value: &Value, key: &str) -> usize {
    match value.get(key) {
        Some(Value::List(items)) => items.len(),
        other => panic!("{key}: {other:?}"),
    }
}

#[test]
fn help_and_status_answer_anyone_and_the_admin_commands_need_their_role() {
    let server = server();
    let user = server.client_on(0);
    let help = user.command("help", &Value::Null).unwrap();
    assert_eq!(list_len(&help, "commands"), 11);
    let Some(Value::List(commands)) = help.get("commands") else {
        panic!()
    };
    let kick = commands
        .iter()
        .find(|c| c.get("name") == Some(&Value::Str("kick".into())))
        .unwrap();
    assert_eq!(kick.get("roles"), Some(&Value::List(vec![])));
    let status = user.command("status", &Value::Null).unwrap();
    assert!(status.get("totals").is_some(), "{status:?}");

    let refused = user.command("connections", &Value::Null).unwrap_err();
    assert_eq!(code(&refused), Some(ErrorCode::PERMISSION_DENIED));
    let monitor = server.client_on_with(1, ClientOptions::new().token("mon-secret"));
    let listing = monitor.command("connections", &Value::Null).unwrap();
    assert!(list_len(&listing, "connections") >= 2);
    let refused = user.command("topics", &Value::Null).unwrap_err();
    assert_eq!(code(&refused), Some(ErrorCode::PERMISSION_DENIED));
    let refused = monitor
        .command("kick", &map(&[("client_id", Value::U64(1))]))
        .unwrap_err();
    assert_eq!(code(&refused), Some(ErrorCode::PERMISSION_DENIED));

    let ops = server.client_on_with(0, ClientOptions::new().token("ops-secret"));
    let victim = server.client_on(1);
    let id = victim.server_info().unwrap().client_id;
    let kicked = ops
        .command("kick", &map(&[("client_id", Value::U64(id))]))
        .unwrap();
    assert_eq!(kicked.get("kicked"), Some(&Value::U64(id)));
    wait_until("the victim closed for good", || {
        victim.terminal_error().is_some()
    });
    let missing = ops
        .command("kick", &map(&[("client_id", Value::U64(id))]))
        .unwrap_err();
    assert_eq!(code(&missing), Some(ErrorCode::UNKNOWN_CONNECTION));
    assert_eq!(server.total(Metric::CommandsRun), 4);
}

#[test]
fn unknown_commands_and_bad_parameters_are_refused_by_name() {
    let server = server();
    let ops = server.client_on_with(0, ClientOptions::new().token("ops-secret"));
    let cases: Vec<(&str, Value, ErrorCode, &str)> = vec![
        (
            "nope",
            Value::Null,
            ErrorCode::UNKNOWN_COMMAND,
            "no command \"nope\"",
        ),
        (
            "kick",
            Value::Null,
            ErrorCode::BAD_PARAMETER,
            "client_id: missing",
        ),
        (
            "connections",
            map(&[("limit", Value::Str("lots".into()))]),
            ErrorCode::BAD_PARAMETER,
            "limit: a unsigned integer",
        ),
        (
            "connections",
            map(&[("colour", Value::Str("red".into()))]),
            ErrorCode::BAD_PARAMETER,
            "colour: not a parameter of connections",
        ),
        (
            "presence",
            map(&[("room", Value::U64(3))]),
            ErrorCode::BAD_PARAMETER,
            "room: a string",
        ),
        (
            "status",
            Value::List(vec![]),
            ErrorCode::BAD_PARAMETER,
            "the parameters are a map",
        ),
    ];
    for (name, params, expected, message) in cases {
        let error = ops.command(name, &params).unwrap_err();
        assert_eq!(code(&error), Some(expected), "{name}: {error}");
        assert!(error.to_string().contains(message), "{name}: {error}");
    }
    // Raw bytes are no parameters.
    let error = ops
        .request("$sys.cmd.status", b"raw", std::time::Duration::from_secs(5))
        .unwrap_err();
    assert_eq!(code(&error), Some(ErrorCode::BAD_PARAMETER));
    assert!(server.total(Metric::CommandsRefused) >= 7);
    assert!(server.errors(ErrorCode::BAD_PARAMETER) >= 6);
    // The connection stays.
    ops.command("help", &Value::Null).unwrap();
}

#[test]
fn every_edge_runs_the_same_command() {
    let server = server();
    let host = server.client_on(1);
    let _svc = host
        .register("calc", &ServiceSpec::new("1.0.0").endpoint("calc.add"))
        .unwrap();
    let ops = server.client_on_with(0, ClientOptions::new().token("ops-secret"));
    let binary = ops
        .command("services", &map(&[("name", Value::Str("calc".into()))]))
        .unwrap();
    assert_eq!(binary.get("name"), Some(&Value::Str("calc".into())));

    let http = http_request(
        server.http,
        "POST",
        "/api/v1/cmd/services",
        Some(&json!({"name": "calc"}).to_string()),
    );
    assert_eq!(http.status, 200, "{}", http.text());
    let http = http.json();
    assert_eq!(http["name"], "calc");
    assert_eq!(http["instances"][0]["endpoints"][0]["subject"], "calc.add");
    let same = http_request(server.http, "GET", "/api/v1/services/calc", None).json();
    assert_eq!(same["instances"], http["instances"]);
    let unknown = http_request(server.http, "POST", "/api/v1/cmd/nope", None);
    assert_eq!(
        (unknown.status, unknown.error_name().as_str()),
        (400, "UNKNOWN_COMMAND")
    );

    let mut ws = json_ws::connect(&server, json!({"op": "hello", "token": "ops-secret"}));
    json_ws::send(
        &mut ws,
        json!({"op": "req", "topic": "$sys.cmd.services", "request_id": 7, "data": {"name": "calc"}}),
    );
    let answer = json_ws::next(&mut ws);
    assert_eq!(answer["op"], "resp", "{answer}");
    assert_eq!(answer["request_id"], 7);
    assert_eq!(answer["data"]["instances"], http["instances"]);
    json_ws::send(
        &mut ws,
        json!({"op": "req", "topic": "$sys.cmd.kick", "request_id": 8, "data": {}}),
    );
    let refused = json_ws::next(&mut ws);
    assert_eq!(refused["name"], "BAD_PARAMETER", "{refused}");
    assert_eq!(refused["ref"], "8");
}

#[test]
fn commands_are_rate_limited_like_requests() {
    let server = TestServer::with(|config| {
        config.rate_limits.conn_msgs_per_sec = 2;
    });
    let user: Client = server.client_on(0);
    let mut limited = false;
    for _ in 0..10 {
        if let Err(error) = user.command("help", &Value::Null) {
            assert_eq!(code(&error), Some(ErrorCode::RATE_LIMITED), "{error}");
            limited = true;
            break;
        }
    }
    assert!(limited, "ten commands in a row at two a second");
}

#[test]
fn a_push_reaches_every_connection_of_a_user_and_says_who_sent_it() {
    let server = TestServer::with(|config| {
        config.auth.tokens = vec![
            token_config("alice", "alice-secret", "chat"),
            token_config("bob", "bob-secret", "chat"),
            token_config("eve", "eve-secret", "user"),
        ];
        config
            .auth
            .roles
            .insert("chat".into(), shardbus_engine::auth::Permissions::user());
        config.commands.0.insert("push".into(), vec!["chat".into()]);
    });
    let bob = |shard| server.client_on_with(shard, ClientOptions::new().token("bob-secret"));
    let (phone, laptop) = (bob(0), bob(1));
    let inboxes = [phone.pushes().unwrap(), laptop.pushes().unwrap()];
    let alice = server.client_on_with(1, ClientOptions::new().token("alice-secret"));
    let params = map(&[
        ("user", Value::Str("bob".into())),
        ("text", Value::Str("lunch?".into())),
    ]);
    let answer = alice.command("push", &params).unwrap();
    assert_eq!(answer.get("recipients"), Some(&Value::U64(2)));
    for inbox in &inboxes {
        let pushed = inbox.recv_timeout(shardbus_tests::PATIENCE).unwrap();
        assert_eq!(pushed.topic(), "$user.bob");
        assert_eq!(pushed.payload(), b"lunch?");
        assert_eq!(pushed.headers().get("sb-from"), Some("alice"));
    }
    // A role the command does not list may not push; a user nobody is has no recipients.
    let eve = server.client_on_with(0, ClientOptions::new().token("eve-secret"));
    let refused = eve.command("push", &params).unwrap_err();
    assert_eq!(code(&refused), Some(ErrorCode::PERMISSION_DENIED));
    let nobody = map(&[
        ("user", Value::Str("carol".into())),
        ("text", Value::Str("hi".into())),
    ]);
    let answer = alice.command("push", &nobody).unwrap();
    assert_eq!(answer.get("recipients"), Some(&Value::U64(0)));
    let bad = map(&[
        ("user", Value::Str("bad user".into())),
        ("text", Value::Str("hi".into())),
    ]);
    let refused = alice.command("push", &bad).unwrap_err();
    assert_eq!(code(&refused), Some(ErrorCode::BAD_PARAMETER));
}
