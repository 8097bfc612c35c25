//! Services through the WebSocket JSON mapping (PROTOCOL.md §9.1), against the real server:
//! a JSON client registers an instance, gets the requests a binary client sends to its
//! endpoint and answers them, reports its health, is discovered, and deregisters; refusals
//! come back as `err` with their codes.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use serde_json::json;
use shardbus_tests::json_ws::{self, Ws, next, send};
use shardbus_tests::{TestServer, wait_until};

fn connect(server: &TestServer) -> Ws {
    json_ws::connect(server, json!({"op": "hello", "name": "svc"}))
}

#[test]
fn a_json_client_serves_requests_reports_health_and_deregisters() {
    let server = TestServer::start();
    let mut ws = connect(&server);
    send(
        &mut ws,
        json!({"op": "register", "id": 1, "name": "time", "version": "2.1.0",
               "endpoints": [{"subject": "time.now", "sid": 5}], "heartbeat_ms": 500,
               "description": "what time it is", "metadata": {"zone": "utc"}, "weight": 3}),
    );
    let registered = next(&mut ws);
    assert_eq!(registered["op"], "register", "{registered}");
    assert_eq!(registered["id"], 1);
    assert_eq!(registered["topic"], "time");
    assert_eq!(registered["heartbeat_ms"], 500);
    let instance = registered["instance"].as_str().unwrap().to_owned();

    let requester = server.client_on(1);
    let asking = std::thread::spawn(move || {
        let answer = requester
            .request("time.now", b"when?", Duration::from_secs(10))
            .unwrap();
        let found = requester.discover("time", "^2").unwrap();
        (answer.payload().to_vec(), found)
    });
    let request = next(&mut ws);
    assert_eq!(request["op"], "msg");
    assert_eq!(request["sid"], 5);
    assert_eq!(request["text"], "when?");
    send(
        &mut ws,
        json!({"op": "resp", "reply": request["reply"], "text": "noon"}),
    );
    let (answer, found) = asking.join().unwrap();
    assert_eq!(answer, b"noon");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id.to_string(), instance);
    assert_eq!(
        found[0].entry.get("weight"),
        Some(&shardbus_protocol::container::Value::U32(3))
    );

    send(
        &mut ws,
        json!({"op": "heartbeat", "instance": instance, "health": "degraded", "load": 9}),
    );
    send(&mut ws, json!({"op": "discover", "id": 2, "topic": "time"}));
    let listed = next(&mut ws);
    assert_eq!(listed["op"], "discover", "{listed}");
    assert_eq!(listed["count"], 1);
    assert_eq!(listed["data"][0]["health"], "degraded");
    assert_eq!(listed["data"][0]["load"], 9);
    assert_eq!(listed["data"][0]["metadata"]["zone"], "utc");

    send(
        &mut ws,
        json!({"op": "heartbeat", "id": 3, "instance": "1", "health": "ok"}),
    );
    let refused = next(&mut ws);
    assert_eq!(refused["name"], "UNKNOWN_INSTANCE", "{refused}");
    send(
        &mut ws,
        json!({"op": "register", "id": 4, "name": "time", "version": "2.1.0",
               "endpoints": [{"subject": "time.other", "sid": 6}]}),
    );
    let refused = next(&mut ws);
    assert_eq!(refused["name"], "ALREADY_REGISTERED", "{refused}");
    assert_eq!(refused["id"], 4);
    send(
        &mut ws,
        json!({"op": "register", "id": 5, "name": "bad", "version": "two",
               "endpoints": [{"subject": "bad.x", "sid": 7}]}),
    );
    let refused = next(&mut ws);
    assert_eq!(refused["name"], "BAD_SERVICE", "{refused}");
    assert!(
        refused["message"].as_str().unwrap().starts_with("version"),
        "{refused}"
    );

    send(&mut ws, json!({"op": "deregister", "instance": instance}));
    let watcher = server.client_on(0);
    wait_until("deregistered", || {
        watcher.discover("time", "").unwrap().is_empty()
    });
}

#[test]
fn json_clients_see_events_and_hear_service_busy() {
    let server = TestServer::with(|config| {
        config.auth.tokens = vec![shardbus_tests::token_config("ops", "ops-secret", "admin")];
        config.services = vec![shardbus_engine::services::ServiceConfig {
            name: "narrow".into(),
            max_concurrent: 1,
            ..shardbus_engine::services::ServiceConfig::default()
        }];
    });
    let mut ops = json_ws::connect(&server, json!({"op": "hello", "token": "ops-secret"}));
    send(
        &mut ops,
        json!({"op": "sub", "topic": "$sys.events.service_up", "sid": 1}),
    );
    send(&mut ops, json!({"op": "ping", "id": 9}));
    assert_eq!(next(&mut ops)["op"], "pong");

    let mut instance = connect(&server);
    send(
        &mut instance,
        json!({"op": "register", "id": 1, "name": "narrow", "version": "1.0.0",
               "endpoints": [{"subject": "narrow.ask", "sid": 5}]}),
    );
    assert_eq!(next(&mut instance)["op"], "register");
    // The PONG comes after every shard applied the registration (the barrier follows it).
    send(&mut instance, json!({"op": "ping", "id": 2}));
    assert_eq!(next(&mut instance)["op"], "pong");
    let event = next(&mut ops);
    assert_eq!(event["op"], "msg", "{event}");
    assert_eq!(event["topic"], "$sys.events.service_up");
    assert_eq!(event["data"][0]["service"], "narrow");
    assert_eq!(event["data"][0]["endpoints"][0], "narrow.ask");

    let mut requester = connect(&server);
    for id in [1, 2] {
        send(
            &mut requester,
            json!({"op": "req", "topic": "narrow.ask", "request_id": id, "text": "?"}),
        );
    }
    let refused = next(&mut requester);
    assert_eq!(refused["name"], "SERVICE_BUSY", "{refused}");
    assert_eq!(refused["ref"], "2");
    assert!(refused["retry_after_ms"].as_u64().unwrap() > 0, "{refused}");
    let request = next(&mut instance);
    send(
        &mut instance,
        json!({"op": "resp", "reply": request["reply"], "text": "ok"}),
    );
    let answer = next(&mut requester);
    assert_eq!(
        (answer["op"].as_str(), answer["request_id"].as_u64()),
        (Some("resp"), Some(1))
    );
}
