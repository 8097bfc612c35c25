//! Rooms over the binary protocol (PROTOCOL.md §3.11), against the real server on two shards:
//! members on both shards (so one of them is always away from the room's home), presence and
//! MEMBER events, leave when a connection goes, history with positions, recovery after a
//! reconnect without gap or duplicate, retained values, and every refusal with its code.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use shardbus_engine::metrics::Metric;
use shardbus_engine::rooms::{PublishPolicy, RoomConfig};
use shardbus_protocol::container::{self, ContainerLimits, Value};
use shardbus_protocol::{
    ErrorCode, Fields, Flags, Headers, HeadersBuilder, HelloOptions, RoomFields, RoomFlags,
};
use shardbus_tests::raw::{Owned, Raw};
use shardbus_tests::{TestServer, wait_until};

fn room(pattern: &str) -> RoomConfig {
    RoomConfig {
        pattern: pattern.into(),
        ..RoomConfig::default()
    }
}

/// A server with the rooms the tests use.
fn server() -> TestServer {
    TestServer::with(|config| {
        config.limits.max_rooms_per_connection = 3;
        config.rooms = vec![
            RoomConfig {
                join_leave: true,
                max_members: 3,
                ..room("chat.small")
            },
            RoomConfig {
                join_leave: true,
                history_size: 5,
                recover: true,
                ..room("chat.>")
            },
            RoomConfig {
                retain: true,
                presence: false,
                ..room("devices.*.state")
            },
            RoomConfig {
                publish: PublishPolicy::Members,
                anonymous: false,
                ..room("private.>")
            },
        ];
    })
}

fn member(server: &TestServer, shard: u16) -> Raw {
    Raw::hello_on(server.addr, shard, HelloOptions::HEADERS)
}

fn join(raw: &mut Raw, room: &str, sid: u64, from: Option<(u64, u64)>) -> u32 {
    let (epoch, offset) = from.unwrap_or_default();
    let flags = if from.is_some() {
        RoomFlags::FROM_POSITION
    } else {
        RoomFlags::default()
    };
    let fields = RoomFields {
        sid,
        epoch,
        offset,
        count: 0,
        flags,
    };
    raw.send(Fields::Join(fields), room.as_bytes(), b"")
}

/// Joins and returns the JOIN answer's fields and payload.
fn joined(raw: &mut Raw, room: &str, sid: u64, from: Option<(u64, u64)>) -> (RoomFields, Value) {
    let op_id = join(raw, room, sid, from);
    let frame = raw.next_event().expect("JOIN's answer");
    match frame.fields {
        Fields::Join(fields) => {
            assert_eq!(frame.op_id, op_id);
            assert_eq!(frame.topic, room.as_bytes());
            (fields, value(&frame))
        }
        other => panic!("expected JOIN, got {other:?}: {}", text(&frame)),
    }
}

fn value(frame: &Owned) -> Value {
    let limits = ContainerLimits::default();
    container::decode(&frame.payload, &limits)
        .unwrap()
        .to_owned_value()
}

fn text(frame: &Owned) -> String {
    String::from_utf8_lossy(&frame.payload).into_owned()
}

fn number(value: &Value, key: &str) -> u64 {
    match value.get(key) {
        Some(Value::U64(n)) => *n,
        other => panic!("{key}: {other:?} in {value:?}"),
    }
}

fn string<'a>(value: &'a Value, key: &str) -> &'a str {
    match value.get(key) {
        Some(Value::Str(s)) => s,
        other => panic!("{key}: {other:?}"),
    }
}

/// The next MEMBER frame: its flags and who.
fn member_event(raw: &mut Raw) -> (RoomFlags, Value) {
    let frame = raw.next_event().expect("MEMBER");
    match frame.fields {
        Fields::Member(fields) => (fields.flags, value(&frame)),
        other => panic!("expected MEMBER, got {other:?}: {}", text(&frame)),
    }
}

