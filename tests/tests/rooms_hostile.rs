//! Rooms against hostile input, on the real server: join floods, presence floods, absurd
//! positions, publications to endless distinct rooms, a member too slow for its room. Each is refused or bounded by a configured
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
    let mut joined = 0;
    for shard in [0, 1] {
        let mut raw = Raw::hello_on(server.addr, shard, HelloOptions(0));
        for i in 0..5_000u64 {
            raw.send(join_fields(i + 1), format!("r.room{i}").as_bytes(), b"");
        }
        // Refused past 64 rooms, or past 16 joins waiting for their homes at once.
        let codes = raw.flush_past_errors();
        let accepted = 5_000 - codes.len();
        assert!((16..=64).contains(&accepted), "{accepted} joins accepted");
        assert!(
            codes
                .iter()
                .all(|&c| { c == ErrorCode::TOO_MANY_ROOMS || c == ErrorCode::TOO_MANY_REQUESTS })
        );
        joined += accepted as u64;
        flooders.push(raw);
    }
    wait_until("every accepted join a member", || {
        server.total(Metric::RoomMembers) == joined
    });
    drop(flooders);
    wait_until("every room to go", || {
        server.total(Metric::Rooms) == 0 && server.total(Metric::RoomMembers) == 0
    });
    assert_eq!(server.total(Metric::Subscriptions), 0);
}

#[test]
fn a_presence_flood_by_a_reader_that_does_not_read_costs_the_others_nothing() {
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
    // Asks for full pages and never reads them: at most `max_room_ops_in_flight` reach the
    // home at a time (the rest are refused on its own shard), and the server stops reading it
    // once its own
    // answers back up (its writes then block), or cuts it as a slow consumer when the answers
    // already asked for pass `max_pending`, whichever comes first on the day; the members and
    // everyone else keep being served.
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
    let mut blocked = false;
    // Until one of the two happens (the bound only keeps a broken server from running the
    // test forever: 10 M asks would be 40 GB of answers).
    while sent < 10_000_000 && server.total(Metric::SlowConsumers) == 0 {
        use std::io::Write;
        if flooder.stream().write_all(&burst).is_err() {
            blocked = true;
            break;
        }
        sent += 100;
    }
    assert!(
        blocked || server.total(Metric::SlowConsumers) >= 1,
        "{sent} asks taken in full"
    );
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

#[test]
fn a_member_too_slow_for_a_busy_room_is_cut_and_the_others_hear_it_leave() {
    let server = TestServer::with(|config| {
        config.limits.max_payload = 1024;
        config.limits.max_pending = 4 << 20;
        config.rooms = vec![RoomConfig {
            pattern: "busy.>".into(),
            join_leave: true,
            ..RoomConfig::default()
        }];
    });
    // The watcher's client reads its socket on a thread of its own and drops what its
    // application does not take: it never falls behind the flood.
    let watcher = server.client_on(0);
    let watching = watcher.join("busy.room").unwrap();
    // Joins and never reads again.
    let mut slow = Raw::hello_on(server.addr, 1, HelloOptions(0));
    slow.send(join_fields(1), b"busy.room", b"");
    assert!(matches!(slow.next_event().unwrap().fields, Fields::Join(_)));
    let slow_id = slow.welcome.unwrap().client_id;
    assert!(
        watching
            .next_event(shardbus_tests::PATIENCE)
            .unwrap()
            .joined
    );

    let flood = std::thread::spawn({
        let addr = server.addr;
        move || {
            let mut publisher = Raw::hello(addr, HelloOptions(0));
            let payload = [b'x'; 1000];
            for _ in 0..60 {
                for _ in 0..1000 {
                    publisher.publish("busy.room", &payload);
                }
                publisher.flush();
            }
        }
    });
    flood.join().unwrap();
    // The slow member is cut, and its departure reaches the watcher.
    let left = watching.next_event(shardbus_tests::PATIENCE).unwrap();
    assert!(!left.joined);
    assert_eq!(
        left.member.get("client"),
        Some(&shardbus_protocol::container::Value::U64(slow_id))
    );
    assert!(server.total(Metric::SlowConsumers) >= 1);
    assert!(server.errors(ErrorCode::SLOW_CONSUMER) >= 1);
    drop(slow);
    wait_until("one member left", || server.total(Metric::RoomMembers) == 1);
}
