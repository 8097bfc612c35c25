//! Room history in Redis Streams (`history.backend = "redis"`) against a real redis-server
//! started for each test: history that survives a restart of the broker and of Redis, one order
//! for a room that two brokers write, and Redis going away under load — messaging goes on,
//! history goes on in memory at a new epoch, `/readyz` says degraded, and when Redis is back
//! the rooms start a new epoch there too; a Redis that wants TLS and a password is reached with
//! them, and a wrong password degrades rather than stops.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use shardbus_engine::config::HistoryBackend;
use shardbus_engine::metrics::Metric;
use shardbus_engine::rooms::RoomConfig;
use shardbus_protocol::client::{HistoryQuery, JoinOptions, Message, Room};
use shardbus_tests::redis::RedisServer;
use shardbus_tests::{PATIENCE, TestServer, http_request, wait_until};

fn broker(redis: &RedisServer) -> TestServer {
    broker_at(&redis.url(), 2_000)
}

fn broker_at(url: &str, timeout_ms: u64) -> TestServer {
    TestServer::with(|config| {
        config.history.backend = HistoryBackend::Redis;
        config.redis.url = url.to_owned();
        config.redis.timeout_ms = timeout_ms;
        config.rooms = vec![RoomConfig {
            pattern: "chat.>".into(),
            history_size: 100,
            recover: true,
            ..RoomConfig::default()
        }];
    })
}

fn position(message: &Message) -> (u64, u64) {
    let header = |name| message.headers().get(name).unwrap().parse().unwrap();
    (header("sb-epoch"), header("sb-offset"))
}

/// The next `n` publications of `room`: (payload, epoch, offset).
fn receive(room: &Room, n: usize) -> Vec<(Vec<u8>, u64, u64)> {
    (0..n)
        .map(|_| {
            let message = room.recv_timeout(PATIENCE).unwrap();
            let (epoch, offset) = position(&message);
            (message.payload().to_vec(), epoch, offset)
        })
        .collect()
}

fn readyz(server: &TestServer) -> serde_json::Value {
    http_request(server.http, "GET", "/readyz", None).json()
}

#[test]
fn history_survives_a_restart_of_the_broker_and_of_redis() {
    let mut redis = RedisServer::persistent();
    let first = broker(&redis);
    let member = first.client_on(1);
    let room = member.join("chat.lobby").unwrap();
    let publisher = first.client_on(0);
    for i in 0..20u8 {
        publisher.publish("chat.lobby", &[i]).unwrap();
    }
    // Each delivery went out after Redis had kept it: these are the acknowledged ones.
    let seen = receive(&room, 20);
    let epoch = seen[0].1;
    assert!(seen.iter().all(|(_, e, _)| *e == epoch));
    let offsets: Vec<u64> = seen.iter().map(|(_, _, o)| *o).collect();
    assert_eq!(offsets, (1..=20).collect::<Vec<u64>>());
    assert_eq!(
        redis.command(&["XLEN", "sb:{chat.lobby}:s"]).unwrap(),
        ":20\r\n"
    );
    assert!(first.total(Metric::HistoryRedisAppends) >= 20);
    drop((room, member, publisher));
    first.stop();

    redis.restart();
    let second = broker(&redis);
    let member = second.client_on(0);
    let room = member
        .join_with(
            "chat.lobby",
            JoinOptions {
                info: None,
                from: Some((epoch, 5)),
            },
        )
        .unwrap();
    let joined = room.joined();
    assert!(joined.recovered, "{joined:?}");
    assert_eq!((joined.epoch, joined.offset, joined.count), (epoch, 20, 15));
    let recovered = receive(&room, 15);
    let expected: Vec<(Vec<u8>, u64, u64)> = (5..20u8)
        .map(|i| (vec![i], epoch, u64::from(i) + 1))
        .collect();
    assert_eq!(recovered, expected);

    let history = member
        .history(
            "chat.lobby",
            HistoryQuery {
                limit: 3,
                reverse: true,
                after: None,
            },
        )
        .unwrap();
    let newest: Vec<(u64, u64)> = history.publications.iter().map(position).collect();
    assert_eq!(newest, vec![(epoch, 20), (epoch, 19), (epoch, 18)]);
    // The room goes on where it was.
    member.publish("chat.lobby", b"next").unwrap();
    assert_eq!(receive(&room, 1), vec![(b"next".to_vec(), epoch, 21)]);
    assert_eq!(second.total(Metric::HistoryRedisLoads), 1);
}

