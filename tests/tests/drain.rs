//! Graceful shutdown: connected clients get DRAIN with the grace period, then SERVER_DRAINING
//! and a close; the shards stop and `join` returns.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use shardbus_protocol::{ErrorCode, Fields, HelloOptions};
use shardbus_tests::{Raw, TestServer};

#[test]
fn shutdown_drains_every_client_then_stops() {
    let server = TestServer::with(|c| c.shutdown.grace_ms = 300);
    let mut stays = Raw::hello_on(server.addr, 0, HelloOptions(0));
    let mut other = Raw::hello_on(server.addr, 1, HelloOptions(0));
    stays.subscribe(1, "x", "");
    other.flush();
    server.request_shutdown();
    for raw in [&mut stays, &mut other] {
        let frames = raw.until_closed();
        assert!(
            matches!(
                frames.first().map(|f| f.fields),
                Some(Fields::Drain { grace_ms: 300 })
            ),
            "DRAIN first: {frames:?}"
        );
        assert_eq!(
            frames.last().and_then(|f| f.err_code()),
            Some(ErrorCode::SERVER_DRAINING)
        );
    }
    server.stop();
}

#[test]
fn a_client_that_leaves_on_drain_lets_the_shard_stop_early() {
    let server = TestServer::with(|c| c.shutdown.grace_ms = 60_000);
    let mut client = Raw::hello(server.addr, HelloOptions(0));
    server.request_shutdown();
    let drain = client.next_event().unwrap();
    assert!(matches!(drain.fields, Fields::Drain { grace_ms: 60_000 }));
    drop(client);
    // Returns well before the 60 s grace period: the last client left.
    server.stop();
}
