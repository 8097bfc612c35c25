//! Rooms against hostile input, on the real server: join floods, presence floods, absurd
//! positions, publications to endless distinct rooms. Each is refused or bounded by a configured
//! limit, counted, and leaves nothing behind when its connection goes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use shardbus_engine::metrics::Metric;
use shardbus_engine::rooms::RoomConfig;
use shardbus_protocol::{ErrorCode, Fields, HelloOptions, RoomFields, RoomFlags};
use shardbus_tests::raw::Raw;
use shardbus_tests::{TestServer, wait_until};

fn server(history_bytes: usize) -> TestServer {
    TestServer::with(|config| {
        config.history.max_bytes = history_bytes;
        config.rooms = vec![RoomConfig {
            pattern: "r.>".into(),
            join_leave: true,
            history_size: 50,
            recover: true,
            ..RoomConfig::default()
        }];
    })
}

fn join_fields(sid: u64) -> Fields {
    Fields::Join(RoomFields {
        sid,
        ..RoomFields::default()
    })
}

#[test]
fn a_join_flood_is_capped_per_connection_and_leaves_nothing_behind() {
    let server = server(1 << 20);
    let mut flooders = Vec::new();
    for shard in [0, 1] {
        let mut raw = Raw::hello_on(server.addr, shard, HelloOptions(0));
        for i in 0..5_000u64 {
            raw.send(join_fields(i + 1), format!("r.room{i}").as_bytes(), b"");
        }
        let codes = raw.flush_past_errors();
        assert_eq!(codes.len(), 5_000 - 64);
        assert!(codes.iter().all(|&c| c == ErrorCode::TOO_MANY_ROOMS));
        flooders.push(raw);
    }
    wait_until("64 memberships per flooder", || {
        server.total(Metric::RoomMembers) == 128
    });
    assert!(server.errors(ErrorCode::TOO_MANY_ROOMS) >= 2 * (5_000 - 64));
    // Both flooders are in the same 64 rooms.
    assert_eq!(server.total(Metric::Rooms), 64);
    drop(flooders);
    wait_until("every room to go", || {
        server.total(Metric::Rooms) == 0 && server.total(Metric::RoomMembers) == 0
    });
    assert_eq!(server.total(Metric::Subscriptions), 0);
}

#[test]
fn a_presence_flood_by_a_reader_that_does_not_read_is_cut_alone() {
    let server = TestServer::with(|config| {
        config.limits.max_pending = 2 << 20;
        config.rooms = vec![RoomConfig {
            pattern: "r.>".into(),
            ..RoomConfig::default()
        }];
    });
    let mut members = Vec::new();
    for i in 0..50u64 {
        let mut raw = Raw::hello_on(server.addr, (i % 2) as u16, HelloOptions(0));
        raw.send(join_fields(1), b"r.busy", b"");
        members.push(raw);
    }
    for raw in &mut members {
        raw.flush();
    }
    wait_until("50 members", || server.total(Metric::RoomMembers) == 50);
    // Asks for full pages and never reads them: paused, then cut as a slow consumer; the
    // members keep working.
    let flooder = Raw::hello(server.addr, HelloOptions(0));
    let ask = Fields::Presence(RoomFields::default());
    let mut sent = 0;
    flooder
        .stream()
        .set_write_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let mut frame = Vec::new();
    shardbus_protocol::encode(
        &shardbus_protocol::Frame::new(ask).with_topic("r.busy"),
        &mut frame,
    )
    .unwrap();
    let burst = frame.repeat(100);
    while sent < 200_000 {
        use std::io::Write;
        if flooder.stream().write_all(&burst).is_err() {
            break;
        }
        sent += 100;
        if server.total(Metric::SlowConsumers) > 0 {
            break;
        }
    }
    wait_until("the flooder cut", || {
        server.total(Metric::SlowConsumers) >= 1
    });
    let mut probe = Raw::hello(server.addr, HelloOptions(0));
    probe.send(ask, b"r.busy", b"");
    let answer = probe.next_event().unwrap();
    assert!(matches!(answer.fields, Fields::Presence(_)), "{answer:?}");
    assert_eq!(server.total(Metric::RoomMembers), 50);
}

#[test]
fn absurd_positions_recover_nothing_and_break_nothing() {
    let server = server(1 << 20);
    let mut publisher = Raw::hello_on(server.addr, 0, HelloOptions(0));
    for _ in 0..10 {
        publisher.publish("r.pos", b"x");
    }
    publisher.flush();
    for (epoch, offset) in [(0, 0), (u64::MAX, u64::MAX), (1, u64::MAX), (0, 5)] {
        let mut raw = Raw::hello_on(server.addr, 1, HelloOptions::HEADERS);
        raw.send(
            Fields::Join(RoomFields {
                sid: 1,
                epoch,
                offset,
                flags: RoomFlags::FROM_POSITION,
                ..RoomFields::default()
            }),
            b"r.pos",
            b"",
        );
        let answer = raw.next_event().unwrap();
        let Fields::Join(fields) = answer.fields else {
            panic!("{answer:?}")
        };
        assert!(!fields.flags.contains(RoomFlags::RECOVERED));
        assert_eq!(fields.offset, 10);
        raw.send(
            Fields::History(RoomFields {
                epoch,
                offset,
                count: 1_000,
                flags: RoomFlags::FROM_POSITION.with(RoomFlags::REVERSE),
                ..RoomFields::default()
            }),
            b"r.pos",
            b"",
        );
        let end = raw.next_event().unwrap();
        assert!(
            matches!(end.fields, Fields::History(f) if f.count == 0),
            "{end:?}"
        );
    }
}

#[test]
fn history_of_endless_distinct_rooms_stays_under_the_byte_cap() {
    // 64 KiB per shard, the least allowed.
    let server = server(128 << 10);
    let mut publisher = Raw::hello(server.addr, HelloOptions(0));
    let payload = [7u8; 200];
    for i in 0..20_000u64 {
        publisher.publish(&format!("r.many.{i}"), &payload);
    }
    publisher.flush();
    wait_until("every publication stamped", || {
        server.total(Metric::HistoryAppends) == 20_000
    });
    for shard in 0..2 {
        let bytes = server.shard_metric(shard, Metric::HistoryBytes);
        assert!(bytes <= 64 << 10, "shard {shard}: {bytes} bytes of history");
    }
    assert!(server.total(Metric::HistoryRoomsEvicted) > 19_000);
}
