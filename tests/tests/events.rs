//! System events (`$sys.events.<kind>`, PROTOCOL.md §3.13) against the real server: an admin
//! sees connections come and go (with the closing code), refused credentials, kicks, service
//! instances up, unhealthy and down, rooms made and gone; a poll cycle's events of a kind
//! arrive as one publication; nobody else may see or forge them; with no subscriber nothing
//! is published.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use shardbus_engine::metrics::Metric;
use shardbus_engine::rooms::RoomConfig;
use shardbus_protocol::client::{Client, ClientOptions, Subscription};
use shardbus_protocol::container::{ContainerLimits, Value};
use shardbus_protocol::{ErrorCode, Fields, Flags, HelloOptions, RoomFields, ServiceFields};
use shardbus_tests::raw::Raw;
use shardbus_tests::{PATIENCE, TestServer, http_request, token_config};

fn server() -> TestServer {
    TestServer::with(|config| {
        config.auth.tokens = vec![
            token_config("ops", "ops-secret", "admin"),
            token_config("watcher", "watch-secret", "watcher"),
        ];
        config
            .auth
            .roles
            .insert("watcher".into(), shardbus_engine::auth::Permissions::user());
        config.events.roles = vec!["watcher".into()];
        config.rooms = vec![RoomConfig {
            pattern: "chat.>".into(),
            ..RoomConfig::default()
        }];
    })
}

fn as_token(server: &TestServer, shard: u16, token: &str) -> Client {
    server.client_on_with(shard, ClientOptions::new().token(token))
}

/// The events of the next publication on `sub`.
fn events(sub: &Subscription) -> Vec<Value> {
    let message = sub.recv_timeout(PATIENCE).unwrap();
    match message.value(&ContainerLimits::default()).unwrap() {
        Value::List(list) => list,
        other => panic!("an event publication is a list, got {other:?}"),
    }
}

/// Events on `sub` until one that `wanted` accepts.
fn until(sub: &Subscription, wanted: impl Fn(&Value) -> bool) -> Value {
    loop {
        if let Some(event) = events(sub).into_iter().find(|e| wanted(e)) {
            return event;
        }
    }
}

fn text<'a>(event: &'a Value, key: &str) -> &'a str {
    match event.get(key) {
        Some(Value::Str(s)) => s,
        other => panic!("{key}: {other:?} in {event:?}"),
    }
}

fn number(event: &Value, key: &str) -> u64 {
    match event.get(key) {
        Some(Value::U64(n)) => *n,
        other => panic!("{key}: {other:?} in {event:?}"),
    }
}

#[test]
fn an_admin_sees_connections_refusals_and_kicks_on_every_shard() {
    let server = server();
    let ops = as_token(&server, 0, "ops-secret");
    let connects = ops.subscribe("$sys.events.connect").unwrap();
    let disconnects = ops.subscribe("$sys.events.disconnect").unwrap();
    let failures = ops.subscribe("$sys.events.auth_failure").unwrap();
    let kicks = ops.subscribe("$sys.events.kick").unwrap();
    ops.flush().unwrap();

    let visitor = server.client_on_with(1, ClientOptions::new().name("visitor"));
    let id = visitor.server_info().unwrap().client_id;
    let event = until(&connects, |e| e.get("client_id") == Some(&Value::U64(id)));
    assert_eq!(text(&event, "kind"), "connect");
    assert_eq!(text(&event, "name"), "visitor");
    assert_eq!(text(&event, "user"), "anonymous");
    assert_eq!(event.get("shard"), Some(&Value::U16(1)));
    visitor.close();
    let event = until(&disconnects, |e| {
        e.get("client_id") == Some(&Value::U64(id))
    });
    assert_eq!(text(&event, "code"), "closed");

    let mut wrong = Raw::connect(server.addr);
    let mut hello = shardbus_protocol::HeadersBuilder::new();
    hello.insert("token", "not-it").unwrap();
    wrong.send_with(
        Fields::Hello {
            version: 1,
            options: HelloOptions::default(),
        },
        b"",
        hello.headers(),
        b"",
    );
    assert_eq!(wrong.expect_err().err_code(), Some(ErrorCode::AUTH_FAILED));
    let event = until(&failures, |_| true);
    assert_eq!(text(&event, "code"), "AUTH_FAILED");

    let target = server.client_on(1);
    let id = target.server_info().unwrap().client_id;
    let kicked = http_request(
        server.http,
        "DELETE",
        &format!("/api/v1/connections/{id}"),
        None,
    );
    assert_eq!(kicked.status, 200);
    let event = until(&kicks, |e| e.get("client_id") == Some(&Value::U64(id)));
    assert_eq!(text(&event, "kind"), "kick");
    let event = until(&disconnects, |e| {
        e.get("client_id") == Some(&Value::U64(id))
    });
    assert_eq!(text(&event, "code"), "KICKED");
}