#[test]
fn two_brokers_writing_one_room_share_one_order() {
    let redis = RedisServer::start();
    let (east, west) = (broker(&redis), broker(&redis));
    let east_room = east.client_on(0).join("chat.shared").unwrap();
    let west_member = west.client_on(1);
    let west_room = west_member.join("chat.shared").unwrap();
    let east_publisher = east.client_on(1);
    let west_publisher = west.client_on(0);
    for i in 0..10u8 {
        east_publisher.publish("chat.shared", &[b'e', i]).unwrap();
        west_publisher.publish("chat.shared", &[b'w', i]).unwrap();
    }
    // Without a cluster each broker delivers only its own publications, but Redis gave all of
    // them one order: every offset once, one epoch.
    let mut all = receive(&east_room, 10);
    all.extend(receive(&west_room, 10));
    let epoch = all[0].1;
    assert!(all.iter().all(|(_, e, _)| *e == epoch), "{all:?}");
    let mut offsets: Vec<u64> = all.iter().map(|(_, _, o)| *o).collect();
    offsets.sort_unstable();
    assert_eq!(offsets, (1..=20).collect::<Vec<u64>>());
    for (payload, _, offset) in &all {
        let id = format!("{offset}-0");
        let entry = redis
            .command(&["XRANGE", "sb:{chat.shared}:s", &id, &id])
            .unwrap();
        let payload = String::from_utf8(payload.clone()).unwrap();
        assert!(entry.contains(&payload), "{offset}: {entry}");
    }
    // A broker that read the room before the other wrote it reads it again: its history
    // has everything.
    west_publisher.publish("chat.shared", b"last").unwrap();
    assert_eq!(receive(&west_room, 1)[0].2, 21);
    let history = west_member
        .history(
            "chat.shared",
            HistoryQuery {
                limit: 0,
                reverse: false,
                after: None,
            },
        )
        .unwrap();
    let offsets: Vec<u64> = history.publications.iter().map(|m| position(m).1).collect();
    assert_eq!(offsets, (1..=21).collect::<Vec<u64>>());
}

#[test]
fn redis_stopped_under_load_degrades_history_and_it_comes_back() {
    let mut redis = RedisServer::persistent();
    let server = broker(&redis);
    assert_eq!(readyz(&server)["status"], "ready");
    let member = server.client_on(1);
    let room = member.join("chat.ops").unwrap();
    let plain = member.subscribe("plain.>").unwrap();
    // The PONG says the subscription is in effect on every shard.
    member.flush().unwrap();
    let publisher = server.client_on(0);
    for i in 0..5u8 {
        publisher.publish("chat.ops", &[i]).unwrap();
    }
    let before = receive(&room, 5);
    let redis_epoch = before[0].1;

    redis.stop();
    for i in 5..10u8 {
        publisher.publish("chat.ops", &[i]).unwrap();
        publisher.publish("plain.news", &[i]).unwrap();
    }
    // Messaging goes on; history goes on in memory at an epoch of its own.
    let during = receive(&room, 5);
    let memory_epoch = during[0].1;
    assert_ne!(memory_epoch, redis_epoch);
    let offsets: Vec<(u64, u64)> = during.iter().map(|(_, e, o)| (*e, *o)).collect();
    assert_eq!(
        offsets,
        (1..=5).map(|o| (memory_epoch, o)).collect::<Vec<_>>()
    );
    for i in 5..10u8 {
        assert_eq!(plain.recv_timeout(PATIENCE).unwrap().payload(), &[i]);
    }
    let ready = readyz(&server);
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert!(
        ready["reason"]
            .as_str()
            .unwrap()
            .contains("redis unreachable")
    );
    let status = http_request(server.http, "GET", "/api/v1/server", None).json();
    assert_eq!(status["status"], "degraded");
    assert_eq!(status["redis"]["up"], false);
    assert!(server.total(Metric::HistoryFallbacks) >= 5);
    // A position from before the outage cannot be recovered from the memory's history.
    let late = server.client_on(0);
    let late_room = late
        .join_with(
            "chat.ops",
            JoinOptions {
                info: None,
                from: Some((redis_epoch, 5)),
            },
        )
        .unwrap();
    assert!(!late_room.joined().recovered);
    assert_eq!(late_room.joined().epoch, memory_epoch);

    redis.restart();
    wait_until("the broker to reach Redis again", || {
        readyz(&server)["status"] == "ready"
    });
    publisher.publish("chat.ops", b"back").unwrap();
    let (_, back_epoch, back_offset) = receive(&room, 1).remove(0);
    // A new epoch in Redis as well: neither earlier history can be taken for this one.
    assert_ne!(back_epoch, redis_epoch);
    assert_ne!(back_epoch, memory_epoch);
    assert_eq!(back_offset, 1);
    assert_eq!(
        redis.command(&["XLEN", "sb:{chat.ops}:s"]).unwrap(),
        ":1\r\n"
    );
    let metrics = http_request(server.http, "GET", "/metrics", None).text();
    assert!(
        metrics.contains("shardbus_redis_outages_total 1\n"),
        "one outage, counted once: {metrics}"
    );
    assert!(metrics.contains("shardbus_redis_up 1\n"));
}