/// The next MSG (past MEMBER events: a reconnecting member may hear its own last
/// connection leave): its payload and position headers.
fn message(raw: &mut Raw) -> (Vec<u8>, Option<(u64, u64)>) {
    let mut frame = raw.next_event().expect("MSG");
    while let Fields::Member(_) = frame.fields {
        frame = raw.next_event().expect("MSG");
    }
    let Fields::Msg { .. } = frame.fields else {
        panic!("expected MSG, got {:?}: {}", frame.fields, text(&frame));
    };
    let headers = Headers::parse(&frame.headers).unwrap();
    let position = headers.get("sb-epoch").map(|epoch| {
        let offset = headers.get("sb-offset").unwrap();
        (epoch.parse().unwrap(), offset.parse().unwrap())
    });
    (frame.payload, position)
}

fn presence(raw: &mut Raw, room: &str, cursor: u64, limit: u32) -> (RoomFields, Value) {
    let fields = RoomFields {
        offset: cursor,
        count: limit,
        ..RoomFields::default()
    };
    raw.send(Fields::Presence(fields), room.as_bytes(), b"");
    let frame = raw.next_event().expect("PRESENCE");
    match frame.fields {
        Fields::Presence(fields) => (fields, value(&frame)),
        other => panic!("expected PRESENCE, got {other:?}: {}", text(&frame)),
    }
}

#[test]
fn members_on_both_shards_see_each_other_join_and_leave() {
    let server = server();
    let mut ann = member(&server, 0);
    let (answer, counts) = joined(&mut ann, "chat.lobby", 1, None);
    assert_eq!(answer.sid, 1);
    assert!(answer.flags.contains(RoomFlags::POSITIONED));
    assert_eq!(
        (number(&counts, "clients"), number(&counts, "users")),
        (1, 1)
    );

    let mut bob = member(&server, 1);
    let (_, counts) = joined(&mut bob, "chat.lobby", 7, None);
    assert_eq!(number(&counts, "clients"), 2);
    // Anonymous connections are one user, "anonymous".
    assert_eq!(number(&counts, "users"), 1);
    let (flags, who) = member_event(&mut ann);
    assert!(flags.contains(RoomFlags::JOINED));
    assert_eq!(number(&who, "client"), bob.welcome.unwrap().client_id);

    let (page, listed) = presence(&mut bob, "chat.lobby", 0, 0);
    assert_eq!((page.count, page.offset), (2, 0));
    let Some(Value::List(members)) = listed.get("members") else {
        panic!("members: {listed:?}");
    };
    let clients: Vec<u64> = members.iter().map(|m| number(m, "client")).collect();
    let mut expected = vec![
        ann.welcome.unwrap().client_id,
        bob.welcome.unwrap().client_id,
    ];
    expected.sort_unstable();
    assert_eq!(clients, expected);
    assert_eq!(string(&members[0], "user"), "anonymous");

    // A page of one, then the cursor to the next.
    let (first, _) = presence(&mut ann, "chat.lobby", 0, 1);
    assert_eq!((first.count, first.offset), (1, expected[0]));
    let (second, _) = presence(&mut ann, "chat.lobby", first.offset, 1);
    assert_eq!((second.count, second.offset), (1, 0));

    // Bob's connection goes: Ann hears it, and the room forgets him.
    let bob_id = bob.welcome.unwrap().client_id;
    drop(bob);
    let (flags, who) = member_event(&mut ann);
    assert!(flags.contains(RoomFlags::LEFT));
    assert_eq!(number(&who, "client"), bob_id);
    let (page, listed) = presence(&mut ann, "chat.lobby", 0, 0);
    assert_eq!((page.count, number(&listed, "clients")), (1, 1));

    // LEAVE, and the room is gone with its last member: nothing is left behind.
    ann.send(Fields::Leave(RoomFields::default()), b"chat.lobby", b"");
    ann.flush();
    wait_until("the room to go", || {
        server.total(Metric::Rooms) == 0 && server.total(Metric::RoomMembers) == 0
    });
    assert_eq!(server.total(Metric::RoomJoins), 2);
    assert_eq!(server.total(Metric::RoomLeaves), 2);
}

