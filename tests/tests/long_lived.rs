//! Long-lived tasks past glommio's waker limit: a task's reference count is an `i16`, and a
//! pending accept keeps one waker clone per poll, so an accept re-polled by anything else in
//! its task stops for good after 32,767 polls (an idle broker stopped accepting 11 minutes
//! after start). Here every long-lived task is woken far more often than that — the watch
//! task (every 50 µs), the keepalive task (every 1 ms), the request timer and both mesh
//! receivers (40,000 cross-shard requests), an HTTP keep-alive connection (40,000 requests:
//! hyper's per-request header timers once held a waker clone each until their deadline and
//! overflowed it) and a WebSocket (40,000 messages) — and the server must still accept on both
//! shards, route, answer and fire request deadlines.
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

/// Waits, within a generous bound, until `metric` has passed `target` on both shards.
fn wait_for_ticks(server: &TestServer, metric: Metric, target: u64) {
    // A 1 ms timer ticks ~1,000 times a second on an idle shard; far slower on a loaded one.
    let deadline = Instant::now() + 8 * PATIENCE;
    while (0..2).any(|shard| server.shard_metric(shard, metric) < target) {
        assert!(
            Instant::now() < deadline,
            "{metric:?}: {} and {}",
            server.shard_metric(0, metric),
            server.shard_metric(1, metric)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_keepalive_task_runs_past_the_waker_limit_and_new_connections_are_served() {
    // A 1 ms keepalive and nobody connected: only the task's own timer wakes it.
    let server = TestServer::with(|config| config.limits.ping_interval_ms = 1);
    wait_for_ticks(&server, Metric::KeepaliveTicks, 40_000);
    for shard in 0..2 {
        // WELCOME comes before any PING: the shard accepts and runs the session.
        let raw =
            shardbus_tests::Raw::hello_on(server.addr, shard, shardbus_protocol::HelloOptions(0));
        assert_eq!(raw.shard(), shard);
    }
}

#[test]
fn request_timers_mesh_receivers_and_edge_connections_take_40k_wakeups_each() {
    let server = TestServer::start();
    const ROUNDS: u32 = 40_000;
    // Requests across shards: each wakes the origin's request timer (a new earliest deadline),
    // both mesh receivers (the request there, the response back), and the responder's session.
    let responder = server.client_on(1);
    let sub = responder.subscribe("echo").unwrap();
    responder.flush().unwrap();
    let answering = std::thread::spawn(move || {
        for _ in 0..ROUNDS {
            let request = sub.recv_timeout(PATIENCE).unwrap();
            responder.respond(&request, request.payload()).unwrap();
        }
    });
    let requester = server.client_on(0);
    let requesting = std::thread::spawn(move || {
        for i in 0..ROUNDS {
            let answer = requester
                .request("echo", &i.to_le_bytes(), PATIENCE)
                .unwrap();
            assert_eq!(answer.payload(), i.to_le_bytes());
        }
    });
    // At the same time, one HTTP keep-alive connection and one WebSocket, each woken for
    // every message (hyper makes a header-timeout sleep per request on the connection).
    let http_addr = server.http;
    let browsing = std::thread::spawn(move || {
        use std::io::{BufRead, Read, Write};
        let mut http = std::net::TcpStream::connect(http_addr).unwrap();
        http.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut reader = std::io::BufReader::new(http.try_clone().unwrap());
        for _ in 0..ROUNDS {
            http.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0u8; length];
            reader.read_exact(&mut body).unwrap();
        }
    });
    let (mut ws, _) = tungstenite::connect(format!("ws://{}/ws", server.http)).unwrap();
    ws.send(tungstenite::Message::Text(r#"{"op":"hello"}"#.into()))
        .unwrap();
    ws.read().unwrap();
    for i in 0..ROUNDS {
        let ping = format!(r#"{{"op":"ping","id":{}}}"#, i + 1);
        ws.send(tungstenite::Message::Text(ping.into())).unwrap();
        loop {
            if let tungstenite::Message::Text(text) = ws.read().unwrap()
                && text.contains("pong")
            {
                break;
            }
        }
    }
    requesting.join().unwrap();
    browsing.join().unwrap();
    answering.join().unwrap();
    // Every shard still accepts and routes, and the edges still answer.
    for shard in 0..2 {
        let client = server.client_on(shard);
        let answer = client.request("nobody", b"", PATIENCE).unwrap_err();
        assert_eq!(answer.code(), Some(ErrorCode::NO_RESPONDERS));
    }
    assert_eq!(
        http_request(server.http, "GET", "/healthz", None).status,
        200
    );
}