#[test]
fn a_frozen_redis_holds_back_history_rooms_only_and_then_is_left_behind() {
    let redis = RedisServer::start();
    let server = broker_at(&redis.url(), 300);
    let member = server.client_on(1);
    let room = member.join("chat.slow").unwrap();
    let plain = member.subscribe("plain.>").unwrap();
    // The PONG says the subscription is in effect on every shard.
    member.flush().unwrap();
    let publisher = server.client_on(0);
    publisher.publish("chat.slow", b"before").unwrap();
    let epoch = receive(&room, 1)[0].1;

    redis.freeze();
    publisher.publish("chat.slow", b"held").unwrap();
    publisher.publish("plain.news", b"not held").unwrap();
    // The plain publication does not wait for Redis.
    assert_eq!(plain.recv_timeout(PATIENCE).unwrap().payload(), b"not held");
    // The history publication comes once the bridge gives up on Redis (its timeout), from
    // the memory's history.
    let (payload, held_epoch, _) = receive(&room, 1).remove(0);
    assert_eq!(payload, b"held");
    assert_ne!(held_epoch, epoch);
    assert_eq!(readyz(&server)["status"], "degraded");
    redis.thaw();
    wait_until("the broker to reach Redis again", || {
        readyz(&server)["status"] == "ready"
    });
    publisher.publish("chat.slow", b"after").unwrap();
    let (payload, after_epoch, offset) = receive(&room, 1).remove(0);
    assert_eq!((payload.as_slice(), offset), (&b"after"[..], 1));
    assert_ne!(after_epoch, held_epoch);
    assert!(room.recv_timeout(Duration::from_millis(100)).is_err());
}

#[test]
fn a_broker_started_before_redis_serves_degraded_until_redis_comes() {
    let mut redis = RedisServer::persistent();
    let url = redis.url();
    redis.stop();
    let server = broker_at(&url, 500);
    assert_eq!(readyz(&server)["status"], "degraded");
    let member = server.client_on(0);
    let room = member.join("chat.early").unwrap();
    member.publish("chat.early", b"one").unwrap();
    let (_, memory_epoch, offset) = receive(&room, 1).remove(0);
    assert_eq!(offset, 1);

    redis.restart();
    wait_until("the broker to reach Redis", || {
        readyz(&server)["status"] == "ready"
    });
    member.publish("chat.early", b"two").unwrap();
    let (_, epoch, offset) = receive(&room, 1).remove(0);
    assert_ne!(epoch, memory_epoch);
    assert_eq!(offset, 1);
}

#[test]
fn history_reaches_a_redis_that_wants_tls_and_a_password_and_a_wrong_one_degrades() {
    let pki = shardbus_tests::pki::Pki::new();
    let redis = RedisServer::secured(&pki, "s3cret");
    let secured = |url: String| {
        let ca = pki.ca.clone();
        TestServer::with(move |config| {
            config.history.backend = HistoryBackend::Redis;
            config.redis.url = url;
            config.redis.ca_file = Some(ca);
            config.rooms = vec![RoomConfig {
                pattern: "chat.>".into(),
                history_size: 100,
                recover: true,
                ..RoomConfig::default()
            }];
        })
    };
    let server = secured(redis.tls_url());
    assert_eq!(readyz(&server)["status"], "ready");
    let member = server.client_on(0);
    let room = member.join("chat.safe").unwrap();
    for i in 0..5u8 {
        member.publish("chat.safe", &[i]).unwrap();
    }
    let offsets: Vec<u64> = receive(&room, 5).iter().map(|(_, _, o)| *o).collect();
    assert_eq!(offsets, vec![1, 2, 3, 4, 5]);
    assert_eq!(
        redis.command(&["XLEN", "sb:{chat.safe}:s"]).unwrap(),
        ":5\r\n"
    );
    drop((room, member, server));

    // The wrong password: serving, degraded and saying why, history in memory.
    let wrong = redis.tls_url().replace("s3cret", "guess");
    let server = secured(wrong);
    let ready = readyz(&server);
    assert_eq!(ready["status"], "degraded", "{ready}");
    let reason = ready["reason"].as_str().unwrap();
    assert!(reason.contains("authentication failed"), "{reason}");
    let member = server.client_on(1);
    let room = member.join("chat.safe").unwrap();
    member.publish("chat.safe", b"kept here").unwrap();
    assert_eq!(receive(&room, 1)[0].0, b"kept here");
    assert_eq!(
        redis.command(&["XLEN", "sb:{chat.safe}:s"]).unwrap(),
        ":5\r\n"
    );
}