#[test]
fn a_member_that_reconnects_recovers_what_it_missed_then_the_live_stream() {
    let server = server();
    let mut publisher = member(&server, 1);
    for i in 1..=3 {
        publisher.publish("chat.news", format!("m{i}").as_bytes());
    }
    publisher.flush();

    let mut reader = member(&server, 0);
    let (answer, _) = joined(&mut reader, "chat.news", 1, None);
    let epoch = answer.epoch;
    assert_ne!(epoch, 0);
    assert_eq!((answer.offset, answer.count), (3, 0));
    publisher.publish("chat.news", b"m4");
    assert_eq!(message(&mut reader), (b"m4".to_vec(), Some((epoch, 4))));
    drop(reader);

    // Missed while away: m5, m6.
    publisher.publish("chat.news", b"m5");
    publisher.publish("chat.news", b"m6");
    publisher.flush();
    let mut reader = member(&server, 1);
    let (answer, _) = joined(&mut reader, "chat.news", 2, Some((epoch, 4)));
    assert!(answer.flags.contains(RoomFlags::RECOVERED), "{answer:?}");
    assert_eq!((answer.epoch, answer.offset, answer.count), (epoch, 6, 2));
    publisher.publish("chat.news", b"m7");
    assert_eq!(message(&mut reader), (b"m5".to_vec(), Some((epoch, 5))));
    assert_eq!(message(&mut reader), (b"m6".to_vec(), Some((epoch, 6))));
    assert_eq!(message(&mut reader), (b"m7".to_vec(), Some((epoch, 7))));

    // Too far back (history keeps 5: offsets 3..7) or another epoch: not recovered, and what
    // is kept is sent so the client can start over from it.
    let mut late = member(&server, 0);
    let (answer, _) = joined(&mut late, "chat.news", 1, Some((epoch, 1)));
    assert!(!answer.flags.contains(RoomFlags::RECOVERED));
    assert_eq!(answer.count, 5);
    let mut stranger = member(&server, 0);
    let (answer, _) = joined(&mut stranger, "chat.news", 1, Some((epoch ^ 1, 6)));
    assert!(!answer.flags.contains(RoomFlags::RECOVERED));
    assert_eq!(answer.count, 0);
    assert_eq!(server.total(Metric::RoomRecoveries), 1);
    assert_eq!(server.total(Metric::RoomRecoveriesMissed), 2);
}

#[test]
fn recovery_under_a_steady_stream_has_no_gap_and_no_duplicate() {
    let server = server();
    let mut publisher = member(&server, 0);
    let mut reader = member(&server, 1);
    let (answer, _) = joined(&mut reader, "chat.stream", 1, None);
    let epoch = answer.epoch;
    let mut next = 1u64;
    for round in 0..20 {
        // Publish a burst, rejoin from the last seen offset while more is being published,
        // and read: offsets must run on by one.
        for _ in 0..3 {
            publisher.publish("chat.stream", b"x");
        }
        publisher.flush();
        let seen = next - 1;
        drop(reader);
        reader = member(&server, (round % 2) as u16);
        let op_id = join(&mut reader, "chat.stream", 1, Some((epoch, seen)));
        publisher.publish("chat.stream", b"x");
        publisher.publish("chat.stream", b"x");
        let frame = reader.next_event().unwrap();
        assert_eq!(frame.op_id, op_id);
        let Fields::Join(answer) = frame.fields else {
            panic!("{:?}", frame.fields)
        };
        assert!(answer.flags.contains(RoomFlags::RECOVERED));
        // The two publications after the JOIN reach the home before or after it: either way
        // each arrives once, recovered or live.
        assert_eq!(u64::from(answer.count), answer.offset - seen);
        for _ in 0..5 {
            let (_, position) = message(&mut reader);
            assert_eq!(position, Some((epoch, next)), "round {round}");
            next += 1;
        }
    }
}

