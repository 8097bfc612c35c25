//! Long-lived tasks past glommio's waker limit: a task's reference count is an `i16`, and a
//! pending accept keeps one waker clone per poll, so an accept re-polled by anything else in
//! its task stops for good after 32,767 polls (an idle broker stopped accepting 11 minutes
//! after start). Here the shards' watch task runs every 50 µs until it has ticked far past
//! that on every shard; then the server must still accept on both shards, route, and fire
//! request deadlines.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use shardbus_engine::metrics::Metric;
use shardbus_engine::server::ShardHealth;
use shardbus_protocol::ErrorCode;
use shardbus_tests::{PATIENCE, TestServer, http_request};

/// Far more wake-ups than an `i16` reference count survives.
const TICKS: u64 = 3 * 32_768;

#[test]
fn every_shard_still_accepts_and_times_requests_out_after_100k_watch_ticks() {
    let server = TestServer::with(|config| config.runtime.watch_interval_us = 50);
    // A subscriber held open through the whole run, as on a quiet production broker.
    let early = server.client_on(1);
    let sub = early.subscribe("still.here").unwrap();
    early.flush().unwrap();

    let deadline = Instant::now() + 4 * PATIENCE;
    while (0..2).any(|shard| server.shard_metric(shard, Metric::WatchTicks) < TICKS) {
        assert!(
            Instant::now() < deadline,
            "the watch tasks ticked only {} and {} times",
            server.shard_metric(0, Metric::WatchTicks),
            server.shard_metric(1, Metric::WatchTicks)
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    for shard in 0..2 {
        let client = server.client_on(shard);
        client.publish("still.here", &[shard as u8]).unwrap();
        client.flush().unwrap();
        assert_eq!(sub.recv_timeout(PATIENCE).unwrap().payload(), [shard as u8]);
        // A responder that never answers: the requester's shard must still run its timer.
        let silent = server.client_on(1 - shard);
        let _void = silent.subscribe("void").unwrap();
        silent.flush().unwrap();
        let error = client
            .request("void", b"", Duration::from_millis(50))
            .unwrap_err();
        assert_eq!(error.code(), Some(ErrorCode::TIMEOUT));
    }
    assert!(
        server
            .health()
            .iter()
            .all(|h| matches!(h, ShardHealth::Serving { .. }))
    );
    let health = http_request(server.http, "GET", "/healthz", None);
    assert_eq!(health.status, 200, "{}", health.text());
    assert_eq!(health.json()["shards"][1]["state"], "serving");
}
