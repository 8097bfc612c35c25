//! Shared fixtures for the protocol crate's integration tests: one sample frame of every op.

#![allow(dead_code)] // each test binary uses its own subset
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test support may panic

pub mod peer;

use shardbus_protocol::{
    ErrorCode, Fields, Flags, Frame, Headers, HeadersBuilder, Health, HelloOptions, RoomFields,
    RoomFlags, ServiceFields, Welcome,
};

/// A headers block with two entries, leaked so frames can borrow it for the whole test.
pub fn sample_headers() -> Headers<'static> {
    let mut b = HeadersBuilder::new();
    b.insert("trace-id", "abc123").unwrap();
    b.insert("content-type", "application/json").unwrap();
    let raw: &'static [u8] = Box::leak(b.as_bytes().to_vec().into_boxed_slice());
    Headers::parse(raw).unwrap()
}

/// One frame of every op, each with every section its op allows filled in.
pub fn sample_frames() -> Vec<Frame<'static>> {
    let h = sample_headers();
    vec![
        Frame::new(Fields::Hello {
            version: 1,
            options: HelloOptions::ECHO.with(HelloOptions::HEADERS),
        })
        .with_headers(h),
        Frame::new(Fields::Welcome(Welcome {
            version: 1,
            shard: 1,
            max_topic_len: 256,
            max_payload: 1 << 20,
            max_frame: (1 << 20) + 4400,
            max_subscriptions: 10_000,
            ping_interval_ms: 30_000,
            client_id: 77,
        })),
        Frame::new(Fields::Ping),
        Frame::new(Fields::Pong),
        Frame::new(Fields::Ok).with_op_id(9),
        Frame::new(Fields::Err {
            code: ErrorCode::RATE_LIMITED,
            retry_after_ms: 250,
            ref_id: 0,
        })
        .with_op_id(12)
        .with_payload(b"rate limited: 1000 msgs/s"),
        Frame::new(Fields::Drain { grace_ms: 5000 }),
        Frame::new(Fields::Pub)
            .with_topic("sensors.kitchen.temp")
            .with_payload(b"21.5 degrees C!!"),
        Frame::new(Fields::Pub)
            .with_topic("a.b")
            .with_headers(h)
            .with_flags(Flags::CONTAINER.with(Flags::HEADERS))
            .with_payload(&[0x06, 1, 0, 0, 0, 0, 0, 0, 0]),
        Frame::new(Fields::Sub { sid: 3 }).with_topic("sensors.*.temp"),
        Frame::new(Fields::Sub { sid: 4 })
            .with_topic("jobs.>")
            .with_payload(b"workers"),
        Frame::new(Fields::Unsub {
            sid: 3,
            max_msgs: 10,
        }),
        Frame::new(Fields::Msg {
            sid: 3,
            seq: 99,
            reply: 0,
        })
        .with_topic("sensors.kitchen.temp")
        .with_headers(h)
        .with_flags(Flags::HEADERS)
        .with_payload(b"21.5"),
        Frame::new(Fields::Req {
            request_id: 5,
            timeout_ms: 1000,
        })
        .with_topic("svc.time")
        .with_payload(b"now?"),
        Frame::new(Fields::Resp { id: 5 }).with_payload(b"12:00"),
        Frame::new(Fields::Register(ServiceFields {
            heartbeat_ms: 1000,
            ..ServiceFields::default()
        }))
        .with_topic("billing")
        .with_flags(Flags::CONTAINER)
        .with_payload(b"\x14\x00\x00\x00\x00\x00\x00\x00\x00"),
        Frame::new(Fields::Heartbeat(ServiceFields {
            instance: 0x1_0000_0000_0001,
            load: 12,
            health: Health::Degraded,
            ..ServiceFields::default()
        })),
        Frame::new(Fields::Deregister(ServiceFields {
            instance: 0x1_0000_0000_0001,
            ..ServiceFields::default()
        })),
        Frame::new(Fields::Discover(ServiceFields::default()))
            .with_topic("billing.>")
            .with_payload(b"^1.2"),
        Frame::new(Fields::Join(RoomFields {
            sid: 7,
            epoch: 0x1234_5678_9abc,
            offset: 41,
            count: 0,
            flags: RoomFlags::FROM_POSITION,
        }))
        .with_topic("chat.lobby")
        .with_flags(Flags::CONTAINER)
        .with_payload(b"\x14\x00\x00\x00\x00\x00\x00\x00\x00"),
        Frame::new(Fields::Leave(RoomFields::default())).with_topic("chat.lobby"),
        Frame::new(Fields::Presence(RoomFields {
            count: 100,
            ..RoomFields::default()
        }))
        .with_topic("chat.lobby"),
        Frame::new(Fields::Member(RoomFields {
            sid: 7,
            flags: RoomFlags::JOINED,
            ..RoomFields::default()
        }))
        .with_topic("chat.lobby")
        .with_flags(Flags::CONTAINER)
        .with_payload(b"\x14\x00\x00\x00\x00\x00\x00\x00\x00"),
        Frame::new(Fields::History(RoomFields {
            sid: 9,
            count: 10,
            flags: RoomFlags::REVERSE,
            ..RoomFields::default()
        }))
        .with_topic("chat.lobby"),
        Frame::new(Fields::Status),
        Frame::new(Fields::Status)
            .with_flags(Flags::CONTAINER)
            .with_payload(b"\x14\x00\x00\x00\x00\x00\x00\x00\x00"),
    ]
}