#[test]
fn services_and_rooms_are_told_and_a_cycles_events_arrive_together() {
    let server = server();
    let watcher = as_token(&server, 1, "watch-secret");
    let all = watcher.subscribe("$sys.events.>").unwrap();
    watcher.flush().unwrap();

    // Ten registrations in one write are handled in one read: their ten `service_up` events
    // are one publication.
    let mut raw = Raw::hello_on(server.addr, 0, HelloOptions::default());
    let mut burst = Vec::new();
    for i in 0..10u64 {
        let endpoint = Value::Map(vec![
            ("subject".into(), Value::Str(format!("svc{i}.ask"))),
            ("sid".into(), Value::U64(i + 1)),
        ]);
        let description = Value::Map(vec![
            ("version".into(), Value::Str("1.0.0".into())),
            ("endpoints".into(), Value::List(vec![endpoint])),
        ])
        .to_binary()
        .unwrap();
        let frame = shardbus_protocol::Frame::new(Fields::Register(ServiceFields {
            heartbeat_ms: 100,
            ..ServiceFields::default()
        }))
        .with_topic(Box::leak(format!("svc{i}").into_boxed_str()))
        .with_flags(Flags::CONTAINER)
        .with_payload(&description);
        shardbus_protocol::encode(&frame, &mut burst).unwrap();
    }
    raw.send_bytes(&burst);
    let ups = loop {
        let batch = events(&all);
        if batch.iter().any(|e| text(e, "kind") == "service_up") {
            break batch;
        }
    };
    assert_eq!(
        ups.len(),
        10,
        "one publication for the cycle's ten: {ups:?}"
    );
    assert_eq!(text(&ups[3], "service"), "svc3");
    assert_eq!(
        ups[3].get("endpoints"),
        Some(&Value::List(vec![Value::Str("svc3.ask".into())]))
    );
    // Silent: unhealthy, then down.
    let unhealthy = until(&all, |e| text(e, "kind") == "service_unhealthy");
    assert_eq!(text(&unhealthy, "why"), "heartbeats missed");
    let down = until(&all, |e| text(e, "kind") == "service_down");
    assert!(
        text(&down, "why").starts_with("heartbeats missed"),
        "{down:?}"
    );

    let mut member = Raw::hello_on(server.addr, 0, HelloOptions::default());
    let join = Fields::Join(RoomFields {
        sid: 1,
        ..RoomFields::default()
    });
    member.send(join, b"chat.events", b"");
    let made = until(&all, |e| text(e, "kind") == "room_created");
    assert_eq!(text(&made, "room"), "chat.events");
    member.send(Fields::Leave(RoomFields::default()), b"chat.events", b"");
    let gone = until(&all, |e| text(e, "kind") == "room_removed");
    assert_eq!(text(&gone, "room"), "chat.events");
    assert!(number(&gone, "at_ms") >= number(&made, "at_ms"));
    raw.flush_past_errors();
}

#[test]
fn no_one_else_sees_or_forges_events_and_unwatched_events_cost_nothing() {
    let server = server();
    let mut plain = Raw::hello_on(server.addr, 0, HelloOptions::default());
    plain.send(Fields::Sub { sid: 1 }, b"$sys.events.>", b"");
    assert_eq!(
        plain.expect_err().err_code(),
        Some(ErrorCode::PERMISSION_DENIED)
    );
    plain.send(Fields::Sub { sid: 2 }, b"$sys.cmd.>", b"");
    assert_eq!(
        plain.expect_err().err_code(),
        Some(ErrorCode::PERMISSION_DENIED)
    );
    plain.send(Fields::Pub, b"$sys.events.connect", b"forged");
    assert_eq!(
        plain.expect_err().err_code(),
        Some(ErrorCode::PERMISSION_DENIED)
    );
    // Nobody watches yet: connections come and go and nothing is published.
    for shard in [0, 1] {
        server.client_on(shard).close();
    }
    plain.flush();
    assert_eq!(server.total(Metric::EventsPublished), 0);

    // A wildcard subscriber that may not see events gets none of them; an admin's does.
    plain.subscribe(3, ">", "");
    let ops = as_token(&server, 1, "ops-secret");
    let everything = ops.subscribe(">").unwrap();
    ops.flush().unwrap();
    server.client_on(0).close();
    let seen = everything.recv_timeout(PATIENCE).unwrap();
    assert!(seen.topic().starts_with("$sys.events."), "{}", seen.topic());
    ops.publish("after", b"x").unwrap();
    loop {
        let frame = plain.next_event().unwrap();
        if let Fields::Msg { .. } = frame.fields {
            assert_eq!(frame.topic, b"after", "a non-admin's `>` got an event");
            break;
        }
    }
    assert!(server.total(Metric::EventsPublished) >= 1);
}

#[test]
fn a_slow_consumer_cut_is_told() {
    let server = TestServer::with(|config| {
        config.auth.tokens = vec![token_config("ops", "ops-secret", "admin")];
        config.limits.max_payload = 1024;
        config.limits.max_pending = 64 << 10;
    });
    let ops = as_token(&server, 0, "ops-secret");
    let cut = ops.subscribe("$sys.events.slow_consumer").unwrap();
    ops.flush().unwrap();
    let mut slow = Raw::hello_on(server.addr, 1, HelloOptions(0));
    slow.subscribe(1, "firehose", "");
    let id = slow.welcome.unwrap().client_id;
    let publisher = server.client_on(0);
    let payload = [7u8; 1024];
    let event = loop {
        for _ in 0..1_000 {
            publisher.publish("firehose", &payload).unwrap();
        }
        publisher.flush().unwrap();
        if let Ok(Some(message)) = cut.try_recv() {
            break message;
        }
        assert!(
            server.total(Metric::MsgsIn) < 1_000_000,
            "a million messages and no slow consumer"
        );
    };
    let Value::List(events) = event.value(&ContainerLimits::default()).unwrap() else {
        panic!("a list");
    };
    assert_eq!(events[0].get("client_id"), Some(&Value::U64(id)));
}