#[test]
fn history_answers_the_last_ones_or_those_after_a_position() {
    let server = server();
    let mut publisher = member(&server, 0);
    for i in 1..=7u8 {
        let mut headers = HeadersBuilder::new();
        headers.insert("trace", &format!("t{i}")).unwrap();
        // A forged position is the home's to overwrite.
        headers.insert("sb-offset", "999").unwrap();
        publisher.send_with(Fields::Pub, b"chat.log", headers.headers(), &[i]);
    }
    publisher.flush();
    let mut reader = member(&server, 1);
    let history = |reader: &mut Raw, fields: RoomFields| -> (Vec<(u8, u64)>, RoomFields) {
        reader.send(Fields::History(fields), b"chat.log", b"");
        let mut seen = Vec::new();
        loop {
            let frame = reader.next_event().unwrap();
            match frame.fields {
                Fields::Msg { sid, seq, .. } => {
                    assert_eq!(sid, fields.sid);
                    assert_eq!(seq, seen.len() as u64 + 1);
                    let headers = Headers::parse(&frame.headers).unwrap();
                    let offset: u64 = headers.get("sb-offset").unwrap().parse().unwrap();
                    assert_eq!(
                        headers.get("trace"),
                        Some(&*format!("t{}", frame.payload[0]))
                    );
                    assert_eq!(headers.iter().count(), 3, "one sb-offset only");
                    seen.push((frame.payload[0], offset));
                }
                Fields::History(end) => return (seen, end),
                other => panic!("{other:?}: {}", text(&frame)),
            }
        }
    };
    // The last 5 kept, oldest first.
    let (seen, end) = history(
        &mut reader,
        RoomFields {
            sid: 9,
            ..RoomFields::default()
        },
    );
    assert_eq!(seen, vec![(3, 3), (4, 4), (5, 5), (6, 6), (7, 7)]);
    assert_eq!((end.sid, end.offset, end.count), (9, 7, 5));
    // Newest first, two.
    let (seen, _) = history(
        &mut reader,
        RoomFields {
            sid: 9,
            count: 2,
            flags: RoomFlags::REVERSE,
            ..RoomFields::default()
        },
    );
    assert_eq!(seen, vec![(7, 7), (6, 6)]);
    // After offset 5.
    let (seen, _) = history(
        &mut reader,
        RoomFields {
            sid: 9,
            epoch: end.epoch,
            offset: 5,
            flags: RoomFlags::FROM_POSITION,
            ..RoomFields::default()
        },
    );
    assert_eq!(seen, vec![(6, 6), (7, 7)]);
    assert_eq!(server.total(Metric::HistoryAppends), 7);
    assert!(server.total(Metric::HistoryBytes) > 0);
}

#[test]
fn a_retained_room_gives_a_new_member_the_last_value_at_once() {
    let server = server();
    let mut device = member(&server, 0);
    device.publish("devices.d1.state", b"off");
    device.publish("devices.d1.state", b"on");
    device.flush();
    for shard in [0, 1] {
        let mut watcher = member(&server, shard);
        let (answer, _) = joined(&mut watcher, "devices.d1.state", 4, None);
        assert_eq!((answer.count, answer.offset), (1, 2));
        assert_eq!(message(&mut watcher).0, b"on");
    }
    // A room that was never published to has nothing to give.
    let mut watcher = member(&server, 1);
    let (answer, _) = joined(&mut watcher, "devices.d2.state", 4, None);
    assert_eq!((answer.count, answer.offset), (0, 0));
}

