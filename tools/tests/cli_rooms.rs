//! `shardbus-cli join`, `presence` and `history` against the real server: a member prints the
//! room's messages with their positions and who joins and leaves; presence lists members;
//! history prints what the room kept; a join from a position recovers what was missed.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use shardbus_engine::rooms::RoomConfig;
use shardbus_tests::TestServer;

mod support;
use support::{background, cli, finish};

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

fn stdout(args: &[&str], server: &TestServer) -> String {
    let out = cli(server, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn join_prints_positions_and_members_and_history_and_presence_list_the_room() {
    let server = server();
    let member = background(
        &server,
        &["join", "chat.cli", "--count", "2"],
        "joined chat.cli",
    );
    let watcher = background(
        &server,
        &["--json", "join", "chat.cli", "--count", "1"],
        "joined",
    );
    assert!(stdout(&["pub", "chat.cli", "hello"], &server).is_empty());
    assert!(stdout(&["pub", "chat.cli", "again"], &server).is_empty());
    let out = finish(member);
    // Messages and member events come on their own channels: their lines may interleave.
    assert_eq!(
        out.lines().filter(|l| l.starts_with("joined: ")).count(),
        1,
        "{out}"
    );
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("[#")).collect();
    assert!(
        lines[0].starts_with("[#1] chat.cli @") && lines[0].ends_with(":1: hello"),
        "{out}"
    );
    assert!(lines[1].ends_with(":2: again"), "{out}");
    let watched = finish(watcher);
    let first: serde_json::Value = serde_json::from_str(watched.lines().next().unwrap()).unwrap();
    assert_eq!(first["payload"], "hello");
    assert_eq!(first["headers"]["sb-offset"], "1");

    let history = stdout(&["history", "chat.cli"], &server);
    assert_eq!(history.lines().count(), 2, "{history}");
    let newest = stdout(
        &["history", "chat.cli", "--limit", "1", "--reverse"],
        &server,
    );
    assert!(newest.trim().ends_with(":2: again"), "{newest}");
    let epoch = lines[0]
        .split('@')
        .nth(1)
        .unwrap()
        .split(':')
        .next()
        .unwrap();
    let after = stdout(
        &["history", "chat.cli", "--since", &format!("{epoch}:1")],
        &server,
    );
    assert!(after.trim().ends_with(":2: again"), "{after}");

    // A member that saw offset 1 recovers offset 2.
    let back = background(
        &server,
        &[
            "join",
            "chat.cli",
            "--from",
            &format!("{epoch}:1"),
            "--count",
            "1",
        ],
        "nothing missed",
    );
    assert!(finish(back).trim().ends_with(":2: again"));

    let present = background(&server, &["join", "chat.cli"], "joined chat.cli");
    let listed = cli(&server, &["presence", "chat.cli"]);
    assert!(String::from_utf8_lossy(&listed.stderr).contains("1 clients, 1 users"));
    assert_eq!(String::from_utf8_lossy(&listed.stdout).lines().count(), 1);
    drop(present);
    let refused = cli(&server, &["presence", "orders.new"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("NOT_A_ROOM"));
}
