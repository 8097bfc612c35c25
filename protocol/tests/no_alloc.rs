//! Decoding allocates nothing: a counting global allocator watches the hot calls.

#![allow(clippy::unwrap_used, clippy::panic)] // tests may panic

use shardbus_protocol::container::{ContainerLimits, Value, ValueRef, decode as decode_container};
use shardbus_protocol::{Fields, Frame, Head, Limits, decode, encode, encode_head};

#[path = "common/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{Counting, allocations_during};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn hot_paths_allocate_nothing() {
    // The counter sees this thread's allocations (else every "0" below would be vacuous).
    let one = allocations_during(|| drop(std::hint::black_box(vec![1u8])));
    assert_eq!(one, 1, "the counting allocator is not counting");
    let payload = [7u8; 16];
    let frame = Frame::new(Fields::Pub)
        .with_topic("sensors.kitchen.temp")
        .with_payload(&payload);
    let mut bytes = Vec::with_capacity(128);
    encode(&frame, &mut bytes).unwrap();
    let limits = Limits::default();

    let n = allocations_during(|| {
        for _ in 0..1000 {
            let decoded = decode(std::hint::black_box(&bytes), &limits).unwrap();
            std::hint::black_box(decoded);
        }
    });
    assert_eq!(n, 0, "decoding a 16 B PUB allocated");

    let mut out = Vec::with_capacity(4096);
    let n = allocations_during(|| {
        for seq in 0..50 {
            let head = Head {
                fields: Fields::Msg {
                    sid: 1,
                    seq,
                    reply: 0,
                },
                flags: frame.flags,
                op_id: 0,
                topic: frame.topic,
                headers: &[],
            };
            encode_head(&head, payload.len(), &mut out).unwrap();
        }
    });
    assert_eq!(
        n, 0,
        "encoding delivery heads into a reserved buffer allocated"
    );

    let value = Value::Map(vec![
        ("id".into(), Value::Str("dev-1".into())),
        ("temp".into(), Value::F32(21.5)),
        (
            "tags".into(),
            Value::List(vec![Value::Str("a".into()), Value::Str("b".into())]),
        ),
    ]);
    let bin = value.to_binary().unwrap();
    let n = allocations_during(|| {
        let view = decode_container(&bin, &ContainerLimits::default()).unwrap();
        assert_eq!(view.get("temp"), Some(ValueRef::F32(21.5)));
        if let Some(ValueRef::List(tags)) = view.get("tags") {
            assert_eq!(tags.iter().count(), 2);
        }
    });
    assert_eq!(n, 0, "decoding and walking a container view allocated");
}
