//! `shardbus-cli events` and `rooms` against the real server: an operator tails system events
//! (one JSON line each, filtered by kind) while a service registers, and lists the rooms with
//! members; someone who may not see events is refused.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use shardbus_engine::rooms::RoomConfig;
use shardbus_tests::{TestServer, token_config};

mod support;
use support::{background, background_quiet, cli, finish};

fn server() -> TestServer {
    TestServer::with(|config| {
        config.auth.tokens = vec![token_config("ops", "ops-secret", "admin")];
        config.rooms = vec![RoomConfig {
            pattern: "chat.>".into(),
            ..RoomConfig::default()
        }];
    })
}

#[test]
fn events_prints_each_event_of_the_kinds_asked_for() {
    let server = server();
    let watcher = background(
        &server,
        &[
            "--token",
            "ops-secret",
            "events",
            "--kind",
            "service_up",
            "--count",
            "1",
        ],
        "watching $sys.events.service_up",
    );
    let _instance = background_quiet(
        &server,
        &["serve", "clock", "--endpoint", "clock.now"],
        "registered clock instance",
    );
    let out = finish(watcher);
    let event: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(event["kind"], "service_up", "{out}");
    assert_eq!(event["service"], "clock");
    assert_eq!(event["endpoints"][0], "clock.now");

    let refused = cli(&server, &["events", "--count", "1"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("PERMISSION_DENIED"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn rooms_lists_the_rooms_with_members() {
    let server = server();
    let _member = background(&server, &["join", "chat.cli"], "joined chat.cli");
    let out = cli(&server, &["--token", "ops-secret", "rooms"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("chat.cli clients 1 users 1 home shard "),
        "{text}"
    );
    let out = cli(&server, &["--token", "ops-secret", "--json", "rooms"]);
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["total"], 1);
}
