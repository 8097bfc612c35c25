//! The STATUS op reports every shard's counters.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use shardbus_protocol::container::Value;
use shardbus_tests::{PATIENCE, TestServer};

fn u64_at(value: &Value, path: &[&str]) -> u64 {
    let mut at = value;
    for key in path {
        at = at.get(key).unwrap_or_else(|| panic!("no {key} in {at:?}"));
    }
    match at {
        Value::U64(n) => *n,
        other => panic!("{path:?} is {other:?}"),
    }
}

#[test]
fn status_counts_connections_messages_and_errors_per_shard() {
    let server = TestServer::start();
    let subscriber = server.client_on(1);
    let sub = subscriber.subscribe("count.me").unwrap();
    subscriber.flush().unwrap();
    let publisher = server.client_on(0);
    for _ in 0..5 {
        publisher.publish("count.me", b"12345").unwrap();
    }
    for _ in 0..5 {
        sub.recv_timeout(PATIENCE).unwrap();
    }
    let _ = publisher.request("nobody", b"", PATIENCE);
    // Connections that landed on the wrong shard while placing these two are closed by now.
    shardbus_tests::wait_until("only the two clients to remain", || {
        server.total(shardbus_engine::metrics::Metric::Connections) == 2
    });
    let status = publisher.status().unwrap();
    assert_eq!(u64_at(&status, &["server", "shards"]), 2);
    assert_eq!(u64_at(&status, &["totals", "connections"]), 2);
    assert_eq!(u64_at(&status, &["totals", "subscriptions"]), 1);
    assert_eq!(u64_at(&status, &["totals", "msgs_in"]), 6);
    assert_eq!(u64_at(&status, &["totals", "msgs_out"]), 5);
    assert_eq!(u64_at(&status, &["totals", "bytes_out"]), 25);
    assert_eq!(u64_at(&status, &["totals", "errors", "NO_RESPONDERS"]), 1);
    let Some(Value::List(shards)) = status.get("shards") else {
        panic!("{status:?}")
    };
    assert_eq!(shards.len(), 2);
    assert_eq!(u64_at(&shards[0], &["msgs_in"]), 6);
    assert_eq!(u64_at(&shards[1], &["msgs_out"]), 5);
    assert!(u64_at(&shards[0], &["mesh_forwards_out"]) >= 5);
}

#[test]
fn protocol_md_lists_exactly_the_counters_status_reports() {
    let spec = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../protocol/PROTOCOL.md"
    ))
    .unwrap();
    let start = spec.find("Counters: ").expect("the counter list in §3.9");
    let end = start + spec[start..].find("(all").unwrap();
    let listed: Vec<&str> = spec[start..end].split('`').skip(1).step_by(2).collect();
    let reported: Vec<&str> = shardbus_engine::metrics::Metric::ALL
        .iter()
        .map(|m| m.name())
        .collect();
    assert_eq!(listed, reported);
}