#[test]
fn every_refusal_has_its_code_and_the_connection_stays() {
    let server = server();
    let mut raw = member(&server, 0);
    let refused = |raw: &mut Raw, code: ErrorCode| {
        let err = raw.expect_err();
        assert_eq!(err.err_code(), Some(code), "{}", text(&err));
    };
    join(&mut raw, "orders.new", 1, None);
    refused(&mut raw, ErrorCode::NOT_A_ROOM);
    joined(&mut raw, "chat.a", 1, None);
    join(&mut raw, "chat.a", 2, None);
    refused(&mut raw, ErrorCode::ALREADY_A_MEMBER);
    join(&mut raw, "chat.b", 1, None);
    refused(&mut raw, ErrorCode::DUPLICATE_SUBSCRIPTION);
    joined(&mut raw, "chat.b", 2, None);
    joined(&mut raw, "chat.c", 3, None);
    join(&mut raw, "chat.d", 4, None);
    refused(&mut raw, ErrorCode::TOO_MANY_ROOMS);
    raw.send(Fields::Leave(RoomFields::default()), b"chat.zzz", b"");
    refused(&mut raw, ErrorCode::NOT_A_MEMBER);
    presence(&mut raw, "chat.a", 0, 0);
    raw.send(
        Fields::Presence(RoomFields {
            count: 5_000,
            ..RoomFields::default()
        }),
        b"chat.a",
        b"",
    );
    refused(&mut raw, ErrorCode::LIMIT_TOO_LARGE);
    raw.send(
        Fields::Presence(RoomFields::default()),
        b"devices.x.state",
        b"",
    );
    refused(&mut raw, ErrorCode::NOT_AVAILABLE);
    raw.send(Fields::History(RoomFields::default()), b"chat.small", b"");
    refused(&mut raw, ErrorCode::NOT_AVAILABLE);
    // Member info must be a container.
    let mut other = member(&server, 1);
    other.send(
        Fields::Join(RoomFields {
            sid: 1,
            ..RoomFields::default()
        }),
        b"chat.e",
        b"not a container",
    );
    refused(&mut other, ErrorCode::BAD_PAYLOAD);
    // Anonymous connections may not join a room that refuses them, nor publish to a
    // members-only room.
    join(&mut other, "private.x", 2, None);
    refused(&mut other, ErrorCode::PERMISSION_DENIED);
    other.publish("private.x", b"hi");
    refused(&mut other, ErrorCode::NOT_A_MEMBER);
    // A client sends no MEMBER.
    other.send(Fields::Member(RoomFields::default()), b"chat.e", b"");
    refused(&mut other, ErrorCode::UNKNOWN_OP);
    // Still open, and the room ops still work.
    raw.flush();
    other.flush();
    for code in [
        ErrorCode::NOT_A_ROOM,
        ErrorCode::ALREADY_A_MEMBER,
        ErrorCode::TOO_MANY_ROOMS,
        ErrorCode::NOT_A_MEMBER,
        ErrorCode::LIMIT_TOO_LARGE,
        ErrorCode::NOT_AVAILABLE,
    ] {
        assert!(server.errors(code) >= 1, "{} counted", code.name());
    }
}

#[test]
fn a_full_room_refuses_until_someone_leaves() {
    let server = server();
    let mut members: Vec<Raw> = (0..3u16)
        .map(|i| {
            let mut raw = member(&server, i % 2);
            joined(&mut raw, "chat.small", 1, None);
            raw
        })
        .collect();
    let mut fourth = member(&server, 1);
    join(&mut fourth, "chat.small", 1, None);
    assert_eq!(fourth.expect_err().err_code(), Some(ErrorCode::ROOM_FULL));
    // The refused join left no subscription: sid 1 is free again.
    fourth.subscribe(1, "x", "");
    members.pop();
    wait_until("the leave", || server.total(Metric::RoomMembers) == 2);
    let (_, counts) = joined(&mut fourth, "chat.small", 2, None);
    assert_eq!(number(&counts, "clients"), 3);
}

#[test]
fn member_info_travels_with_join_events_and_presence() {
    let server = server();
    let mut ann = member(&server, 0);
    joined(&mut ann, "chat.info", 1, None);
    let info = Value::Map(vec![("avatar".into(), Value::Str("cat.png".into()))])
        .to_binary()
        .unwrap();
    let mut bob = member(&server, 1);
    bob.send_flagged(
        Fields::Join(RoomFields {
            sid: 3,
            ..RoomFields::default()
        }),
        Flags::CONTAINER,
        b"chat.info",
        Headers::EMPTY,
        &info,
    );
    let (flags, who) = member_event(&mut ann);
    assert!(flags.contains(RoomFlags::JOINED));
    let Some(Value::Map(info)) = who.get("info") else {
        panic!("{who:?}")
    };
    assert_eq!(info[0], ("avatar".into(), Value::Str("cat.png".into())));
}
